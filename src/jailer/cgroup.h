// The VMM's cgroup, as Firecracker's jailer makes it: for each hierarchy a --cgroup file belongs
// to, the folder <mount point>/<parent-cgroup or exec file name>/<id>, the values written into
// it, and the jailer (and so the VMM it becomes) moved in. Planning is pure and unit-tested;
// ApplyCgroups does the writes.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "src/jailer/args.h"
#include "src/jailer/mountinfo.h"

namespace edgevisor::jailer {

// The host's cgroup hierarchies and what its cgroup v2 root offers.
struct HostCgroups {
  CgroupMounts mounts;
  std::vector<std::string> v2_controllers;  // <v2 mount>/cgroup.controllers
  // "cgroup v1: cpu (/sys/fs/cgroup/cpu), ...; cgroup v2: /sys/fs/cgroup/unified (controllers:
  // none)": for the error messages.
  std::string Describe() const;
};
absl::StatusOr<HostCgroups> DetectHostCgroups();

// One folder the jailer makes and joins.
struct CgroupDir {
  int version = 1;
  std::string hierarchy;  // the mount point
  std::string relative;   // <parent-cgroup or exec file name>/<id>
  std::vector<CgroupSetting> settings;
  // v2: enabled in cgroup.subtree_control of the root and of each folder above ours.
  std::vector<std::string> controllers;
  std::string Path() const { return hierarchy + "/" + relative; }
};

// The --cgroup settings with what --node N stands for in front: cpuset.mems=N and cpuset.cpus=
// `node_cpulist` (/sys/devices/system/node/nodeN/cpulist), each unless given explicitly.
std::vector<CgroupSetting> WithNumaNode(const JailerArgs& a, const std::string& node_cpulist);

// The folders for `settings` on this host. A controller the chosen version's hierarchy lacks is
// kExitCgroup, naming the --cgroup file and where the host has that controller instead.
absl::StatusOr<std::vector<CgroupDir>> PlanCgroups(const JailerArgs& a,
                                                   const std::vector<CgroupSetting>& settings,
                                                   const HostCgroups& host);

// Makes the folders (v1 cpuset: cpus and mems copied from the parent; v2: controllers enabled
// above), writes the settings (a file the folder lacks is kExitCgroup), then moves `pid` into
// each. What it made is removed again if any step fails.
absl::Status ApplyCgroups(const std::vector<CgroupDir>& plan, pid_t pid);

}  // namespace edgevisor::jailer
