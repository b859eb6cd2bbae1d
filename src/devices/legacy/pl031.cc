#include "src/devices/legacy/pl031.h"

#include <algorithm>
#include <chrono>

namespace edgevisor {
namespace {

// PeriphID0-3 then PCellID0-3, one byte in each 32-bit register from 0xfe0.
constexpr uint8_t kIds[8] = {0x31, 0x10, 0x14, 0x00, 0x0d, 0xf0, 0x05, 0xb1};

}  // namespace

Pl031::Pl031(std::function<uint64_t()> now, std::function<void(bool)> set_irq, bool timer)
    : now_(std::move(now)), set_irq_(std::move(set_irq)) {
  if (timer) timer_ = std::thread([this] { TimerLoop(); });
}

Pl031::~Pl031() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (timer_.joinable()) timer_.join();
}

uint32_t Pl031::Count() const {
  return static_cast<uint32_t>(static_cast<int64_t>(now_()) + offset_);
}

void Pl031::CheckMatchLocked() {
  // The counter wraps at 2^32: "reached" is a non-negative signed distance.
  if (armed_ && static_cast<int32_t>(Count() - match_) >= 0) {
    armed_ = false;
    ris_ = true;
  }
  UpdateLineLocked();
}

void Pl031::UpdateLineLocked() {
  const bool level = ris_ && imsc_ != 0;
  if (level == line_) return;
  line_ = level;
  if (set_irq_) set_irq_(level);
}

void Pl031::Poll() {
  std::lock_guard<std::mutex> lock(mu_);
  CheckMatchLocked();
}

void Pl031::TimerLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    CheckMatchLocked();
    if (!armed_) {
      cv_.wait(lock);  // until a register write arms a match, or the device goes away
      continue;
    }
    // Sleep until the second the count reaches the match; a write wakes us earlier. The wall
    // clock may step, so the wait is re-computed every time.
    const int64_t left = static_cast<int32_t>(match_ - Count());
    cv_.wait_for(lock, std::chrono::milliseconds(std::clamp<int64_t>(left * 1000, 10, 60'000)));
  }
}

void Pl031::Read(uint64_t offset, absl::Span<uint8_t> data) {
  uint32_t v = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    CheckMatchLocked();
    switch (offset & ~uint64_t{3}) {
      case kDr:
        v = Count();
        break;
      case kMr:
        v = match_;
        break;
      case kLr:
        v = Count();
        break;
      case kCr:
        v = 1;
        break;
      case kImsc:
        v = imsc_;
        break;
      case kRis:
        v = ris_ ? 1 : 0;
        break;
      case kMis:
        v = (ris_ && imsc_) ? 1 : 0;
        break;
      default:
        if (offset >= kPeriphId0 && offset < kPeriphId0 + 32) v = kIds[(offset - kPeriphId0) / 4];
        break;
    }
  }
  const uint64_t shift = 8 * (offset & 3);
  for (size_t i = 0; i < data.size(); ++i) {
    data[i] = i + (offset & 3) < 4 ? static_cast<uint8_t>(v >> (shift + 8 * i)) : 0;
  }
}

void Pl031::Write(uint64_t offset, absl::Span<const uint8_t> data) {
  if (data.size() != 4 || (offset & 3) != 0) return;  // 32-bit registers only
  const uint32_t v = uint32_t{data[0]} | uint32_t{data[1]} << 8 | uint32_t{data[2]} << 16 |
                     uint32_t{data[3]} << 24;
  {
    std::lock_guard<std::mutex> lock(mu_);
    switch (offset) {
      case kMr:
        match_ = v;
        armed_ = true;
        ris_ = false;
        break;
      case kLr:
        offset_ = static_cast<int64_t>(v) - static_cast<int64_t>(now_());
        break;
      case kImsc:
        imsc_ = v & 1;
        break;
      case kIcr:
        if (v & 1) ris_ = false;
        break;
      default:
        break;  // CR: always started; the rest are read-only
    }
    CheckMatchLocked();
  }
  cv_.notify_all();
}

}  // namespace edgevisor
