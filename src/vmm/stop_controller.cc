#include "src/vmm/stop_controller.h"

#include "absl/synchronization/mutex.h"
#include "src/base/errors.h"

namespace edgevisor {

absl::StatusOr<std::shared_ptr<StopController>> StopController::Create() {
  EV_ASSIGN_OR_RETURN(EventFd fd, EventFd::Create("VM stop"));
  return std::shared_ptr<StopController>(new StopController(std::move(fd)));
}

void StopController::Request(StopReason reason, int exit_code, std::string message) {
  {
    absl::MutexLock lock(&mu_);
    if (info_) return;
    info_ = StopInfo{reason, exit_code, std::move(message)};
  }
  requested_.store(true, std::memory_order_release);
  event_fd_.Signal();
}

std::optional<StopInfo> StopController::info() const {
  absl::MutexLock lock(&mu_);
  return info_;
}

}  // namespace edgevisor
