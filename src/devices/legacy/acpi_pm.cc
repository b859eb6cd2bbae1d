#include "src/devices/legacy/acpi_pm.h"

#include <algorithm>

#include "src/base/log.h"

namespace edgevisor {

void AcpiPm::Read(uint64_t, absl::Span<uint8_t> data) {
  // Nothing to report: the VM never sleeps, so no wake status is ever pending.
  std::fill(data.begin(), data.end(), 0);
}

void AcpiPm::Write(uint64_t offset, absl::Span<const uint8_t> data) {
  if (data.size() != 1) return;  // the FADT declares byte access
  const uint8_t v = data[0];
  switch (offset) {
    case kSleepControl: {
      if (!(v & kSleepEnable)) return;
      const uint8_t type = (v >> 2) & 0x7;
      if (type == s5_) {
        on_power_off_();
      } else {
        spdlog::warn("acpi: the guest asked for sleep type {}; only S5 (power off) is supported",
                     type);
      }
      return;
    }
    case kSleepStatus:
      return;  // write-1-to-clear of a status that is always clear
    case kReset:
      if (v == reset_value_) on_reset_();
      return;
    default:
      return;
  }
}

}  // namespace edgevisor
