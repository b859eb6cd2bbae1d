// The power-management registers of ACPI's hardware-reduced model (ACPI 6.5, 4.8.3.7 and
// 4.8.3.6): the sleep-control, sleep-status and reset registers that the FADT points at. The
// guest's ACPI power-off writes SLP_TYPx (bits 2-4) = the \_S5 value with SLP_EN (bit 5); a reset
// writes the FADT's reset value. Three consecutive byte-wide I/O ports.
#pragma once

#include <cstdint>
#include <functional>

#include "src/platform/bus.h"

namespace edgevisor {

class AcpiPm : public BusDevice {
 public:
  static constexpr uint64_t kSize = 3;
  static constexpr uint64_t kSleepControl = 0;  // offsets from the base port
  static constexpr uint64_t kSleepStatus = 1;
  static constexpr uint64_t kReset = 2;
  static constexpr uint8_t kSleepEnable = 1 << 5;
  static constexpr uint8_t kWakeStatus = 1 << 7;

  AcpiPm(uint8_t s5_sleep_type, uint8_t reset_value, std::function<void()> on_power_off,
         std::function<void()> on_reset)
      : s5_(s5_sleep_type),
        reset_value_(reset_value),
        on_power_off_(std::move(on_power_off)),
        on_reset_(std::move(on_reset)) {}

  void Read(uint64_t offset, absl::Span<uint8_t> data) override;
  void Write(uint64_t offset, absl::Span<const uint8_t> data) override;

 private:
  const uint8_t s5_;
  const uint8_t reset_value_;
  std::function<void()> on_power_off_;
  std::function<void()> on_reset_;
};

}  // namespace edgevisor
