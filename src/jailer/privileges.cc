// Capabilities are dropped with prctl(2) and the raw capset(2)/capget(2) syscalls rather than
// libcap: it is four calls, and it keeps a static archive (and its arm64 build) out of the link.
#include "src/jailer/privileges.h"

#include <grp.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_format.h"
#include "src/jailer/exit_codes.h"

namespace edgevisor::jailer {
namespace {

absl::Status PrivErrno(absl::string_view what) {
  return JailerError(kExitPrivileges, absl::StrFormat("%s: %s", what, strerror(errno)));
}

// PR_CAPBSET_DROP needs CAP_SETPCAP, so this runs while still root. EINVAL marks the first
// number past CAP_LAST_CAP of the running kernel (which may know more than our headers).
absl::Status DropBoundingSet() {
  for (int cap = 0; cap < 64; ++cap) {
    if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) == 0) continue;
    if (errno == EINVAL) return absl::OkStatus();
    return PrivErrno(absl::StrFormat("dropping capability %d from the bounding set", cap));
  }
  return absl::OkStatus();
}

absl::Status ClearCapabilitySets() {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
  if (syscall(SYS_capset, &header, data) != 0) return PrivErrno("capset (all empty)");
  return absl::OkStatus();
}

// What DropPrivileges promised, read back from the kernel.
absl::Status CheckDropped(uid_t uid, gid_t gid) {
  uid_t ru, eu, su;
  gid_t rg, eg, sg;
  if (getresuid(&ru, &eu, &su) != 0 || getresgid(&rg, &eg, &sg) != 0) {
    return PrivErrno("getresuid/getresgid");
  }
  if (ru != uid || eu != uid || su != uid || rg != gid || eg != gid || sg != gid) {
    return JailerError(
        kExitPrivileges,
        absl::StrFormat("uid/gid did not change to %u:%u (now %u:%u)", uid, gid, eu, eg));
  }
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
  if (syscall(SYS_capget, &header, data) != 0) return PrivErrno("capget");
  for (const auto& d : data) {
    if (d.effective != 0 || d.permitted != 0 || d.inheritable != 0) {
      return JailerError(kExitPrivileges, "capabilities remain after the drop");
    }
  }
  if (getgroups(0, nullptr) != 0) {
    return JailerError(kExitPrivileges, "supplementary groups remain after the drop");
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status CloseInheritedFds() {
  if (close_range(3, ~0U, 0) != 0) return PrivErrno("close_range(3, ~0)");
  return absl::OkStatus();
}

absl::Status SetResourceLimits(const std::vector<ResourceLimit>& limits) {
  std::vector<ResourceLimit> all = limits;
  if (all.empty()) all.push_back({"no-file", RLIMIT_NOFILE, kDefaultNoFile});
  for (const ResourceLimit& r : all) {
    const rlimit lim{static_cast<rlim_t>(r.value), static_cast<rlim_t>(r.value)};
    if (setrlimit(r.resource, &lim) != 0) {
      return PrivErrno(absl::StrFormat("--resource-limit %s=%u: setrlimit", r.name, r.value));
    }
  }
  return absl::OkStatus();
}

absl::Status DropPrivileges(uid_t uid, gid_t gid) {
  // No exec'd file (setuid, file capabilities) can give anything back.
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return PrivErrno("PR_SET_NO_NEW_PRIVS");
  if (absl::Status s = DropBoundingSet(); !s.ok()) return s;
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0) {
    return PrivErrno("clearing the ambient capabilities");
  }
  if (setgroups(0, nullptr) != 0) return PrivErrno("setgroups (none)");
  if (setresgid(gid, gid, gid) != 0) return PrivErrno(absl::StrFormat("--gid %u: setresgid", gid));
  // Leaving uid 0 clears the permitted and effective sets (capabilities(7), "Effect of user ID
  // changes on capabilities"); capset below also empties them for --uid 0 and the inheritable.
  if (setresuid(uid, uid, uid) != 0) return PrivErrno(absl::StrFormat("--uid %u: setresuid", uid));
  if (absl::Status s = ClearCapabilitySets(); !s.ok()) return s;
  return CheckDropped(uid, gid);
}

}  // namespace edgevisor::jailer
