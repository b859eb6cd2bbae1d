// The jailer's command line, Firecracker's (docs/jailer.md in its repository): parsed and checked
// for form only. What needs the host (the exec file, the netns, the cgroup files) is checked
// when the jail is built (jailer.h).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace edgevisor::jailer {

inline constexpr char kDefaultChrootBase[] = "/srv/jailer";
inline constexpr size_t kMaxIdLength = 64;
// Firecracker bounds no-file to this when no --resource-limit is given.
inline constexpr uint64_t kDefaultNoFile = 2048;

// `--cgroup FILE=VALUE`: FILE is `<controller>.<knob>`, e.g. memory.limit_in_bytes.
struct CgroupSetting {
  std::string file;
  std::string value;
  std::string Controller() const { return file.substr(0, file.find('.')); }
  bool operator==(const CgroupSetting&) const = default;
};

// `--resource-limit NAME=N`: fsize (RLIMIT_FSIZE) or no-file (RLIMIT_NOFILE).
struct ResourceLimit {
  std::string name;
  int resource = 0;  // RLIMIT_*
  uint64_t value = 0;
  bool operator==(const ResourceLimit&) const = default;
};

struct JailerArgs {
  std::string id;
  std::string exec_file;
  uid_t uid = 0;
  gid_t gid = 0;
  std::string chroot_base_dir = kDefaultChrootBase;
  std::string netns;  // empty: stay in the caller's network namespace
  bool daemonize = false;
  bool new_pid_ns = false;
  int cgroup_version = 1;  // Firecracker's default
  std::vector<CgroupSetting> cgroups;
  std::string parent_cgroup;           // empty: the exec file's name
  std::vector<ResourceLimit> rlimits;  // empty: no-file=2048
  std::optional<int> numa_node;        // --node: cpuset.mems and cpuset.cpus of that node
  std::vector<std::string> vmm_args;   // everything after `--`
  bool help = false;
  bool version = false;

  // The last component of exec_file: the jail's folder and the binary's name inside it.
  std::string ExecFileName() const;
  // <chroot_base_dir>/<exec file name>/<id>: what the fleet manager removes afterwards.
  std::string JailDir() const;
  // JailDir()/root: the VMM's `/`.
  std::string RootDir() const;
  // The folder under each cgroup hierarchy's root: <parent_cgroup or exec file name>/<id>.
  std::string CgroupPath() const;
};

// Parses argv[1..]. A malformed command line is kExitUsage (the message names the flag); a bad
// --id is kExitBadId.
absl::StatusOr<JailerArgs> ParseJailerArgs(const std::vector<std::string>& args);

// --id: 1 to 64 characters, each an ASCII letter, digit or hyphen.
absl::Status CheckId(const std::string& id);

// What the VMM is exec'd with, after its own name: `--id <id>`, Firecracker's timing hints, then
// the arguments after `--`.
std::vector<std::string> VmmArgv(const JailerArgs& a, uint64_t start_us, uint64_t start_cpu_us,
                                 uint64_t parent_cpu_us);

std::string Usage();

}  // namespace edgevisor::jailer
