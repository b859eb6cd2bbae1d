#include "src/jailer/mountinfo.h"

#include <vector>

#include "absl/strings/str_split.h"

namespace edgevisor::jailer {
namespace {

// The kernel escapes space, tab, newline and backslash in paths as \ooo (fs/proc_namespace.c).
std::string Unescape(absl::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size() && s[i + 1] >= '0' && s[i + 1] <= '3' && s[i + 2] >= '0' &&
        s[i + 2] <= '7' && s[i + 3] >= '0' && s[i + 3] <= '7') {
      out.push_back(
          static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0')));
      i += 3;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

}  // namespace

std::vector<Mount> ParseMountInfo(absl::string_view text) {
  std::vector<Mount> mounts;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    std::vector<absl::string_view> f = absl::StrSplit(line, ' ', absl::SkipEmpty());
    size_t sep = 6;  // the optional fields end at a lone "-"
    while (sep < f.size() && f[sep] != "-") ++sep;
    if (sep + 3 >= f.size()) continue;  // fstype, source and super options follow it
    Mount m;
    m.mount_point = Unescape(f[4]);
    m.fstype = std::string(f[sep + 1]);
    m.super_options = absl::StrSplit(f[sep + 3], ',', absl::SkipEmpty());
    mounts.push_back(std::move(m));
  }
  return mounts;
}

CgroupMounts FindCgroupMounts(const std::vector<Mount>& mounts) {
  CgroupMounts c;
  for (const Mount& m : mounts) {
    if (m.fstype == "cgroup2" && c.v2.empty()) c.v2 = m.mount_point;
    if (m.fstype != "cgroup") continue;
    for (const std::string& opt : m.super_options) {
      // name=systemd is a named hierarchy without a controller; rw/ro and the like are options.
      if (opt == "rw" || opt == "ro" || opt.find('=') != std::string::npos ||
          opt.rfind("no", 0) == 0 || opt == "clone_children" || opt == "xattr") {
        continue;
      }
      c.v1.emplace(opt, m.mount_point);
    }
  }
  return c;
}

}  // namespace edgevisor::jailer
