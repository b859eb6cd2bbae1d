#include "src/devices/legacy/boot_timer.h"

#include <ctime>

#include "absl/synchronization/mutex.h"

#include "src/base/log.h"

namespace edgevisor {

ProcessClock ProcessClock::Now() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return {std::chrono::steady_clock::now(),
          static_cast<uint64_t>(ts.tv_sec) * 1000000 + static_cast<uint64_t>(ts.tv_nsec) / 1000};
}

void BootTimer::Read(uint64_t, absl::Span<uint8_t> data) { std::fill(data.begin(), data.end(), 0); }

void BootTimer::Write(uint64_t offset, absl::Span<const uint8_t> data) {
  if (offset != 0 || data.empty() || data[0] != kMagic) return;
  const ProcessClock now = ProcessClock::Now();
  BootTime t;
  t.wall_us = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(now.wall - start_.wall).count());
  t.cpu_us = now.cpu_us - start_.cpu_us;
  std::function<void(const BootTime&)> first;
  {
    absl::MutexLock lock(&mu_);
    // Firecracker's log line format, so existing boot-time scrapers keep working.
    spdlog::info("Guest-boot-time = {:>6} us {} ms, {:>6} CPU us {} CPU ms", t.wall_us,
                 t.wall_us / 1000, t.cpu_us, t.cpu_us / 1000);
    if (!boot_time_) {
      boot_time_ = t;
      first = std::move(on_first_mark_);
    }
  }
  if (first) first(t);
}

void BootTimer::OnFirstMark(std::function<void(const BootTime&)> fn) {
  absl::MutexLock lock(&mu_);
  on_first_mark_ = std::move(fn);
}

std::optional<BootTime> BootTimer::boot_time() const {
  absl::MutexLock lock(&mu_);
  return boot_time_;
}

}  // namespace edgevisor
