// /proc/self/mountinfo, as far as the jailer needs it: where each cgroup hierarchy is mounted
// (proc(5): "id parent major:minor root mount-point options [optional...] - fstype source
// super-options").
#pragma once

#include <map>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace edgevisor::jailer {

struct Mount {
  std::string mount_point;  // octal escapes (\040 for a space) decoded
  std::string fstype;
  std::vector<std::string> super_options;
};

// Lines that do not have the documented shape are skipped.
std::vector<Mount> ParseMountInfo(absl::string_view text);

// The cgroup hierarchies a host has mounted.
struct CgroupMounts {
  std::map<std::string, std::string> v1;  // controller -> mount point (first one wins)
  std::string v2;                         // the cgroup2 mount point; empty: none
};
CgroupMounts FindCgroupMounts(const std::vector<Mount>& mounts);

}  // namespace edgevisor::jailer
