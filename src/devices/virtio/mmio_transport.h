// virtio-mmio transport, version 2 (virtio 1.2 §4.2). Knows nothing about the device type.
#pragma once

#include <linux/virtio_mmio.h>

#include <atomic>
#include <memory>
#include <optional>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "nlohmann/json.hpp"
#include "src/base/fd.h"
#include "src/devices/virtio/device.h"
#include "src/platform/bus.h"

namespace edgevisor::virtio {

using Json = nlohmann::json;

class MmioTransport : public BusDevice, public InterruptSink {
 public:
  static constexpr uint64_t kSize = 0x1000;
  static constexpr uint64_t kQueueNotifyOffset = VIRTIO_MMIO_QUEUE_NOTIFY;

  static absl::StatusOr<std::unique_ptr<MmioTransport>> Create(std::unique_ptr<VirtioDevice> dev,
                                                               const GuestMemory* mem);
  ~MmioTransport() override;

  // BusDevice: register accesses from vCPU threads.
  void Read(uint64_t offset, absl::Span<uint8_t> data) override;
  void Write(uint64_t offset, absl::Span<const uint8_t> data) override;

  // InterruptSink: from the device thread.
  void Signal(uint32_t bits) override;
  void NeedsReset() override;

  // Snapshots. SaveState (vCPUs paused): the registers, the queues' addresses and positions and
  // the interrupt state, after quiescing an active device (VirtioDevice::Quiesce). Unquiesce
  // starts it again where it stopped, when the VM goes on in this process. LoadState puts a
  // fresh transport (same device type and queues) into a saved state and activates the device
  // at the saved positions; errors name the field.
  absl::StatusOr<Json> SaveState();
  absl::Status Unquiesce();
  absl::Status LoadState(const Json& state);

  // For KVM_IRQFD (one per device) and KVM_IOEVENTFD (one per queue, datamatch = index).
  int irq_fd() const { return irq_fd_.get(); }
  const std::vector<UniqueFd>& notify_fds() const { return notify_fds_; }
  VirtioDevice& device() { return *dev_; }

 private:
  MmioTransport(std::unique_ptr<VirtioDevice> dev, const GuestMemory* mem)
      : dev_(std::move(dev)), mem_(mem) {}
  uint32_t ReadReg(uint64_t offset) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void WriteReg(uint64_t offset, uint32_t value) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void WriteStatus(uint32_t value) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ResetLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  QueueConfig* SelectedQueue() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Activates the device with the negotiated features and the queues (at RESUME's positions).
  absl::Status ActivateLocked(std::vector<QueueState> resume) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  std::unique_ptr<VirtioDevice> dev_;
  const GuestMemory* mem_;
  UniqueFd irq_fd_;
  std::vector<UniqueFd> notify_fds_;

  absl::Mutex mu_;
  uint32_t status_ ABSL_GUARDED_BY(mu_) = 0;
  uint32_t device_features_sel_ ABSL_GUARDED_BY(mu_) = 0;
  uint32_t driver_features_sel_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t driver_features_ ABSL_GUARDED_BY(mu_) = 0;
  uint32_t queue_sel_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<QueueConfig> queues_ ABSL_GUARDED_BY(mu_);
  bool active_ ABSL_GUARDED_BY(mu_) = false;
  // Quiesced for a snapshot: the positions to start from again.
  std::optional<std::vector<QueueState>> quiesced_ ABSL_GUARDED_BY(mu_);
  std::atomic<uint32_t> interrupt_status_{0};
  std::atomic<bool> needs_reset_{false};
  std::atomic<uint32_t> config_generation_{0};  // bumped with every config-change interrupt
};

}  // namespace edgevisor::virtio
