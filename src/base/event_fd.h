// An eventfd used as a wake-up: one thread signals, another waits for it in epoll or poll and
// drains it. Replaces the bare write()/read() pokes whose results nobody looked at.
#pragma once

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "src/base/fd.h"

namespace edgevisor {

// The same on an eventfd that another object owns (a transport's queue-notify eventfd). Drain
// also serves a timerfd, whose read returns its expiry count the same way.
void SignalEventFd(int fd);
uint64_t DrainEventFd(int fd);

class EventFd {
 public:
  // A non-blocking, close-on-exec eventfd. WHAT names it in the error.
  static absl::StatusOr<EventFd> Create(absl::string_view what);
  // Wraps an eventfd created elsewhere.
  explicit EventFd(UniqueFd fd) : fd_(std::move(fd)) {}
  EventFd() = default;

  int fd() const { return fd_.get(); }
  bool valid() const { return fd_.valid(); }

  // Adds one to the counter. A counter already at its maximum (EAGAIN) is still readable, so the
  // waiter wakes anyway; any other failure (a closed fd) is a bug and is logged.
  void Signal() const { SignalEventFd(fd_.get()); }
  // Reads and clears the counter: the number of signals since the last drain, 0 if none.
  uint64_t Drain() const { return DrainEventFd(fd_.get()); }

 private:
  UniqueFd fd_;
};

}  // namespace edgevisor
