// ARM PrimeCell PL031 real-time clock (ARM DDI 0224): the guest's wall clock on aarch64, where
// Linux's rtc-pl031 driver reads it at boot and uses the match register for alarms. A 32-bit
// seconds counter that the guest may set (LR), and the match register: once the count reaches
// the match value, RIS is set and, unless masked (IMSC), the interrupt line goes high until the
// guest clears it (ICR). A timer thread raises it at the right second while a match is armed: it
// sleeps in poll() on a CLOCK_REALTIME timerfd set to the match's host time, and on an eventfd
// that register writes and the destructor ring.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <thread>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "nlohmann/json.hpp"

#include "src/base/fd.h"
#include "src/base/thread_filter.h"
#include "src/platform/bus.h"

namespace edgevisor {

class Pl031 : public BusDevice {
 public:
  static constexpr uint64_t kSize = 0x1000;
  static constexpr uint64_t kDr = 0x00;    // data: the current count
  static constexpr uint64_t kMr = 0x04;    // match
  static constexpr uint64_t kLr = 0x08;    // load: sets the count
  static constexpr uint64_t kCr = 0x0c;    // control: bit 0 = started (always)
  static constexpr uint64_t kImsc = 0x10;  // interrupt mask (1 = enabled)
  static constexpr uint64_t kRis = 0x14;   // raw interrupt status
  static constexpr uint64_t kMis = 0x18;   // masked interrupt status
  static constexpr uint64_t kIcr = 0x1c;   // interrupt clear
  static constexpr uint64_t kPeriphId0 = 0xfe0;

  // `now` returns the host's wall clock in seconds (a parameter, so tests can move time).
  // `set_irq` drives the interrupt line (level); it is called only when the level changes.
  // With `timer` false no thread is started and only Poll() and register accesses notice a
  // match (tests with a fake clock).
  // With TIMER, the alarm thread starts here and installs FILTER (when not null) first.
  Pl031(std::function<uint64_t()> now, std::function<void(bool level)> set_irq, bool timer = true,
        std::shared_ptr<const ThreadFilter> filter = nullptr);
  ~Pl031() override;
  Pl031(const Pl031&) = delete;
  Pl031& operator=(const Pl031&) = delete;

  void Read(uint64_t offset, absl::Span<uint8_t> data) override;
  void Write(uint64_t offset, absl::Span<const uint8_t> data) override;

  // Raises the match if the count has reached an armed match value.
  void Poll();

  // Snapshots: the count's offset from the host's clock (so the count goes on with wall time
  // across a restore, as a battery-backed RTC does), the match, the mask and the raw status.
  // LoadState checks every field and drives the line to what they say.
  nlohmann::json SaveState() const;
  absl::Status LoadState(const nlohmann::json& j);

 private:
  uint32_t Count() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void CheckMatchLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);  // armed and reached -> RIS
  void UpdateLineLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);  // the line follows RIS && IMSC
  void TimerLoop();
  void Wake();  // rings wake_fd_ (no-op without a timer thread)

  std::function<uint64_t()> now_;
  std::function<void(bool)> set_irq_;
  mutable absl::Mutex mu_;
  UniqueFd timer_fd_;  // CLOCK_REALTIME, absolute: the host second the count reaches match_
  UniqueFd wake_fd_;
  int64_t offset_ ABSL_GUARDED_BY(mu_) = 0;  // guest count - host seconds
  uint32_t match_ ABSL_GUARDED_BY(mu_) = 0;
  // A match value was written and has not been reached yet.
  bool armed_ ABSL_GUARDED_BY(mu_) = false;
  uint32_t imsc_ ABSL_GUARDED_BY(mu_) = 0;
  bool ris_ ABSL_GUARDED_BY(mu_) = false;
  bool line_ ABSL_GUARDED_BY(mu_) = false;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread timer_;
};

}  // namespace edgevisor
