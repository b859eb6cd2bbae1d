// ARM PrimeCell PL031 real-time clock (ARM DDI 0224): the guest's wall clock on aarch64, where
// Linux's rtc-pl031 driver reads it at boot. A 32-bit seconds counter that the guest may set
// (LR), plus the match register. The match interrupt is not raised: the register reads back,
// and RIS reports a match once the counter reaches it.
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>

#include "src/vmm/bus.h"

namespace edgevisor {

class Pl031 : public BusDevice {
 public:
  static constexpr uint64_t kSize = 0x1000;
  static constexpr uint64_t kDr = 0x00;    // data: the current count
  static constexpr uint64_t kMr = 0x04;    // match
  static constexpr uint64_t kLr = 0x08;    // load: sets the count
  static constexpr uint64_t kCr = 0x0c;    // control: bit 0 = started (always)
  static constexpr uint64_t kImsc = 0x10;  // interrupt mask
  static constexpr uint64_t kRis = 0x14;   // raw interrupt status
  static constexpr uint64_t kMis = 0x18;   // masked interrupt status
  static constexpr uint64_t kIcr = 0x1c;   // interrupt clear
  static constexpr uint64_t kPeriphId0 = 0xfe0;

  // `now` returns the host's wall clock in seconds (a parameter, so tests can move time).
  explicit Pl031(std::function<uint64_t()> now);

  void Read(uint64_t offset, absl::Span<uint8_t> data) override;
  void Write(uint64_t offset, absl::Span<const uint8_t> data) override;

 private:
  uint32_t Count() const;  // under mu_

  std::function<uint64_t()> now_;
  mutable std::mutex mu_;
  int64_t offset_ = 0;  // guest count - host seconds
  uint32_t match_ = 0;
  uint32_t imsc_ = 0;
  bool ris_ = false;
};

}  // namespace edgevisor
