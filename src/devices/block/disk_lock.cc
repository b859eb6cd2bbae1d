#include "src/devices/block/disk_lock.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "src/base/errors.h"
#include "src/base/read_file.h"

namespace edgevisor::block {

bool FdinfoHoldsLock(const std::string& fdinfo_text, unsigned major, unsigned minor,
                     unsigned long inode) {  // NOLINT(runtime/int)
  // "lock:\t1: OFDLCK ADVISORY  WRITE -1 fe:00:5678 0 EOF" (device numbers in hexadecimal).
  const std::string want = absl::StrFormat(" %02x:%02x:%d ", major, minor, inode);
  for (absl::string_view line : absl::StrSplit(fdinfo_text, '\n')) {
    if (absl::StartsWith(line, "lock:") && line.find(" -> ") == absl::string_view::npos &&
        absl::StrContains(line, want)) {
      return true;
    }
  }
  return false;
}

namespace {

// The pid of a process with an fd that holds a lock on DEV:INO, or 0. /proc/locks shows -1
// for OFD locks, so this reads every process's fdinfo (only on the error path).
int FindLockHolder(dev_t dev, ino_t ino) {
  std::unique_ptr<DIR, int (*)(DIR*)> proc(opendir("/proc"), closedir);
  if (!proc) return 0;
  while (dirent* p = readdir(proc.get())) {
    int pid = 0;
    if (!absl::SimpleAtoi(p->d_name, &pid)) continue;
    const std::string dir = absl::StrFormat("/proc/%d/fdinfo", pid);
    std::unique_ptr<DIR, int (*)(DIR*)> fds(opendir(dir.c_str()), closedir);
    if (!fds) continue;
    while (dirent* f = readdir(fds.get())) {
      if (f->d_name[0] == '.') continue;
      auto text = ReadSmallFile(dir + "/" + f->d_name, 1 << 16);
      if (text.ok() && FdinfoHoldsLock(*text, major(dev), minor(dev), ino)) return pid;
    }
  }
  return 0;
}

}  // namespace

absl::Status LockDisk(int fd, const std::string& path, bool read_only) {
  struct flock fl {};
  fl.l_type = read_only ? F_RDLCK : F_WRLCK;
  fl.l_whence = SEEK_SET;  // l_start = l_len = 0: the whole file, however it grows
  if (fcntl(fd, F_OFD_SETLK, &fl) == 0) return absl::OkStatus();
  const int err = errno;
  if (err != EAGAIN && err != EACCES) {
    return ErrnoError(absl::StrFormat("path=%s: locking the image", path), err);
  }
  std::string holder = "another process";
  struct stat st {};
  if (fstat(fd, &st) == 0) {
    if (const int pid = FindLockHolder(st.st_dev, st.st_ino); pid > 0) {
      holder = absl::StrFormat("process %d", pid);
    }
  }
  return UsageError(absl::StrFormat(
      "path=%s: the image is in use: %s holds it %s; a drive opened read-write is locked so that "
      "no second VM can write it at the same time (read-only drives may share an image)",
      path, holder, read_only ? "read-write" : "open"));
}

}  // namespace edgevisor::block
