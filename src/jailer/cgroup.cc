#include "src/jailer/cgroup.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "src/base/errors.h"
#include "src/base/read_file.h"
#include "src/jailer/exit_codes.h"
#include "src/jailer/files.h"

namespace edgevisor::jailer {
namespace {

bool Has(const std::vector<std::string>& v, const std::string& x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

std::string Named(const CgroupSetting& s) {
  return absl::StrCat("--cgroup ", s.file, "=", s.value);
}

absl::StatusOr<std::string> V1Hierarchy(const CgroupSetting& s, const HostCgroups& host) {
  const std::string c = s.Controller();
  if (c == "cgroup") {
    return JailerError(kExitCgroup, absl::StrFormat("%s: cgroup.* files are in every cgroup v1 "
                                                    "hierarchy; name a controller's file",
                                                    Named(s)));
  }
  if (auto it = host.mounts.v1.find(c); it != host.mounts.v1.end()) return it->second;
  std::string hint;
  if (!host.mounts.v2.empty() && Has(host.v2_controllers, c)) {
    hint = absl::StrFormat("; this host has '%s' on cgroup v2 (%s): use --cgroup-version 2", c,
                           host.mounts.v2);
  }
  return JailerError(kExitCgroup,
                     absl::StrFormat("%s: no cgroup v1 hierarchy has the '%s' controller (%s)%s",
                                     Named(s), c, host.Describe(), hint));
}

absl::StatusOr<std::string> V2Hierarchy(const CgroupSetting& s, const HostCgroups& host) {
  const std::string c = s.Controller();
  if (host.mounts.v2.empty()) {
    return JailerError(kExitCgroup,
                       absl::StrFormat("%s: this host has no cgroup v2 hierarchy (%s): use "
                                       "--cgroup-version 1",
                                       Named(s), host.Describe()));
  }
  if (c == "cgroup" || Has(host.v2_controllers, c)) return host.mounts.v2;
  std::string hint;
  if (auto it = host.mounts.v1.find(c); it != host.mounts.v1.end()) {
    hint = absl::StrFormat("; this host has '%s' on cgroup v1 (%s): use --cgroup-version 1", c,
                           it->second);
  }
  return JailerError(
      kExitCgroup,
      absl::StrFormat(
          "%s: the cgroup v2 hierarchy at %s has no '%s' controller (it has: %s)%s", Named(s),
          host.mounts.v2, c,
          host.v2_controllers.empty() ? "none" : absl::StrJoin(host.v2_controllers, " "), hint));
}

}  // namespace

std::string HostCgroups::Describe() const {
  std::vector<std::string> v1;
  for (const auto& [controller, mount] : mounts.v1) v1.push_back(controller);
  const std::string one = v1.empty() ? "cgroup v1: none" : "cgroup v1: " + absl::StrJoin(v1, " ");
  if (mounts.v2.empty()) return one + "; cgroup v2: none";
  return absl::StrFormat("%s; cgroup v2: %s with controllers: %s", one, mounts.v2,
                         v2_controllers.empty() ? "none" : absl::StrJoin(v2_controllers, " "));
}

absl::StatusOr<HostCgroups> DetectHostCgroups() {
  auto text = ReadSmallFile("/proc/self/mountinfo", 16 << 20);
  if (!text.ok()) return JailerError(kExitCgroup, text.status().message());
  HostCgroups host;
  host.mounts = FindCgroupMounts(ParseMountInfo(*text));
  if (!host.mounts.v2.empty()) {
    auto controllers = ReadSmallFile(host.mounts.v2 + "/cgroup.controllers");
    if (!controllers.ok()) return JailerError(kExitCgroup, controllers.status().message());
    host.v2_controllers = absl::StrSplit(*controllers, absl::ByAnyChar(" \n"), absl::SkipEmpty());
  }
  return host;
}

std::vector<CgroupSetting> WithNumaNode(const JailerArgs& a, const std::string& node_cpulist) {
  std::vector<CgroupSetting> out;
  auto given = [&](const char* file) {
    return std::any_of(a.cgroups.begin(), a.cgroups.end(),
                       [&](const CgroupSetting& s) { return s.file == file; });
  };
  if (a.numa_node) {
    if (!given("cpuset.mems")) out.push_back({"cpuset.mems", std::to_string(*a.numa_node)});
    if (!given("cpuset.cpus")) {
      out.push_back({"cpuset.cpus", std::string(absl::StripAsciiWhitespace(node_cpulist))});
    }
  }
  out.insert(out.end(), a.cgroups.begin(), a.cgroups.end());
  return out;
}

absl::StatusOr<std::vector<CgroupDir>> PlanCgroups(const JailerArgs& a,
                                                   const std::vector<CgroupSetting>& settings,
                                                   const HostCgroups& host) {
  std::vector<CgroupDir> plan;
  for (const CgroupSetting& s : settings) {
    EV_ASSIGN_OR_RETURN(std::string hierarchy,
                        a.cgroup_version == 1 ? V1Hierarchy(s, host) : V2Hierarchy(s, host));
    auto dir = std::find_if(plan.begin(), plan.end(),
                            [&](const CgroupDir& d) { return d.hierarchy == hierarchy; });
    if (dir == plan.end()) {
      plan.push_back(CgroupDir{a.cgroup_version, hierarchy, a.CgroupPath(), {}, {}});
      dir = plan.end() - 1;
    }
    dir->settings.push_back(s);
    if (a.cgroup_version == 2 && s.Controller() != "cgroup" &&
        !Has(dir->controllers, s.Controller())) {
      dir->controllers.push_back(s.Controller());
    }
  }
  return plan;
}

namespace {

// cgroup v1's cpuset refuses tasks while cpuset.cpus or cpuset.mems is empty, and a new folder
// starts empty (Documentation/admin-guide/cgroup-v1/cpusets.rst): copy the parent's.
absl::Status InheritCpuset(const std::string& parent, const std::string& dir) {
  for (const char* file : {"cpuset.cpus", "cpuset.mems"}) {
    EV_ASSIGN_OR_RETURN(std::string mine, ReadSmallFile(dir + "/" + file));
    if (!absl::StripAsciiWhitespace(mine).empty()) continue;
    EV_ASSIGN_OR_RETURN(std::string theirs, ReadSmallFile(parent + "/" + file));
    EV_RETURN_IF_ERROR(WriteString(dir + "/" + file, theirs));
  }
  return absl::OkStatus();
}

// cgroup v2 offers a controller's files in a folder only once its parent enables it in
// cgroup.subtree_control (Documentation/admin-guide/cgroup-v2.rst, "Enabling and Disabling").
absl::Status EnableControllers(const std::string& dir, const std::vector<std::string>& wanted) {
  EV_ASSIGN_OR_RETURN(std::string on, ReadSmallFile(dir + "/cgroup.subtree_control"));
  const std::vector<std::string> enabled =
      absl::StrSplit(on, absl::ByAnyChar(" \n"), absl::SkipEmpty());
  for (const std::string& c : wanted) {
    if (!Has(enabled, c)) EV_RETURN_IF_ERROR(WriteString(dir + "/cgroup.subtree_control", "+" + c));
  }
  return absl::OkStatus();
}

// Creates each missing level of dir.relative under dir.hierarchy; `made` collects them.
absl::Status MakeFolders(const CgroupDir& dir, std::vector<std::string>& made) {
  std::string path = dir.hierarchy;
  for (absl::string_view part : absl::StrSplit(dir.relative, '/')) {
    if (dir.version == 2) EV_RETURN_IF_ERROR(EnableControllers(path, dir.controllers));
    const std::string parent = path;
    absl::StrAppend(&path, "/", part);
    if (mkdir(path.c_str(), 0755) == 0) {
      made.push_back(path);
    } else if (errno != EEXIST) {
      return ErrnoError(absl::StrCat("mkdir ", path));
    }
    if (dir.version == 1 && access((parent + "/cpuset.cpus").c_str(), F_OK) == 0) {
      EV_RETURN_IF_ERROR(InheritCpuset(parent, path));
    }
  }
  return absl::OkStatus();
}

absl::Status WriteSettings(const CgroupDir& dir) {
  for (const CgroupSetting& s : dir.settings) {
    const std::string file = dir.Path() + "/" + s.file;
    struct stat st {};
    if (stat(file.c_str(), &st) != 0) {
      return JailerError(kExitCgroup,
                         absl::StrFormat("%s: no file %s in %s (cgroup v%d): %s", Named(s), s.file,
                                         dir.Path(), dir.version, strerror(errno)));
    }
    if (absl::Status w = WriteString(file, s.value); !w.ok()) {
      return JailerError(kExitCgroup, absl::StrCat(Named(s), ": ", w.message()));
    }
  }
  return absl::OkStatus();
}

absl::Status ApplyAll(const std::vector<CgroupDir>& plan, pid_t pid,
                      std::vector<std::string>& made) {
  for (const CgroupDir& dir : plan) {
    if (absl::Status s = MakeFolders(dir, made); !s.ok()) {
      return JailerError(kExitCgroup, absl::StrCat("cgroup ", dir.Path(), ": ", s.message()));
    }
    EV_RETURN_IF_ERROR(WriteSettings(dir));
  }
  for (const CgroupDir& dir : plan) {
    if (absl::Status s = WriteString(dir.Path() + "/cgroup.procs", std::to_string(pid)); !s.ok()) {
      return JailerError(kExitCgroup, absl::StrCat("joining cgroup: ", s.message()));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ApplyCgroups(const std::vector<CgroupDir>& plan, pid_t pid) {
  std::vector<std::string> made;
  absl::Status s = ApplyAll(plan, pid, made);
  if (!s.ok()) {
    for (auto it = made.rbegin(); it != made.rend(); ++it) rmdir(it->c_str());
  }
  return s;
}

}  // namespace edgevisor::jailer
