// How anything (a device, a vCPU thread, a signal) asks the VM to stop, and with what exit code.
// The first request wins; the main thread waits on event_fd() and then tears the VM down.
#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "src/vmm/util/fd.h"

namespace edgevisor {

enum class StopReason {
  kGuestHalted,  // all vCPUs halted with interrupts off
  kDebugExit,    // the debug-exit port
  kGuestReset,   // i8042 reset, triple-fault-free reboot paths
  kGuestPowerOff,
  kSignal,      // SIGTERM / SIGINT
  kGuestCrash,  // KVM internal error, shutdown (triple fault), failed entry
  kVmmError,    // a VMM-side failure while running
};

// Process exit codes (besides the debug-exit's (v << 1) | 1).
inline constexpr int kExitOk = 0;
inline constexpr int kExitVmmError = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitGuestCrash = 3;

struct StopInfo {
  StopReason reason;
  int exit_code;
  std::string message;
};

class StopController {
 public:
  static absl::StatusOr<std::shared_ptr<StopController>> Create();

  // Records the request if it is the first, and wakes the main thread. Thread-safe.
  void Request(StopReason reason, int exit_code, std::string message);
  bool requested() const { return requested_.load(std::memory_order_acquire); }
  std::optional<StopInfo> info() const;
  int event_fd() const { return event_fd_.get(); }

 private:
  explicit StopController(UniqueFd fd) : event_fd_(std::move(fd)) {}
  UniqueFd event_fd_;
  std::atomic<bool> requested_{false};
  mutable absl::Mutex mu_;
  std::optional<StopInfo> info_ ABSL_GUARDED_BY(mu_);
};

}  // namespace edgevisor
