// What a virtio device model provides to a transport (MMIO today, PCI later). The model knows
// its queues, features and config space; the transport knows registers, status and interrupts.
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "nlohmann/json.hpp"
#include "src/devices/virtio/queue.h"
#include "src/platform/guest_memory.h"

namespace edgevisor::virtio {

// Implemented by the transport; called from the device's own thread.
class InterruptSink {
 public:
  virtual ~InterruptSink() = default;
  // Sets interrupt-status bits (kInterruptUsedBuffer / kInterruptConfigChange) and injects.
  virtual void Signal(uint32_t bits) = 0;
  // The device hit guest input it cannot go on with (§2.1.2): sets DEVICE_NEEDS_RESET and
  // raises a configuration-change interrupt. The device stops using its queues until reset.
  virtual void NeedsReset() = 0;
};

struct ActivateArgs {
  const GuestMemory* mem = nullptr;
  uint64_t features = 0;  // negotiated
  std::vector<QueueConfig> queues;
  std::vector<int> notify_fds;  // eventfd per queue, written on QueueNotify (ioeventfd)
  InterruptSink* interrupt = nullptr;
  // Where each queue starts: empty for a fresh activation (all at 0), or the positions a
  // snapshot or a quiesce recorded (one per queue).
  std::vector<QueueState> resume;
};

class VirtioDevice {
 public:
  virtual ~VirtioDevice() = default;
  virtual uint32_t device_id() const = 0;
  virtual uint64_t features() const = 0;  // everything offered, VERSION_1 included
  virtual uint16_t num_queues() const = 0;
  virtual uint16_t queue_max_size() const = 0;
  // Config space (device-specific, §5.x). Out-of-range bytes read as 0 and writes are ignored.
  virtual void ReadConfig(uint64_t offset, absl::Span<uint8_t> data) const = 0;
  virtual void WriteConfig(uint64_t offset, absl::Span<const uint8_t> data) = 0;
  // Starts processing queues (on DRIVER_OK). An error leaves the device inactive.
  virtual absl::Status Activate(ActivateArgs args) = 0;
  // Stops processing and drops all queue state. Safe to call when not active.
  virtual void Reset() = 0;
  // Snapshots, with the vCPUs paused: stops an active device once the requests in flight have
  // completed (used and interrupted as usual), so that neither it nor guest memory changes any
  // more, and returns each queue's position. Activate with `resume` set starts it again.
  virtual absl::StatusOr<std::vector<QueueState>> Quiesce() {
    return absl::UnimplementedError("this device cannot be snapshotted");
  }

  // Snapshots: what the device itself holds beyond its queues (a balloon's size, say), saved and
  // loaded with the transport's state. Null: nothing. LoadDeviceState gets hostile input, before
  // activation, and checks every field.
  virtual nlohmann::json SaveDeviceState() const { return nullptr; }
  virtual absl::Status LoadDeviceState(const nlohmann::json& state) {
    return state.is_null() ? absl::OkStatus()
                           : absl::InvalidArgumentError("device: this device keeps no state");
  }

  // The device's cumulative counters under the names the metrics use (Firecracker's), and the
  // group the VMM sums them under ("block", "net"). The VMM knows none of the names.
  using CounterList = std::vector<std::pair<std::string, uint64_t>>;
  virtual std::string counter_group() const = 0;
  virtual CounterList Counters() const = 0;
};

// The common part of every device's Activate: a Virtqueue for each queue the driver made ready
// (nullptr for the others), each checked (size, alignment, inside guest RAM) before any is used.
absl::StatusOr<std::vector<std::unique_ptr<Virtqueue>>> MakeQueues(const ActivateArgs& args);

// A config-space read (§4.2.2.2, device-specific configuration) from the device's config struct
// CONFIG: bytes past its end read as 0.
template <typename Config>
void ReadConfigBytes(const Config& config, uint64_t offset, absl::Span<uint8_t> data) {
  static_assert(std::is_trivially_copyable_v<Config>);
  for (size_t i = 0; i < data.size(); ++i) {
    uint8_t b = 0;
    if (offset + i < sizeof(Config))
      std::memcpy(&b, reinterpret_cast<const uint8_t*>(&config) + offset + i, 1);
    data[i] = b;
  }
}

}  // namespace edgevisor::virtio
