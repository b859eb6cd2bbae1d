// virtio-balloon (virtio 1.2 §5.5): the host sets a target (how much guest RAM the guest should
// hand back); the guest's driver gives pages to the balloon on the inflate queue, and the device
// releases them from the host (madvise MADV_DONTNEED, so the VMM's resident memory falls), and
// takes them back on the deflate queue. Optionally a statistics queue (the guest's memory
// figures, refreshed every polling interval) and free page reporting (free guest pages released
// the same way). One worker thread ("balloon") serves every queue.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "nlohmann/json.hpp"
#include "src/base/event_fd.h"
#include "src/base/fd.h"
#include "src/devices/balloon/balloon_config.h"
#include "src/devices/balloon/virtio_balloon_spec.h"
#include "src/devices/virtio/device.h"
#include "src/devices/virtio/worker.h"

namespace edgevisor::balloon {

// Firecracker's balloon metrics, and what the guest did that the device refused.
struct BalloonCounters {
  std::atomic<uint64_t> inflates{0};            // inflate_count: inflate buffers
  std::atomic<uint64_t> inflated_pages{0};      // pages released to the host on inflate
  std::atomic<uint64_t> deflates{0};            // deflate_count
  std::atomic<uint64_t> stats_updates{0};       // stats_updates_count
  std::atomic<uint64_t> stats_update_fails{0};  // stats_update_fails
  std::atomic<uint64_t> bad_pfns{0};            // inflated page numbers outside guest RAM
  std::atomic<uint64_t> event_fails{0};         // event_fails: broken chains, failed releases
  std::atomic<uint64_t> reports{0};             // free_page_report_count
  std::atomic<uint64_t> reported_bytes{0};      // free_page_report_freed
  std::atomic<uint64_t> report_fails{0};        // free_page_report_fails
  std::atomic<uint64_t> activate_fails{0};      // activate_fails
};

// GET /balloon/statistics: the target and what the balloon holds, and the guest's last figures
// (by tag, §5.5.6.3; absent: the guest never sent it).
struct BalloonStats {
  uint32_t target_pages = 0;
  uint32_t actual_pages = 0;
  std::optional<uint64_t> values[kStatTags];
};

class VirtioBalloon : public virtio::VirtioDevice {
 public:
  static constexpr uint16_t kQueueSize = 256;
  // At most this many statistics of one buffer are read; more are ignored.
  static constexpr size_t kMaxStats = 64;

  // The device thread is started here, parked, and installs FILTER (when not null) first.
  static absl::StatusOr<std::unique_ptr<VirtioBalloon>> Create(
      const BalloonConfig& cfg, std::string thread_name,
      std::shared_ptr<const ThreadFilter> filter = nullptr);
  ~VirtioBalloon() override;

  uint32_t device_id() const override { return kDeviceIdBalloon; }
  uint64_t features() const override;
  uint16_t num_queues() const override;
  uint16_t queue_max_size() const override { return kQueueSize; }
  void ReadConfig(uint64_t offset, absl::Span<uint8_t> data) const override;
  // The driver's `actual` (§5.5.4); writes to anything else are ignored.
  void WriteConfig(uint64_t offset, absl::Span<const uint8_t> data) override;
  absl::Status Activate(virtio::ActivateArgs args) override;
  void Reset() override;
  absl::StatusOr<std::vector<virtio::QueueState>> Quiesce() override;
  nlohmann::json SaveDeviceState() const override;
  absl::Status LoadDeviceState(const nlohmann::json& j) override;
  std::string counter_group() const override { return "balloon"; }
  CounterList Counters() const override;

  // From the API thread. A new target (PATCH /balloon) tells an active driver at once with a
  // configuration-change interrupt.
  void SetTargetMib(uint32_t mib);
  // PATCH /balloon/statistics: a new polling interval, with a refresh now. Statistics cannot be
  // turned on or off once the device exists (0 is refused, as is any value without them).
  absl::Status SetStatsInterval(uint32_t seconds);
  bool stats_enabled() const { return cfg_.stats_polling_interval_s != 0; }
  BalloonStats Stats() const;
  const BalloonCounters& counters() const { return counters_; }

 private:
  class Worker;  // the device thread's side: virtio_balloon.cc
  VirtioBalloon(const BalloonConfig& cfg, std::string thread_name)
      : cfg_(cfg), thread_name_(std::move(thread_name)) {}

  const BalloonConfig cfg_;  // what it was created with (features, queues)
  std::string thread_name_;
  std::atomic<uint32_t> target_pages_{0};
  std::atomic<uint32_t> actual_pages_{0};
  std::atomic<uint32_t> stats_interval_s_{0};
  UniqueFd stats_timer_;      // timerfd: the next statistics refresh
  EventFd interval_changed_;  // the API changed the interval: refresh and re-arm
  mutable absl::Mutex mu_;
  virtio::InterruptSink* irq_ ABSL_GUARDED_BY(mu_) = nullptr;      // while active
  std::optional<uint64_t> stats_[kStatTags] ABSL_GUARDED_BY(mu_);  // a StatValues
  BalloonCounters counters_;
  virtio::WorkerThread thread_;
};

}  // namespace edgevisor::balloon
