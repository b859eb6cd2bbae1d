// How anything (a device, a vCPU thread, a signal) asks the VM to stop, and with what exit code.
// The first request wins; the main thread waits on event_fd() and then tears the VM down.
#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "src/base/event_fd.h"
#include "src/base/exit_codes.h"

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
  int event_fd() const { return event_fd_.fd(); }

 private:
  explicit StopController(EventFd fd) : event_fd_(std::move(fd)) {}
  EventFd event_fd_;
  std::atomic<bool> requested_{false};
  mutable absl::Mutex mu_;
  std::optional<StopInfo> info_ ABSL_GUARDED_BY(mu_);
};

}  // namespace edgevisor
