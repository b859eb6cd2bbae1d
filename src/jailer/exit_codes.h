// The jailer's own exit statuses: each names one class of failure, so a fleet manager can tell a
// bad request from a host problem without parsing the message. They sit apart from the VMM's
// (0-3, 148, and the debug-exit's odd values): once the jailer has exec'd, the status is the
// VMM's. docs/jailer.md lists them.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace edgevisor::jailer {

inline constexpr int kExitOk = 0;           // --help, --version; the parent with --new-pid-ns
inline constexpr int kExitUsage = 10;       // the command line: unknown or malformed flag
inline constexpr int kExitBadId = 11;       // --id: empty, over 64 or not [A-Za-z0-9-]
inline constexpr int kExitExecFile = 12;    // --exec-file: missing, not a file, not executable
inline constexpr int kExitNetns = 13;       // --netns: missing or not a network namespace
inline constexpr int kExitCgroup = 14;      // --cgroup/--node/--cgroup-version on this host
inline constexpr int kExitNotRoot = 15;     // not running as root
inline constexpr int kExitJail = 16;        // building the jail: dirs, links, nodes, pivot_root
inline constexpr int kExitPrivileges = 17;  // rlimits, groups, uid/gid, capabilities
inline constexpr int kExitExec = 18;        // execve of the VMM inside the jail

// A status that carries the exit code it should end the jailer with.
absl::Status JailerError(int exit_code, absl::string_view message);
// The code carried by `s` (kExitJail for a status made elsewhere, e.g. from errno).
int ExitCodeOf(const absl::Status& s);
// `s` with "<context>: " before its message, keeping its exit code.
absl::Status WithContext(const absl::Status& s, absl::string_view context);

}  // namespace edgevisor::jailer
