#include "src/vmm/stop_controller.h"

#include <sys/eventfd.h>

#include "absl/synchronization/mutex.h"
#include "src/vmm/util/errors.h"

namespace edgevisor {

absl::StatusOr<std::shared_ptr<StopController>> StopController::Create() {
  UniqueFd fd(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!fd.valid()) return ErrnoError("eventfd for VM stop");
  return std::shared_ptr<StopController>(new StopController(std::move(fd)));
}

void StopController::Request(StopReason reason, int exit_code, std::string message) {
  {
    absl::MutexLock lock(&mu_);
    if (info_) return;
    info_ = StopInfo{reason, exit_code, std::move(message)};
  }
  requested_.store(true, std::memory_order_release);
  uint64_t one = 1;
  [[maybe_unused]] ssize_t n = write(event_fd_.get(), &one, sizeof(one));
}

std::optional<StopInfo> StopController::info() const {
  absl::MutexLock lock(&mu_);
  return info_;
}

}  // namespace edgevisor
