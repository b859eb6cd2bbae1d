// virtio-vsock (virtio 1.2 §5.10) with Firecracker's host side (muxer.h): stream sockets between
// the guest and host processes on Unix sockets. One worker thread ("vsock") serves the three
// queues and the muxer's host sockets.
//
// Snapshots: a quiesce keeps every connection (the VM goes on where it was); a restored device
// has none, and tells the guest so with a TRANSPORT_RESET event (§5.10.6.7), as Firecracker does.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "src/devices/virtio/device.h"
#include "src/devices/virtio/worker.h"
#include "src/devices/vsock/muxer.h"
#include "src/devices/vsock/vsock_config.h"
#include "src/devices/vsock/vsock_spec.h"

namespace edgevisor::vsock {

class VirtioVsock : public virtio::VirtioDevice {
 public:
  static constexpr uint16_t kQueueSize = 256;

  // Listens on cfg.uds_path; the device thread is started here, parked, and installs FILTER
  // (when not null) first.
  static absl::StatusOr<std::unique_ptr<VirtioVsock>> Create(
      const VsockConfig& cfg, std::string thread_name,
      std::shared_ptr<const ThreadFilter> filter = nullptr);
  ~VirtioVsock() override;

  uint32_t device_id() const override { return kDeviceId; }
  uint64_t features() const override;
  uint16_t num_queues() const override { return 3; }
  uint16_t queue_max_size() const override { return kQueueSize; }
  void ReadConfig(uint64_t offset, absl::Span<uint8_t> data) const override;
  void WriteConfig(uint64_t, absl::Span<const uint8_t>) override {}  // read-only (§5.10.4)
  absl::Status Activate(virtio::ActivateArgs args) override;
  void Reset() override;
  absl::StatusOr<std::vector<virtio::QueueState>> Quiesce() override;
  nlohmann::json SaveDeviceState() const override;
  absl::Status LoadDeviceState(const nlohmann::json& state) override;
  std::string counter_group() const override { return "vsock"; }
  CounterList Counters() const override;

  const VsockCounters& counters() const { return counters_; }

 private:
  class Worker;  // the device thread's side: virtio_vsock.cc
  VirtioVsock(VsockConfig cfg, std::string thread_name)
      : cfg_(std::move(cfg)), thread_name_(std::move(thread_name)) {}

  VsockConfig cfg_;
  std::string thread_name_;
  VsockCounters counters_;
  std::atomic<uint64_t> activate_fails_{0}, events_sent_{0};
  std::unique_ptr<Muxer> muxer_;  // used by the worker thread only, while it runs
  // A restored device owes the guest a TRANSPORT_RESET: its connections are gone.
  bool reset_event_due_ = false;
  virtio::WorkerThread thread_;
};

}  // namespace edgevisor::vsock
