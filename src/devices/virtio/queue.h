// A split virtqueue (virtio 1.2 §2.7) as the device sees it: pops available chains, publishes
// used ones, and decides whether the driver wants an interrupt (VIRTIO_F_EVENT_IDX, §2.7.10).
// All ring accesses go through GuestMemory; a corrupt ring is an error, never a wild access.
#pragma once

#include <cstdint>
#include <optional>

#include "absl/status/statusor.h"
#include "src/devices/virtio/descriptor_chain.h"
#include "src/platform/guest_memory.h"

namespace edgevisor::virtio {

// What the driver programmed through the transport.
struct QueueConfig {
  uint16_t max_size = 256;
  uint16_t size = 0;
  bool ready = false;
  uint64_t desc = 0;
  uint64_t avail = 0;
  uint64_t used = 0;
};

// Where the device stands in a queue: what a snapshot keeps of it besides guest memory.
struct QueueState {
  uint16_t next_avail = 0;      // the next avail ring entry to pop
  uint16_t next_used = 0;       // the next used ring entry to fill (= used->idx)
  uint16_t signalled_used = 0;  // used idx at the last interrupt decision
  bool notify_suppressed = false;
};

class Virtqueue {
 public:
  Virtqueue(const GuestMemory* mem, const QueueConfig& cfg, bool event_idx, bool indirect);

  // Checks size (power of two, <= max), alignment (§2.7: 16/2/4) and that all three areas lie
  // inside guest RAM. Call once before use.
  absl::Status Validate() const;

  // The next available head, nullopt when the ring is empty. An error when the driver moved
  // avail->idx by more than the queue size or published an out-of-range head.
  absl::StatusOr<std::optional<uint16_t>> PopHead();
  // PopHead, but on an empty ring ask the driver for a notification and look once more: the
  // driver may have added a chain between the look and the asking, and would not notify for
  // it (compare Firecracker's pop_or_enable_notification). nullopt: empty, and armed.
  absl::StatusOr<std::optional<uint16_t>> PopOrEnableNotification();
  absl::StatusOr<DescriptorChain> ReadChain(uint16_t head) const;
  // Puts the head popped last back (a rate limiter said wait): the next pop returns it again.
  // Only right after a successful pop, before any other pop.
  void UndoPop() { --last_avail_; }

  // Publishes one used element (write element, release, then bump used->idx).
  absl::Status AddUsed(uint16_t head, uint32_t len);

  // After AddUsed calls: whether to interrupt the driver (EVENT_IDX's used_event, or the
  // NO_INTERRUPT flag). Resets the batch.
  bool ShouldInterrupt();

  // While the device is draining the ring it needs no notifications (§2.7.10): without
  // EVENT_IDX this sets VIRTQ_USED_F_NO_NOTIFY. Call before popping a batch.
  void SuppressNotifications();
  // Asks for a notification as soon as the driver adds anything new (clears NO_NOTIFY, or sets
  // avail_event with EVENT_IDX). Re-check the ring afterwards: the driver may have raced us.
  void ArmNotification();

  uint16_t size() const { return cfg_.size; }

  // Snapshots. `state` reports the positions; Restore puts a new queue at saved ones.
  QueueState state() const { return {last_avail_, used_idx_, signalled_used_, suppressed_}; }
  void Restore(const QueueState& s);

 private:
  uint16_t ReadAvailIdx() const;

  const GuestMemory* mem_;
  QueueConfig cfg_;
  bool event_idx_;
  bool indirect_;
  uint16_t last_avail_ = 0;
  uint16_t used_idx_ = 0;
  uint16_t signalled_used_ = 0;  // used idx at the last interrupt decision
  bool suppressed_ = false;      // NO_NOTIFY is set in used->flags
};

}  // namespace edgevisor::virtio
