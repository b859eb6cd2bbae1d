#include "src/devices/virtio/queue.h"

#include <atomic>

#include "absl/strings/str_format.h"
#include "src/devices/virtio/virtio_spec.h"

namespace edgevisor::virtio {
namespace {

// Ring fields are shared with the guest and updated concurrently: access them atomically.
uint16_t LoadU16(const GuestMemory& mem, uint64_t gpa) {
  auto* p = reinterpret_cast<uint16_t*>(mem.Translate(gpa, 2)->data());
  return std::atomic_ref<uint16_t>(*p).load(std::memory_order_acquire);
}
void StoreU16(const GuestMemory& mem, uint64_t gpa, uint16_t v) {
  auto* p = reinterpret_cast<uint16_t*>(mem.Translate(gpa, 2)->data());
  std::atomic_ref<uint16_t>(*p).store(v, std::memory_order_release);
}

}  // namespace

Virtqueue::Virtqueue(const GuestMemory* mem, const QueueConfig& cfg, bool event_idx, bool indirect)
    : mem_(mem), cfg_(cfg), event_idx_(event_idx), indirect_(indirect) {}

absl::Status Virtqueue::Validate() const {
  const uint64_t n = cfg_.size;
  if (n == 0 || n > cfg_.max_size || (n & (n - 1)) != 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("queue size %d is not a power of two in [1, %d]", n, cfg_.max_size));
  }
  if (cfg_.desc % 16 || cfg_.avail % 2 || cfg_.used % 4) {
    return absl::InvalidArgumentError("queue areas are misaligned");
  }
  // Sizes include the event-index words whether or not the feature is on (§2.7).
  if (!mem_->Contains(cfg_.desc, 16 * n) || !mem_->Contains(cfg_.avail, 6 + 2 * n) ||
      !mem_->Contains(cfg_.used, 6 + 8 * n)) {
    return absl::InvalidArgumentError("queue areas are outside guest RAM");
  }
  return absl::OkStatus();
}

void Virtqueue::Restore(const QueueState& s) {
  last_avail_ = s.next_avail;
  used_idx_ = s.next_used;
  signalled_used_ = s.signalled_used;
  suppressed_ = s.notify_suppressed;
}

uint16_t Virtqueue::ReadAvailIdx() const { return LoadU16(*mem_, cfg_.avail + 2); }

absl::StatusOr<std::optional<uint16_t>> Virtqueue::PopHead() {
  const uint16_t avail_idx = ReadAvailIdx();
  const uint16_t pending = static_cast<uint16_t>(avail_idx - last_avail_);
  if (pending == 0) return std::nullopt;
  if (pending > cfg_.size) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "avail idx moved by %d entries, more than the queue size %d", pending, cfg_.size));
  }
  const uint64_t slot = cfg_.avail + 4 + 2 * static_cast<uint64_t>(last_avail_ % cfg_.size);
  const uint16_t head = LoadU16(*mem_, slot);
  if (head >= cfg_.size) {
    return absl::InvalidArgumentError(
        absl::StrFormat("avail ring entry %d is outside the queue (size %d)", head, cfg_.size));
  }
  ++last_avail_;
  return head;
}

absl::StatusOr<std::optional<uint16_t>> Virtqueue::PopOrEnableNotification() {
  auto head = PopHead();
  if (!head.ok() || head->has_value()) return head;
  ArmNotification();
  return PopHead();
}

absl::StatusOr<DescriptorChain> Virtqueue::ReadChain(uint16_t head) const {
  return ReadDescriptorChain(*mem_, {cfg_.desc, cfg_.size, indirect_}, head);
}

absl::Status Virtqueue::AddUsed(uint16_t head, uint32_t len) {
  const uint64_t elem = cfg_.used + 4 + 8 * static_cast<uint64_t>(used_idx_ % cfg_.size);
  absl::Status s = mem_->WriteObj(elem, UsedElem{head, len});
  if (!s.ok()) return s;
  ++used_idx_;
  StoreU16(*mem_, cfg_.used + 2, used_idx_);  // release: the element is visible first
  return absl::OkStatus();
}

bool Virtqueue::ShouldInterrupt() {
  // Full barrier: our used->idx store must be visible before we read the driver's wishes,
  // or we could miss a driver that just re-enabled interrupts (§2.7.10).
  std::atomic_thread_fence(std::memory_order_seq_cst);
  const uint16_t old = signalled_used_;
  const uint16_t now = used_idx_;
  signalled_used_ = now;
  if (old == now) return false;
  if (!event_idx_) {
    return !(LoadU16(*mem_, cfg_.avail) & kAvailFlagNoInterrupt);
  }
  const uint16_t used_event = LoadU16(*mem_, cfg_.avail + 4 + 2 * uint64_t{cfg_.size});
  // vring_need_event(): interrupt if used_event lies in [old, now).
  return static_cast<uint16_t>(now - used_event - 1) < static_cast<uint16_t>(now - old);
}

void Virtqueue::SuppressNotifications() {
  if (event_idx_ || suppressed_) return;  // with EVENT_IDX a stale avail_event suppresses
  StoreU16(*mem_, cfg_.used, kUsedFlagNoNotify);
  suppressed_ = true;
}

void Virtqueue::ArmNotification() {
  if (event_idx_) {
    StoreU16(*mem_, cfg_.used + 4 + 8 * uint64_t{cfg_.size}, last_avail_);
  } else if (suppressed_) {
    StoreU16(*mem_, cfg_.used, 0);
    suppressed_ = false;
  }
  std::atomic_thread_fence(std::memory_order_seq_cst);
}

}  // namespace edgevisor::virtio
