#include "src/jailer/namespaces.h"

#include <fcntl.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "src/base/errors.h"
#include "src/jailer/exit_codes.h"

namespace edgevisor::jailer {
namespace {

absl::Status JailErrno(absl::string_view what) {
  return JailerError(kExitJail, absl::StrFormat("%s: %s", what, strerror(errno)));
}

}  // namespace

absl::StatusOr<UniqueFd> OpenNetns(const std::string& path) {
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) {
    return JailerError(kExitNetns, absl::StrFormat("--netns %s: %s", path, strerror(errno)));
  }
  // NS_GET_NSTYPE (Linux 4.11) answers only for nsfs files: a plain file gets ENOTTY.
  const int type = ioctl(fd.get(), NS_GET_NSTYPE);
  if (type != CLONE_NEWNET) {
    return JailerError(kExitNetns,
                       absl::StrFormat("--netns %s: not a network namespace (%s)", path,
                                       type < 0 ? strerror(errno) : "another kind of namespace"));
  }
  return fd;
}

absl::Status JoinNetns(const UniqueFd& netns, const std::string& path) {
  if (setns(netns.get(), CLONE_NEWNET) != 0) return JailErrno(absl::StrCat("setns ", path));
  return absl::OkStatus();
}

absl::Status PivotInto(const std::string& root) {
  if (unshare(CLONE_NEWNS) != 0) return JailErrno("unshare(CLONE_NEWNS)");
  // pivot_root(2) refuses shared mounts; private also keeps our unmounts from the host.
  if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    return JailErrno("making / private");
  }
  // The new root must be a mount point. MS_REC keeps what a fleet manager mounted inside it.
  if (mount(root.c_str(), root.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0) {
    return JailErrno(absl::StrCat("bind-mounting ", root, " on itself"));
  }
  if (chdir(root.c_str()) != 0) return JailErrno(absl::StrCat("chdir ", root));
  // pivot_root(".", ".") stacks the old root on top of the new one, and unmounting "." then
  // drops it (pivot_root(2), NOTES): no old_root folder is left in the jail.
  if (syscall(SYS_pivot_root, ".", ".") != 0) return JailErrno(absl::StrCat("pivot_root ", root));
  if (umount2(".", MNT_DETACH) != 0) return JailErrno("unmounting the host's root");
  if (chroot(".") != 0 || chdir("/") != 0) return JailErrno("chroot into the jail");
  return absl::OkStatus();
}

absl::StatusOr<pid_t> ForkIntoNewPidNamespace() {
  // The caller stays where it is; its next child is pid 1 of the new namespace.
  if (unshare(CLONE_NEWPID) != 0) return JailErrno("unshare(CLONE_NEWPID)");
  const pid_t pid = fork();
  if (pid < 0) return JailErrno("fork into the new PID namespace");
  return pid;
}

}  // namespace edgevisor::jailer
