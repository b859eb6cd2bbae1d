#include "src/devices/block/io_engine.h"

#include <fcntl.h>
#include <liburing.h>
#include <linux/falloc.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <unordered_map>
#include <vector>

#include "absl/strings/str_format.h"
#include "src/base/errors.h"
#include "src/base/event_fd.h"
#include "src/base/fd.h"

namespace edgevisor::block {
namespace {

int FallocMode(const IoOp& op) {
  if (op.kind == IoOp::Kind::kDiscard) return FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
  // Write-zeroes: a hole reads back as zeros, so unmap may punch; otherwise zero in place.
  return op.unmap ? FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE
                  : FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE;
}

bool IsZeroRange(const IoOp& op) { return op.kind == IoOp::Kind::kWriteZeroes && !op.unmap; }

// Write-zeroes without unmap where the file system has no FALLOC_FL_ZERO_RANGE (tmpfs, for one):
// write zeros, as Linux's loop driver and QEMU do. Punching a hole instead would free the
// storage, which the guest asked us not to do. Returns 0 or -errno.
int64_t WriteZeros(int fd, uint64_t offset, uint64_t len) {
  static constexpr uint8_t kZeros[64 * 1024] = {};
  while (len > 0) {
    const size_t chunk = static_cast<size_t>(std::min<uint64_t>(len, sizeof(kZeros)));
    const ssize_t n = pwrite(fd, kZeros, chunk, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return -errno;
    if (n == 0) return -EIO;
    offset += static_cast<uint64_t>(n);
    len -= static_cast<uint64_t>(n);
  }
  return 0;
}

class UringEngine : public IoEngine {
 public:
  ~UringEngine() override {
    if (inited_) io_uring_queue_exit(&ring_);
  }
  static absl::StatusOr<std::unique_ptr<IoEngine>> Create(int fd, unsigned depth) {
    auto e = std::unique_ptr<UringEngine>(new UringEngine(fd));
    int r = io_uring_queue_init(depth, &e->ring_, 0);
    if (r < 0) return absl::ErrnoToStatus(-r, "io_uring_queue_init");
    e->inited_ = true;
    // Operations this engine needs; a kernel without them gets the sync engine instead.
    io_uring_probe* probe = io_uring_get_probe_ring(&e->ring_);
    if (probe == nullptr) return absl::UnavailableError("io_uring probe failed");
    const bool ok = io_uring_opcode_supported(probe, IORING_OP_READV) &&
                    io_uring_opcode_supported(probe, IORING_OP_WRITEV) &&
                    io_uring_opcode_supported(probe, IORING_OP_FSYNC) &&
                    io_uring_opcode_supported(probe, IORING_OP_FALLOCATE);
    io_uring_free_probe(probe);
    if (!ok) return absl::UnavailableError("io_uring lacks readv/writev/fsync/fallocate");
    e->efd_.Reset(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!e->efd_.valid()) return ErrnoError("eventfd for io_uring");
    r = io_uring_register_eventfd(&e->ring_, e->efd_.get());
    if (r < 0) return absl::ErrnoToStatus(-r, "io_uring_register_eventfd");
    return std::unique_ptr<IoEngine>(std::move(e));
  }

  Kind kind() const override { return Kind::kUring; }
  int event_fd() const override { return efd_.get(); }

  absl::Status Submit(const IoOp& op) override {
    if (IsZeroRange(op) && no_zero_range_) {  // known unsupported: zeros, now, on this thread
      done_.push_back({op.tag, WriteZeros(fd_, op.offset, op.len)});
      return absl::OkStatus();
    }
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    if (sqe == nullptr) {  // submission queue full: flush it and retry once
      io_uring_submit(&ring_);
      sqe = io_uring_get_sqe(&ring_);
      if (sqe == nullptr) return absl::ResourceExhaustedError("io_uring submission queue full");
    }
    switch (op.kind) {
      case IoOp::Kind::kRead:
        io_uring_prep_readv(sqe, fd_, op.iov, static_cast<unsigned>(op.iovcnt), op.offset);
        break;
      case IoOp::Kind::kWrite:
        io_uring_prep_writev(sqe, fd_, op.iov, static_cast<unsigned>(op.iovcnt), op.offset);
        break;
      case IoOp::Kind::kFlush:
        io_uring_prep_fsync(sqe, fd_, IORING_FSYNC_DATASYNC);
        break;
      case IoOp::Kind::kDiscard:
      case IoOp::Kind::kWriteZeroes:
        io_uring_prep_fallocate(sqe, fd_, FallocMode(op), static_cast<off_t>(op.offset),
                                static_cast<off_t>(op.len));
        if (IsZeroRange(op)) zero_ranges_[op.tag] = {op.offset, op.len};
        break;
    }
    io_uring_sqe_set_data64(sqe, op.tag);
    return absl::OkStatus();
  }

  void Kick() override {
    io_uring_submit(&ring_);
    if (!done_.empty()) SignalEventFd(efd_.get());
  }

  void Reap(const std::function<void(uint64_t, int64_t)>& done) override {
    DrainEventFd(efd_.get());
    io_uring_cqe* cqe;
    while (io_uring_peek_cqe(&ring_, &cqe) == 0) {
      const uint64_t tag = io_uring_cqe_get_data64(cqe);
      int64_t res = cqe->res;
      io_uring_cqe_seen(&ring_, cqe);
      if (auto it = zero_ranges_.find(tag); it != zero_ranges_.end()) {
        if (res == -EOPNOTSUPP) {
          no_zero_range_ = true;
          res = WriteZeros(fd_, it->second.first, it->second.second);
        }
        zero_ranges_.erase(it);
      }
      done(tag, res);
    }
    std::vector<std::pair<uint64_t, int64_t>> batch;
    batch.swap(done_);
    for (const auto& [tag, res] : batch) done(tag, res);
  }

 private:
  explicit UringEngine(int fd) : fd_(fd) {}
  int fd_;
  bool inited_ = false;
  io_uring ring_{};
  UniqueFd efd_;
  // Write-zeroes in flight as FALLOC_FL_ZERO_RANGE (tag -> offset, length), in case the file
  // system refuses it; once one has, later ones write zeros at submission (done_).
  std::unordered_map<uint64_t, std::pair<uint64_t, uint64_t>> zero_ranges_;
  bool no_zero_range_ = false;
  std::vector<std::pair<uint64_t, int64_t>> done_;
};

class SyncEngine : public IoEngine {
 public:
  static absl::StatusOr<std::unique_ptr<IoEngine>> Create(int fd) {
    auto e = std::unique_ptr<SyncEngine>(new SyncEngine(fd));
    e->efd_.Reset(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!e->efd_.valid()) return ErrnoError("eventfd for sync block engine");
    return std::unique_ptr<IoEngine>(std::move(e));
  }
  Kind kind() const override { return Kind::kSync; }
  int event_fd() const override { return efd_.get(); }

  absl::Status Submit(const IoOp& op) override {
    int64_t res = 0;
    switch (op.kind) {
      case IoOp::Kind::kRead:
        res = Loop(
            [&](uint64_t done, const iovec* iov, int cnt) {
              return preadv(fd_, iov, cnt, static_cast<off_t>(op.offset + done));
            },
            op);
        break;
      case IoOp::Kind::kWrite:
        res = Loop(
            [&](uint64_t done, const iovec* iov, int cnt) {
              return pwritev(fd_, iov, cnt, static_cast<off_t>(op.offset + done));
            },
            op);
        break;
      case IoOp::Kind::kFlush:
        res = fdatasync(fd_) == 0 ? 0 : -errno;
        break;
      case IoOp::Kind::kDiscard:
      case IoOp::Kind::kWriteZeroes:
        res = fallocate(fd_, FallocMode(op), static_cast<off_t>(op.offset),
                        static_cast<off_t>(op.len)) == 0
                  ? 0
                  : -errno;
        if (res == -EOPNOTSUPP && IsZeroRange(op)) res = WriteZeros(fd_, op.offset, op.len);
        break;
    }
    done_.push_back({op.tag, res});
    return absl::OkStatus();
  }

  void Kick() override {
    if (!done_.empty()) SignalEventFd(efd_.get());
  }

  void Reap(const std::function<void(uint64_t, int64_t)>& done) override {
    DrainEventFd(efd_.get());
    std::vector<std::pair<uint64_t, int64_t>> batch;
    batch.swap(done_);
    for (const auto& [tag, res] : batch) done(tag, res);
  }

 private:
  explicit SyncEngine(int fd) : fd_(fd) {}

  // Repeats a vectored call until all bytes moved (short transfers), or returns -errno.
  template <typename Fn>
  static int64_t Loop(Fn fn, const IoOp& op) {
    std::vector<iovec> iov(op.iov, op.iov + op.iovcnt);
    uint64_t total = 0, want = 0;
    for (const iovec& v : iov) want += v.iov_len;
    size_t first = 0;
    while (total < want) {
      ssize_t n = fn(total, iov.data() + first, static_cast<int>(iov.size() - first));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return -errno;
      if (n == 0) return -EIO;  // past end of file
      total += static_cast<uint64_t>(n);
      auto left = static_cast<size_t>(n);
      while (first < iov.size() && left >= iov[first].iov_len) left -= iov[first++].iov_len;
      if (first < iov.size()) {
        iov[first].iov_base = static_cast<uint8_t*>(iov[first].iov_base) + left;
        iov[first].iov_len -= left;
      }
    }
    return static_cast<int64_t>(total);
  }

  int fd_;
  UniqueFd efd_;
  std::vector<std::pair<uint64_t, int64_t>> done_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<IoEngine>> CreateUringEngine(int fd, unsigned depth) {
  return UringEngine::Create(fd, depth);
}
absl::StatusOr<std::unique_ptr<IoEngine>> CreateSyncEngine(int fd) {
  return SyncEngine::Create(fd);
}

}  // namespace edgevisor::block
