// virtio-net device model (virtio 1.2 §5.1) on a TAP backend. One worker thread ("netN") serves
// all queue pairs and the control queue from an epoll loop.
//
// RX is loss-free under backpressure: a frame is read from the TAP only while the guest has
// receive buffers, and a frame that does not fit the buffers posted so far waits in the device
// until the guest posts more. The TAP fd leaves the epoll set meanwhile: no busy loop, no drop.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "src/base/fd.h"
#include "src/devices/net/mmds_stack.h"
#include "src/devices/net/net_config.h"
#include "src/devices/net/tap.h"
#include "src/devices/net/virtio_net_spec.h"
#include "src/devices/virtio/device.h"
#include "src/devices/virtio/rate_limiter.h"
#include "src/devices/virtio/worker.h"

namespace edgevisor::net {

struct QueueCounters {
  std::atomic<uint64_t> packets{0}, bytes{0}, drops{0};
};

class VirtioNet : public virtio::VirtioDevice {
 public:
  static constexpr uint16_t kQueueSize = 256;

  // Opens the TAP; the device thread is started here, parked, and installs FILTER first.
  static absl::StatusOr<std::unique_ptr<VirtioNet>> Create(
      const NetConfig& cfg, std::string thread_name,
      std::shared_ptr<const ThreadFilter> filter = nullptr);
  ~VirtioNet() override;

  uint32_t device_id() const override;
  uint64_t features() const override { return features_; }
  uint16_t num_queues() const override;
  uint16_t queue_max_size() const override { return kQueueSize; }
  void ReadConfig(uint64_t offset, absl::Span<uint8_t> data) const override;
  void WriteConfig(uint64_t, absl::Span<const uint8_t>) override {}  // MAC is read-only here
  absl::Status Activate(virtio::ActivateArgs args) override;
  void Reset() override;
  absl::StatusOr<std::vector<virtio::QueueState>> Quiesce() override;
  std::string counter_group() const override { return "net"; }
  CounterList Counters() const override;
  // The metadata service answers this interface's guest traffic to IPV4 (before activation).
  void EnableMmds(std::shared_ptr<mmds::Service> service, std::array<uint8_t, 4> ipv4) {
    mmds_ = std::make_unique<mmds::Stack>(std::move(service), ipv4, &mmds_counters_);
  }
  // PATCH /network-interfaces: new limits at once (a null one stays as it is). Thread-safe.
  void UpdateRateLimiters(const RateLimiterConfig* rx, const RateLimiterConfig* tx) {
    if (rx) rx_limiter_->Update(*rx);
    if (tx) tx_limiter_->Update(*tx);
  }

 private:
  class Worker;  // the device thread's side: virtio_net.cc
  VirtioNet(NetConfig cfg, Tap tap, std::string thread_name);

  NetConfig cfg_;
  Tap tap_;
  std::string thread_name_;
  uint64_t features_ = 0;
  virtio_net::Config config_{};
  std::vector<std::unique_ptr<QueueCounters>> rx_, tx_;
  // Frames and bytes each way, shared by the queue pairs (as Firecracker's are). A refused TX
  // chain stays in its ring; a refused RX frame waits in its pair's staging buffer, with the TAP
  // out of the epoll set; either way the worker waits for the limiter's timer.
  std::unique_ptr<virtio::RateLimiter> rx_limiter_, tx_limiter_;
  std::atomic<uint64_t> rx_limiter_wakeups_{0}, tx_limiter_wakeups_{0};
  // MMDS (when enabled): used by the device thread only; its replies go to the first pair.
  std::unique_ptr<mmds::Stack> mmds_;
  mmds::StackCounters mmds_counters_;
  virtio::WorkerThread thread_;
};

}  // namespace edgevisor::net
