// virtio-rng (virtio 1.2 §5.4, "entropy device"): one queue of device-writable buffers, each
// filled with bytes from the host kernel's getrandom(). One worker thread ("rng") serves it;
// an optional rate limiter (bytes and requests) holds requests in the ring until it allows them.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "src/devices/rng/rng_config.h"
#include "src/devices/virtio/device.h"
#include "src/devices/virtio/rate_limiter.h"
#include "src/devices/virtio/worker.h"

namespace edgevisor::rng {

// Firecracker's entropy metrics.
struct RngCounters {
  std::atomic<uint64_t> requests{0};        // entropy_event_count: buffers served
  std::atomic<uint64_t> bytes{0};           // entropy_bytes
  std::atomic<uint64_t> bad_requests{0};    // entropy_event_fails: no writable byte, or broken
  std::atomic<uint64_t> host_failures{0};   // host_rng_fails: getrandom failed
  std::atomic<uint64_t> timer_events{0};    // rate_limiter_event_count
  std::atomic<uint64_t> activate_fails{0};  // activate_fails
};

class VirtioRng : public virtio::VirtioDevice {
 public:
  static constexpr uint16_t kQueueSize = 256;
  // At most this much of one buffer is filled (its used length says how much): a guest cannot
  // make the device thread fill gigabytes for one request.
  static constexpr uint32_t kMaxRequestBytes = 64 * 1024;

  // The device thread is started here, parked, and installs FILTER (when not null) first.
  static absl::StatusOr<std::unique_ptr<VirtioRng>> Create(
      const EntropyConfig& cfg, std::string thread_name,
      std::shared_ptr<const ThreadFilter> filter = nullptr);
  ~VirtioRng() override;

  uint32_t device_id() const override;
  uint64_t features() const override;
  uint16_t num_queues() const override { return 1; }
  uint16_t queue_max_size() const override { return kQueueSize; }
  // No config space (§5.4.4).
  void ReadConfig(uint64_t, absl::Span<uint8_t> data) const override;
  void WriteConfig(uint64_t, absl::Span<const uint8_t>) override {}
  absl::Status Activate(virtio::ActivateArgs args) override;
  void Reset() override;
  absl::StatusOr<std::vector<virtio::QueueState>> Quiesce() override;
  std::string counter_group() const override { return "entropy"; }
  CounterList Counters() const override;

  const RngCounters& counters() const { return counters_; }
  virtio::RateLimiter& rate_limiter() { return *limiter_; }

 private:
  class Worker;  // the device thread's side: virtio_rng.cc
  explicit VirtioRng(std::string thread_name) : thread_name_(std::move(thread_name)) {}

  std::string thread_name_;
  std::unique_ptr<virtio::RateLimiter> limiter_;
  RngCounters counters_;
  virtio::WorkerThread thread_;
};

}  // namespace edgevisor::rng
