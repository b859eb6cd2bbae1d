// virtio-blk device model (virtio 1.2 §5.2): config space, features, and one worker thread
// ("blkN") that serves every queue of the device from an epoll loop. Each queue has its own
// host I/O engine (io_uring ring, or the sync fallback).
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "src/base/event_fd.h"
#include "src/base/fd.h"
#include "src/devices/block/drive_config.h"
#include "src/devices/block/io_engine.h"
#include "src/devices/block/request.h"
#include "src/devices/virtio/device.h"
#include "src/devices/virtio/rate_limiter.h"
#include "src/devices/virtio/worker.h"

namespace edgevisor::block {

struct BlockCounters {
  std::atomic<uint64_t> read_ops{0}, write_ops{0}, flush_ops{0}, discard_ops{0};
  std::atomic<uint64_t> read_bytes{0}, write_bytes{0};
  std::atomic<uint64_t> io_errors{0}, bad_requests{0};
  std::atomic<uint64_t> limiter_wakeups{0};  // the rate limiter's timer fired
};

class VirtioBlock : public virtio::VirtioDevice {
 public:
  static constexpr uint16_t kQueueSize = 256;

  // Opens the backing file. Errors name the drive and the problem (missing, directory,
  // permission, O_DIRECT unsupported).
  // The device thread is started here, parked, and installs FILTER (when not null) first.
  static absl::StatusOr<std::unique_ptr<VirtioBlock>> Create(
      const DriveConfig& cfg, std::string thread_name,
      std::shared_ptr<const ThreadFilter> filter = nullptr);
  ~VirtioBlock() override;

  uint32_t device_id() const override;
  uint64_t features() const override;
  uint16_t num_queues() const override { return cfg_.queues; }
  uint16_t queue_max_size() const override { return kQueueSize; }
  void ReadConfig(uint64_t offset, absl::Span<uint8_t> data) const override;
  void WriteConfig(uint64_t, absl::Span<const uint8_t>) override {}  // all fields read-only
  absl::Status Activate(virtio::ActivateArgs args) override;
  void Reset() override;
  absl::StatusOr<std::vector<virtio::QueueState>> Quiesce() override;
  std::string counter_group() const override { return "block"; }
  CounterList Counters() const override;

  // Points the drive at another backing file while the VM runs (Firecracker's PATCH /drives
  // with path_on_host): opens it with the drive's flags, waits for the host I/O in flight on
  // the old file, switches every queue's engine to the new one, updates the capacity and
  // raises a configuration-change interrupt. On error the drive keeps its old file.
  // Thread-safe; blocks the caller until the device thread has switched (at most 5 s).
  absl::Status ReplaceBacking(const std::string& path);
  // PATCH /drives with rate_limiter: new limits at once, for every queue. Thread-safe.
  void UpdateRateLimiter(const RateLimiterConfig& cfg) { limiter_->Update(cfg); }

  // How each queue's host I/O engine is made on FD; by default the kind probed at Create. The
  // unit tests hand in an engine whose completions they release themselves. Before Activate.
  using EngineFactory = std::function<absl::StatusOr<std::unique_ptr<IoEngine>>(int fd)>;
  void SetEngineFactory(EngineFactory f) { engine_factory_ = std::move(f); }

  const BlockCounters& counters() const { return counters_; }
  uint64_t capacity_sectors() const;
  IoEngine::Kind engine_kind() const { return engine_kind_; }

 private:
  class Worker;  // the device thread's side: virtio_block.cc
  VirtioBlock(DriveConfig cfg, std::string thread_name)
      : cfg_(std::move(cfg)), thread_name_(std::move(thread_name)) {}
  // One host I/O engine on FD, of the kind probed at Create.
  absl::StatusOr<std::unique_ptr<IoEngine>> CreateEngine(int fd) const;

  struct Backing {
    UniqueFd fd;
    UniqueFd lock_fd;  // an fd whose open file description holds the image's lock (disk_lock.h)
    uint64_t capacity_sectors = 0;
  };
  // Opens and locks PATH. CURRENT_LOCK_FD, when valid, is the lock of the file in use: a swap to
  // the same file keeps that lock instead of conflicting with it.
  static absl::StatusOr<Backing> OpenBacking(const DriveConfig& cfg, const std::string& path,
                                             int current_lock_fd = -1);
  static absl::Status TakeLock(Backing& b, const std::string& path, bool read_only,
                               int current_lock_fd);
  // Installs `b` as the backing file: fd, limits and config space. Device thread, or no
  // device thread running.
  void InstallBacking(Backing b);

  DriveConfig cfg_;
  std::string thread_name_;
  UniqueFd disk_fd_;
  UniqueFd lock_fd_;  // see Backing::lock_fd
  DiskLimits limits_;
  mutable absl::Mutex config_mu_;  // config_ is read by vCPU threads, changed by a swap
  virtio_blk::Config config_ ABSL_GUARDED_BY(config_mu_){};
  IoEngine::Kind engine_kind_ = IoEngine::Kind::kSync;
  EngineFactory engine_factory_;  // null: engine_kind_
  BlockCounters counters_;
  // Requests and bytes, shared by the drive's queues (as Firecracker's is): a request it refuses
  // stays in its ring, and every queue waits for the limiter's timer.
  std::unique_ptr<virtio::RateLimiter> limiter_;
  virtio::WorkerThread thread_;
  std::atomic<bool> running_{false};  // thread_ started and not yet stopped

  // Backing-file swaps: ReplaceBacking hands the opened file to the device thread.
  absl::Mutex swap_mu_;  // one swap at a time, and not during Activate
  absl::Mutex pending_mu_;
  std::optional<Backing> pending_ ABSL_GUARDED_BY(pending_mu_);
  std::optional<absl::Status> pending_result_ ABSL_GUARDED_BY(pending_mu_);
  bool SwapAnswered() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(pending_mu_) {
    return pending_result_.has_value();
  }
  EventFd swap_fd_;  // signalled when pending_ holds a file for the device thread
};

}  // namespace edgevisor::block
