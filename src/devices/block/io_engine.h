// Host I/O backends for a block device queue. One engine per queue; the device thread submits
// operations and reaps completions when event_fd() becomes readable.
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace edgevisor::block {

struct IoOp {
  enum class Kind { kRead, kWrite, kFlush, kDiscard, kWriteZeroes };
  Kind kind;
  uint64_t offset = 0;
  uint64_t len = 0;            // kDiscard / kWriteZeroes
  const iovec* iov = nullptr;  // kRead / kWrite: must stay valid until completion
  int iovcnt = 0;
  bool unmap = false;  // kWriteZeroes: a hole is fine
  uint64_t tag = 0;
};

class IoEngine {
 public:
  enum class Kind { kUring, kSync };
  virtual ~IoEngine() = default;
  virtual Kind kind() const = 0;
  virtual int event_fd() const = 0;
  // Queues an operation. The result arrives through Reap as -errno or the bytes transferred.
  virtual absl::Status Submit(const IoOp& op) = 0;
  // Hands queued operations to the kernel (one syscall for a batch).
  virtual void Kick() = 0;
  // Calls done(tag, result) for every completed operation.
  virtual void Reap(const std::function<void(uint64_t tag, int64_t result)>& done) = 0;
};

// io_uring with `depth` entries and its completion eventfd. Fails when io_uring is unavailable.
absl::StatusOr<std::unique_ptr<IoEngine>> CreateUringEngine(int fd, unsigned depth);
// Plain syscalls, executed at Submit; completions are reported through an eventfd.
absl::StatusOr<std::unique_ptr<IoEngine>> CreateSyncEngine(int fd);

}  // namespace edgevisor::block
