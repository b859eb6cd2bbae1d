// The namespaces the jailer moves into: the fleet manager's network namespace, a mount
// namespace whose root is the jail, and optionally a PID namespace of the VMM's own.
#pragma once

#include <sys/types.h>

#include <string>

#include "absl/status/statusor.h"
#include "src/base/fd.h"

namespace edgevisor::jailer {

// Opens --netns PATH and checks it is a network namespace (kExitNetns otherwise).
absl::StatusOr<UniqueFd> OpenNetns(const std::string& path);
// setns(2) into it (kExitJail on failure).
absl::Status JoinNetns(const UniqueFd& netns, const std::string& path);

// A new mount namespace whose root is `root` (pivot_root(2)); the host's tree is unmounted from
// it. Mounts inside `root` (a bind-mounted VM folder) stay. Failures are kExitJail.
absl::Status PivotInto(const std::string& root);

// unshare(CLONE_NEWPID) and fork: returns 0 in the child, which is pid 1 of the new namespace,
// and the child's pid (in the caller's namespace) in the parent.
absl::StatusOr<pid_t> ForkIntoNewPidNamespace();

}  // namespace edgevisor::jailer
