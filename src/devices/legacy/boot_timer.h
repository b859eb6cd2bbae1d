// Boot-timer MMIO device, with Firecracker's semantics: the guest writes the byte 123 at offset 0
// when it reaches the point it wants measured (usually /init), and the VMM logs the wall and CPU
// time since the VMM started.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>

#include "absl/synchronization/mutex.h"

#include "src/platform/bus.h"

namespace edgevisor {

struct ProcessClock {
  std::chrono::steady_clock::time_point wall;
  uint64_t cpu_us = 0;
  static ProcessClock Now();
};

struct BootTime {
  uint64_t wall_us = 0;
  uint64_t cpu_us = 0;
};

class BootTimer : public BusDevice {
 public:
  static constexpr uint8_t kMagic = 123;
  static constexpr uint64_t kSize = 0x1000;
  explicit BootTimer(ProcessClock vmm_start) : start_(vmm_start) {}

  void Read(uint64_t offset, absl::Span<uint8_t> data) override;
  void Write(uint64_t offset, absl::Span<const uint8_t> data) override;

  // The first measurement, if the guest has written the magic value.
  std::optional<BootTime> boot_time() const;

  // FN runs once, on the thread of the guest's first write of the magic value (a vCPU's), after
  // the measurement is logged: the service manager's readiness notification.
  void OnFirstMark(std::function<void(const BootTime&)> fn);

 private:
  const ProcessClock start_;
  mutable absl::Mutex mu_;
  std::optional<BootTime> boot_time_ ABSL_GUARDED_BY(mu_);
  std::function<void(const BootTime&)> on_first_mark_ ABSL_GUARDED_BY(mu_);
};

}  // namespace edgevisor
