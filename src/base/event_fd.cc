#include "src/base/event_fd.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "src/base/errors.h"
#include "src/base/log.h"

namespace edgevisor {

absl::StatusOr<EventFd> EventFd::Create(absl::string_view what) {
  UniqueFd fd(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!fd.valid()) return ErrnoError(absl::StrCat("eventfd for ", what));
  return EventFd(std::move(fd));
}

void SignalEventFd(int fd) {
  const uint64_t one = 1;
  ssize_t n;
  do {
    n = write(fd, &one, sizeof(one));
  } while (n < 0 && errno == EINTR);
  if (n < 0 && errno != EAGAIN) spdlog::error("eventfd {}: signal: {}", fd, strerror(errno));
}

uint64_t DrainEventFd(int fd) {
  uint64_t v = 0;
  ssize_t n;
  do {
    n = read(fd, &v, sizeof(v));
  } while (n < 0 && errno == EINTR);
  if (n < 0 && errno != EAGAIN) spdlog::error("eventfd {}: drain: {}", fd, strerror(errno));
  return n == sizeof(v) ? v : 0;
}

}  // namespace edgevisor
