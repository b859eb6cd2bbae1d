#include "src/devices/legacy/pl031.h"

#include <algorithm>

namespace edgevisor {
namespace {

// PeriphID0-3 then PCellID0-3, one byte in each 32-bit register from 0xfe0.
constexpr uint8_t kIds[8] = {0x31, 0x10, 0x14, 0x00, 0x0d, 0xf0, 0x05, 0xb1};

}  // namespace

Pl031::Pl031(std::function<uint64_t()> now) : now_(std::move(now)) {}

uint32_t Pl031::Count() const {
  return static_cast<uint32_t>(static_cast<int64_t>(now_()) + offset_);
}

void Pl031::Read(uint64_t offset, absl::Span<uint8_t> data) {
  uint32_t v = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const uint32_t count = Count();
    if (match_ != 0 && count >= match_) ris_ = true;
    switch (offset & ~uint64_t{3}) {
      case kDr:
        v = count;
        break;
      case kMr:
        v = match_;
        break;
      case kLr:
        v = count;
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
  std::lock_guard<std::mutex> lock(mu_);
  switch (offset) {
    case kMr:
      match_ = v;
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
}

}  // namespace edgevisor
