#include "src/jailer/jail.h"

#include <fcntl.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "src/base/errors.h"
#include "src/base/fd.h"
#include "src/jailer/exit_codes.h"
#include "src/jailer/files.h"

namespace edgevisor::jailer {
namespace {

absl::Status JailError(const absl::Status& s) {
  return s.ok() ? s : JailerError(kExitJail, absl::StrCat("building the jail: ", s.message()));
}

// A hard link shares the inode with the host's binary: if the jailed uid or gid could write it,
// a compromised VMM could change the host's copy, so such a file is copied instead.
bool WritableByJailed(const struct stat& st, uid_t uid, gid_t gid) {
  return (st.st_uid == uid && (st.st_mode & S_IWUSR)) ||
         (st.st_gid == gid && (st.st_mode & S_IWGRP)) || (st.st_mode & S_IWOTH);
}

absl::Status CopyFile(const std::string& from, const std::string& to) {
  UniqueFd in(open(from.c_str(), O_RDONLY | O_CLOEXEC));
  if (!in.valid()) return ErrnoError(absl::StrCat("open ", from));
  struct stat st {};
  if (fstat(in.get(), &st) != 0) return ErrnoError(absl::StrCat("stat ", from));
  // Owned by root and not writable by the jailed uid, whatever the original's mode.
  UniqueFd out(open(to.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0755));
  if (!out.valid()) return ErrnoError(absl::StrCat("create ", to));
  if (fchmod(out.get(), 0755) != 0) return ErrnoError(absl::StrCat("chmod ", to));  // umask
  for (off_t done = 0; done < st.st_size;) {
    const ssize_t n = sendfile(out.get(), in.get(), &done, static_cast<size_t>(st.st_size - done));
    if (n < 0 && errno != EINTR) return ErrnoError(absl::StrCat("copy ", from, " to ", to));
    if (n == 0) break;  // the file shrank under us
  }
  return absl::OkStatus();
}

absl::Status PlaceExecFile(const JailerArgs& a) {
  const std::string to = a.RootDir() + "/" + a.ExecFileName();
  struct stat src {};
  struct stat dst {};
  if (stat(a.exec_file.c_str(), &src) != 0) return ErrnoError(absl::StrCat("stat ", a.exec_file));
  if (lstat(to.c_str(), &dst) == 0) {
    if (dst.st_dev == src.st_dev && dst.st_ino == src.st_ino &&
        !WritableByJailed(src, a.uid, a.gid)) {
      return absl::OkStatus();  // already linked by an earlier run
    }
    if (unlink(to.c_str()) != 0) return ErrnoError(absl::StrCat("unlink ", to));
  }
  if (!WritableByJailed(src, a.uid, a.gid)) {
    if (linkat(AT_FDCWD, a.exec_file.c_str(), AT_FDCWD, to.c_str(), AT_SYMLINK_FOLLOW) == 0) {
      return absl::OkStatus();
    }
    // EXDEV: another file system; EPERM: fs.protected_hardlinks or a file system without links.
    if (errno != EXDEV && errno != EPERM) {
      return ErrnoError(absl::StrCat("link ", a.exec_file, " to ", to));
    }
  }
  return CopyFile(a.exec_file, to);
}

absl::StatusOr<dev_t> HostDevice(const char* path) {
  struct stat st {};
  if (stat(path, &st) != 0) return JailError(ErrnoError(absl::StrCat("host device ", path)));
  if (!S_ISCHR(st.st_mode)) {
    return JailError(absl::FailedPreconditionError(absl::StrCat(path, ": not a device")));
  }
  return st.st_rdev;
}

// `path` (in the jail) as a character device `rdev`.
absl::Status MakeDeviceNode(const std::string& path, dev_t rdev, uid_t uid, gid_t gid) {
  EV_RETURN_IF_ERROR(MakeDirs(path.substr(0, path.rfind('/')), 0755));
  if (unlink(path.c_str()) != 0 && errno != ENOENT) {
    return ErrnoError(absl::StrCat("unlink ", path));
  }
  if (mknod(path.c_str(), S_IFCHR | S_IRUSR | S_IWUSR, rdev) != 0) {
    return ErrnoError(absl::StrFormat("mknod %s (%u:%u)", path, major(rdev), minor(rdev)));
  }
  if (chown(path.c_str(), uid, gid) != 0) return ErrnoError(absl::StrCat("chown ", path));
  return absl::OkStatus();
}

}  // namespace

absl::Status CheckExecFile(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) {
    return JailerError(kExitExecFile, absl::StrFormat("--exec-file %s: %s", path, strerror(errno)));
  }
  if (!S_ISREG(st.st_mode)) {
    return JailerError(kExitExecFile, absl::StrFormat("--exec-file %s: not a regular file", path));
  }
  if ((st.st_mode & (S_IXUSR | S_IXGRP | S_IXOTH)) == 0) {
    return JailerError(kExitExecFile, absl::StrFormat("--exec-file %s: not executable (mode %04o)",
                                                      path, st.st_mode & 07777));
  }
  return absl::OkStatus();
}

absl::Status BuildJailTree(const JailerArgs& a) {
  const std::string root = a.RootDir();
  EV_RETURN_IF_ERROR(JailError(MakeDirs(root, 0755)));
  EV_RETURN_IF_ERROR(JailError(PlaceExecFile(a)));
  if (chown(root.c_str(), a.uid, a.gid) != 0) {
    return JailError(ErrnoError(absl::StrCat("chown ", root)));
  }
  return absl::OkStatus();
}

absl::StatusOr<HostDevices> FindHostDevices() {
  HostDevices d;
  EV_ASSIGN_OR_RETURN(d.kvm, HostDevice("/dev/kvm"));
  EV_ASSIGN_OR_RETURN(d.tun, HostDevice("/dev/net/tun"));
  return d;
}

absl::Status MakeDeviceNodes(const HostDevices& devices, uid_t uid, gid_t gid) {
  EV_RETURN_IF_ERROR(JailError(MakeDeviceNode("/dev/kvm", devices.kvm, uid, gid)));
  return JailError(MakeDeviceNode("/dev/net/tun", devices.tun, uid, gid));
}

}  // namespace edgevisor::jailer
