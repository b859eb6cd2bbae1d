// How the appliance contains each VM: the VMM runs through the jailer (docs/jailer.md) as the
// VM's own unprivileged uid, in a chroot of its own and a cgroup (v2) of its own with the limits
// from appliance.json. One uid per VM (kUidBase + its index): a VMM taken over by its guest
// can then neither signal nor trace another VM's VMM, nor open another VM's disks.
//
// The jail is prepared the way fleet managers prepare Firecracker's: every file the VM's
// Firecracker config names (kernel, initrd, drives, log and metrics files) is bind-mounted into
// <base>/edgevisor/<vm>/root (read-only unless the VMM writes it; read-write files are given
// to the VM's uid), and the config, with jail-relative paths, is written there as config.json.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace edgevisor::appliance {

inline constexpr uid_t kUidBase = 10000;

struct JailSpec {
  std::string jailer;                // the jailer binary
  std::string edgevisor;             // the VMM binary (hard-linked or copied into the jail)
  std::string base = "/run/jailer";  // --chroot-base-dir
  std::string cgroup_root = "/sys/fs/cgroup";
  std::string vm;      // the VM's name: the jailer's --id
  std::string config;  // the VM's Firecracker config (host path)
  uid_t uid = 0;
  std::optional<int> memory_max_mib, cpu_max_percent;
  // A cgroup of its own under <cgroup_root>/edgevisor (the appliance); off under systemd, whose
  // unit's cgroup (and its MemoryMax=, CPUQuota=) then holds the VMM.
  bool own_cgroup = true;
  int reboot_exit_code = 0;
};

// The jail's root folder: <base>/<edgevisor's file name>/<vm>/root.
std::string JailRoot(const JailSpec& spec);

// The Firecracker config TEXT with every host path it names replaced by a jail-relative one;
// FILES gets (host path, name in the jail, writable) for each. Errors name the field.
absl::StatusOr<std::string> JailConfig(
    const std::string& text, std::vector<std::tuple<std::string, std::string, bool>>* files);

// The jailer's command line for SPEC (cgroup flags included).
std::vector<std::string> JailerArgv(const JailSpec& spec);

// Builds the jail (cleaning what a previous run left) and returns the jailer's command line.
absl::StatusOr<std::vector<std::string>> PrepareJail(const JailSpec& spec);

// After the VMM exited: unmounts the files, removes the jail folder and the VM's cgroup.
void CleanJail(const JailSpec& spec);

// One line on what contains process PID: its uid and gid, capabilities, no_new_privs, the
// seccomp mode of each of its threads, its cgroup and that cgroup's limits.
std::string DescribeContainment(pid_t pid, const std::string& cgroup_root);

}  // namespace edgevisor::appliance
