#include "src/vmm/snapshot/rebase.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <vector>

#include "absl/strings/str_format.h"
#include "src/base/errors.h"
#include "src/base/fd.h"

namespace edgevisor::snapshot {
namespace {

absl::StatusOr<UniqueFd> OpenRegular(const std::string& path, int flags, const char* flag,
                                     struct stat* st) {
  UniqueFd fd(open(path.c_str(), flags | O_CLOEXEC));
  if (!fd.valid()) return UsageError(absl::StrFormat("%s %s: %s", flag, path, strerror(errno)));
  if (fstat(fd.get(), st) != 0 || !S_ISREG(st->st_mode)) {
    return UsageError(absl::StrFormat("%s %s: not a regular file", flag, path));
  }
  return fd;
}

absl::Status CopyRange(int from, int to, uint64_t at, uint64_t len, const std::string& diff) {
  std::vector<uint8_t> buf(1 << 20);
  while (len > 0) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(len, buf.size()));
    const ssize_t r = pread(from, buf.data(), n, static_cast<off_t>(at));
    if (r <= 0) return ErrnoError(absl::StrFormat("--diff-file %s: read at %d", diff, at));
    size_t done = 0;
    while (done < static_cast<size_t>(r)) {
      const ssize_t w = pwrite(to, buf.data() + done, static_cast<size_t>(r) - done,
                               static_cast<off_t>(at + done));
      if (w <= 0) return ErrnoError(absl::StrFormat("--base-file: write at %d", at + done));
      done += static_cast<size_t>(w);
    }
    at += static_cast<uint64_t>(r);
    len -= static_cast<uint64_t>(r);
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<uint64_t> RebaseMemoryFile(const std::string& base, const std::string& diff) {
  struct stat bs {
  }, ds{};
  EV_ASSIGN_OR_RETURN(UniqueFd b, OpenRegular(base, O_WRONLY, "--base-file", &bs));
  EV_ASSIGN_OR_RETURN(UniqueFd d, OpenRegular(diff, O_RDONLY, "--diff-file", &ds));
  if (bs.st_size != ds.st_size) {
    return UsageError(absl::StrFormat(
        "--diff-file %s is %d bytes and --base-file %s %d: not layers of one guest's memory", diff,
        static_cast<int64_t>(ds.st_size), base, static_cast<int64_t>(bs.st_size)));
  }
  const off_t size = ds.st_size;
  uint64_t copied = 0;
  for (off_t at = 0; at < size;) {
    const off_t data = lseek(d.get(), at, SEEK_DATA);
    if (data < 0) {
      if (errno == ENXIO) break;  // no data after AT
      return ErrnoError(absl::StrFormat("--diff-file %s: SEEK_DATA", diff));
    }
    off_t hole = lseek(d.get(), data, SEEK_HOLE);
    if (hole < 0) return ErrnoError(absl::StrFormat("--diff-file %s: SEEK_HOLE", diff));
    if (hole > size) hole = size;
    copied += static_cast<uint64_t>(hole - data);
    // A filesystem without hole reporting calls the whole file data: its holes would overwrite
    // BASE with zeros. What it stores (st_blocks) bounds the data a sparse file can have.
    if (copied > static_cast<uint64_t>(ds.st_blocks) * 512 + (1 << 20)) {
      return UsageError(absl::StrFormat(
          "--diff-file %s: its filesystem does not report holes (SEEK_DATA), so a Diff "
          "snapshot's unwritten pages cannot be told from zero pages; keep Diff snapshots on "
          "ext4, xfs, btrfs or tmpfs",
          diff));
    }
    EV_RETURN_IF_ERROR(CopyRange(d.get(), b.get(), static_cast<uint64_t>(data),
                                 static_cast<uint64_t>(hole - data), diff));
    at = hole;
  }
  if (fsync(b.get()) != 0) return ErrnoError(absl::StrFormat("--base-file %s: fsync", base));
  return copied;
}

}  // namespace edgevisor::snapshot
