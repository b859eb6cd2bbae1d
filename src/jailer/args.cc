#include "src/jailer/args.h"

#include <sys/resource.h>

#include <algorithm>
#include <array>
#include <limits>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "src/base/errors.h"
#include "src/jailer/exit_codes.h"

namespace edgevisor::jailer {
namespace {

absl::Status Bad(absl::string_view flag, absl::string_view why) {
  return JailerError(kExitUsage, absl::StrCat(flag, ": ", why));
}

bool IsLowerWord(absl::string_view s, absl::string_view extra) {
  if (s.empty()) return false;
  for (char c : s) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
                    extra.find(c) != absl::string_view::npos;
    if (!ok) return false;
  }
  return true;
}

// A uid or gid: decimal, 0 to 2^32 - 2 ((uid_t)-1 means "unchanged" to setresuid).
absl::Status ParseIdNumber(absl::string_view flag, const std::string& v, uint32_t* out) {
  uint64_t n = 0;
  if (v.empty() || v.find_first_not_of("0123456789") != std::string::npos ||
      !absl::SimpleAtoi(v, &n) || n >= std::numeric_limits<uint32_t>::max()) {
    return Bad(flag, absl::StrFormat("'%s' is not a number from 0 to 4294967294", v));
  }
  *out = static_cast<uint32_t>(n);
  return absl::OkStatus();
}

// Removes trailing slashes ("a/b/" -> "a/b"), keeping a lone "/".
std::string TrimSlashes(std::string p) {
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  return p;
}

absl::Status SetId(JailerArgs& a, absl::string_view, const std::string& v) {
  a.id = v;
  return CheckId(v);
}

absl::Status SetExecFile(JailerArgs& a, absl::string_view flag, const std::string& v) {
  a.exec_file = v;
  const std::string name = a.ExecFileName();
  if (v.empty() || name.empty() || name == "." || name == ".." || v.back() == '/') {
    return Bad(flag, absl::StrFormat("'%s' does not name a file", v));
  }
  return absl::OkStatus();
}

absl::Status SetUid(JailerArgs& a, absl::string_view flag, const std::string& v) {
  return ParseIdNumber(flag, v, &a.uid);
}

absl::Status SetGid(JailerArgs& a, absl::string_view flag, const std::string& v) {
  return ParseIdNumber(flag, v, &a.gid);
}

absl::Status SetChrootBase(JailerArgs& a, absl::string_view flag, const std::string& v) {
  if (v.empty() || v[0] != '/') return Bad(flag, absl::StrFormat("'%s' is not absolute", v));
  for (absl::string_view part : absl::StrSplit(v, '/')) {
    if (part == "..") return Bad(flag, absl::StrFormat("'%s' has a '..' component", v));
  }
  a.chroot_base_dir = TrimSlashes(v);
  return absl::OkStatus();
}

absl::Status SetNetns(JailerArgs& a, absl::string_view flag, const std::string& v) {
  if (v.empty()) return Bad(flag, "empty path");
  a.netns = v;
  return absl::OkStatus();
}

absl::Status SetCgroupVersion(JailerArgs& a, absl::string_view flag, const std::string& v) {
  if (v != "1" && v != "2") return Bad(flag, absl::StrFormat("'%s' is not 1 or 2", v));
  a.cgroup_version = v == "1" ? 1 : 2;
  return absl::OkStatus();
}

absl::Status SetCgroup(JailerArgs& a, absl::string_view flag, const std::string& v) {
  const size_t eq = v.find('=');
  if (eq == std::string::npos) {
    return Bad(flag, absl::StrFormat("'%s' is not FILE=VALUE (e.g. cpu.shares=10)", v));
  }
  CgroupSetting c{v.substr(0, eq), v.substr(eq + 1)};
  const size_t dot = c.file.find('.');
  if (dot == std::string::npos || !IsLowerWord(c.file.substr(0, dot), "") ||
      !IsLowerWord(c.file.substr(dot + 1), ".")) {
    return Bad(flag,
               absl::StrFormat("'%s' is not a cgroup file name (<controller>.<knob>)", c.file));
  }
  if (c.value.empty() || c.value.find('\n') != std::string::npos) {
    return Bad(flag, absl::StrFormat("%s: the value is empty or has a newline", c.file));
  }
  a.cgroups.push_back(std::move(c));
  return absl::OkStatus();
}

absl::Status SetParentCgroup(JailerArgs& a, absl::string_view flag, const std::string& v) {
  const std::string p = TrimSlashes(v);
  if (p.empty() || p[0] == '/') return Bad(flag, absl::StrFormat("'%s' is not relative", v));
  for (absl::string_view part : absl::StrSplit(p, '/')) {
    if (part.empty() || part == "." || part == "..") {
      return Bad(flag, absl::StrFormat("'%s' has an empty, '.' or '..' component", v));
    }
  }
  a.parent_cgroup = p;
  return absl::OkStatus();
}

absl::Status SetResourceLimit(JailerArgs& a, absl::string_view flag, const std::string& v) {
  const size_t eq = v.find('=');
  if (eq == std::string::npos) return Bad(flag, absl::StrFormat("'%s' is not NAME=VALUE", v));
  ResourceLimit r{v.substr(0, eq), 0, 0};
  if (r.name == "fsize") {
    r.resource = RLIMIT_FSIZE;
  } else if (r.name == "no-file") {
    r.resource = RLIMIT_NOFILE;
  } else {
    return Bad(flag, absl::StrFormat("'%s' is not a resource (fsize or no-file)", r.name));
  }
  const std::string n = v.substr(eq + 1);
  if (n.empty() || n.find_first_not_of("0123456789") != std::string::npos ||
      !absl::SimpleAtoi(n, &r.value)) {
    return Bad(flag, absl::StrFormat("%s: '%s' is not a number", r.name, n));
  }
  a.rlimits.push_back(std::move(r));
  return absl::OkStatus();
}

absl::Status SetNode(JailerArgs& a, absl::string_view flag, const std::string& v) {
  int n = 0;
  if (v.empty() || v.find_first_not_of("0123456789") != std::string::npos ||
      !absl::SimpleAtoi(v, &n) || n > 4095) {
    return Bad(flag, absl::StrFormat("'%s' is not a NUMA node number", v));
  }
  a.numa_node = n;
  return absl::OkStatus();
}

using Setter = absl::Status (*)(JailerArgs&, absl::string_view, const std::string&);
struct ValueFlag {
  const char* name;
  bool repeatable;
  Setter set;
};
constexpr std::array<ValueFlag, 11> kValueFlags = {{
    {"--id", false, SetId},
    {"--exec-file", false, SetExecFile},
    {"--uid", false, SetUid},
    {"--gid", false, SetGid},
    {"--chroot-base-dir", false, SetChrootBase},
    {"--netns", false, SetNetns},
    {"--cgroup-version", false, SetCgroupVersion},
    {"--cgroup", true, SetCgroup},
    {"--parent-cgroup", false, SetParentCgroup},
    {"--resource-limit", true, SetResourceLimit},
    {"--node", false, SetNode},
}};

const ValueFlag* FindValueFlag(absl::string_view name) {
  for (const ValueFlag& f : kValueFlags) {
    if (name == f.name) return &f;
  }
  return nullptr;
}

}  // namespace

absl::Status CheckId(const std::string& id) {
  if (id.empty()) return JailerError(kExitBadId, "--id: empty");
  if (id.size() > kMaxIdLength) {
    return JailerError(kExitBadId, absl::StrFormat("--id: %d characters, at most %d allowed",
                                                   id.size(), kMaxIdLength));
  }
  for (size_t i = 0; i < id.size(); ++i) {
    const char c = id[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-')) {
      return JailerError(kExitBadId,
                         absl::StrFormat("--id: '%s' has '%c' at offset %d; only letters, digits "
                                         "and hyphens are allowed",
                                         id, c, i));
    }
  }
  return absl::OkStatus();
}

namespace {

// One flag at args[i] (and its value, which may be args[i + 1]: then i moves past it).
absl::Status ParseOne(const std::vector<std::string>& args, size_t& i, JailerArgs& a,
                      std::vector<std::string>& seen) {
  const std::string& arg = args[i];
  const size_t eq = arg.find('=');
  const bool inline_value = arg.rfind("--", 0) == 0 && eq != std::string::npos;
  const std::string name = inline_value ? arg.substr(0, eq) : arg;
  bool* boolean = name == "--daemonize"              ? &a.daemonize
                  : name == "--new-pid-ns"           ? &a.new_pid_ns
                  : name == "--help" || name == "-h" ? &a.help
                  : name == "--version"              ? &a.version
                                                     : nullptr;
  const ValueFlag* flag = FindValueFlag(name);
  if (boolean == nullptr && flag == nullptr) {
    if (arg.rfind("-", 0) != 0) {
      return Bad(arg, "unexpected argument (arguments for the VMM go after --)");
    }
    return Bad(name, "unknown flag (arguments for the VMM go after --)");
  }
  if (boolean != nullptr) {
    if (inline_value) return Bad(name, "takes no value");
    *boolean = true;
    return absl::OkStatus();
  }
  if (!flag->repeatable && std::find(seen.begin(), seen.end(), name) != seen.end()) {
    return Bad(name, "given more than once");
  }
  seen.push_back(name);
  if (inline_value) return flag->set(a, name, arg.substr(eq + 1));
  if (i + 1 >= args.size() || args[i + 1].rfind("--", 0) == 0) return Bad(name, "missing value");
  return flag->set(a, name, args[++i]);
}

// The jailer gives the VMM `--id <id>` itself, as Firecracker's does; the same id after `--` is
// dropped from the VMM's arguments, a different one is refused.
absl::Status CheckVmmId(const JailerArgs& a) {
  for (size_t i = 0; i < a.vmm_args.size(); ++i) {
    std::string v;
    if (a.vmm_args[i] == "--id" && i + 1 < a.vmm_args.size()) {
      v = a.vmm_args[i + 1];
    } else if (a.vmm_args[i].rfind("--id=", 0) == 0) {
      v = a.vmm_args[i].substr(5);
    } else {
      continue;
    }
    if (v != a.id) {
      return Bad("--id",
                 absl::StrFormat("'%s', but the VMM's arguments after -- say --id '%s'", a.id, v));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<JailerArgs> ParseJailerArgs(const std::vector<std::string>& args) {
  JailerArgs a;
  std::vector<std::string> seen;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--") {
      a.vmm_args.assign(args.begin() + static_cast<long>(i) + 1, args.end());
      break;
    }
    EV_RETURN_IF_ERROR(ParseOne(args, i, a, seen));
  }
  if (a.help || a.version) return a;
  for (const char* required : {"--id", "--exec-file", "--uid", "--gid"}) {
    if (std::find(seen.begin(), seen.end(), required) == seen.end()) {
      return Bad(required, "missing (required)");
    }
  }
  EV_RETURN_IF_ERROR(CheckVmmId(a));
  return a;
}

std::string JailerArgs::ExecFileName() const {
  const size_t slash = exec_file.rfind('/');
  return slash == std::string::npos ? exec_file : exec_file.substr(slash + 1);
}

std::string JailerArgs::JailDir() const {
  const std::string base = chroot_base_dir == "/" ? "" : chroot_base_dir;
  return absl::StrCat(base, "/", ExecFileName(), "/", id);
}

std::string JailerArgs::RootDir() const { return JailDir() + "/root"; }

std::string JailerArgs::CgroupPath() const {
  return absl::StrCat(parent_cgroup.empty() ? ExecFileName() : parent_cgroup, "/", id);
}

std::vector<std::string> VmmArgv(const JailerArgs& a, uint64_t start_us, uint64_t start_cpu_us,
                                 uint64_t parent_cpu_us) {
  std::vector<std::string> argv = {"--id",
                                   a.id,
                                   "--start-time-us",
                                   std::to_string(start_us),
                                   "--start-time-cpu-us",
                                   std::to_string(start_cpu_us),
                                   "--parent-cpu-time-us",
                                   std::to_string(parent_cpu_us)};
  for (size_t i = 0; i < a.vmm_args.size(); ++i) {
    if (a.vmm_args[i] == "--id" && i + 1 < a.vmm_args.size()) {
      ++i;  // the same id (CheckVmmId): already given
    } else if (a.vmm_args[i].rfind("--id=", 0) != 0) {
      argv.push_back(a.vmm_args[i]);
    }
  }
  return argv;
}

std::string Usage() {
  return "usage: jailer --id ID --exec-file PATH --uid UID --gid GID\n"
         "              [--chroot-base-dir DIR (/srv/jailer)] [--netns PATH]\n"
         "              [--cgroup-version 1|2 (1)] [--cgroup FILE=VALUE ...]\n"
         "              [--parent-cgroup RELATIVE_PATH] [--node NUMA_NODE]\n"
         "              [--resource-limit fsize=N|no-file=N ...]\n"
         "              [--daemonize] [--new-pid-ns] [-- VMM ARGUMENTS...]\n"
         "Builds <chroot-base-dir>/<exec file name>/<id>/root, moves into its cgroup and\n"
         "namespaces, drops every privilege and execs /<exec file name> --id ID ... there.\n"
         "See docs/jailer.md.\n";
}

}  // namespace edgevisor::jailer
