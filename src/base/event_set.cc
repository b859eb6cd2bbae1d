#include "src/base/event_set.h"

#include <sys/epoll.h>

#include <algorithm>
#include <cerrno>

#include "absl/strings/str_format.h"
#include "src/base/errors.h"

namespace edgevisor {
namespace {

uint64_t Pack(EventId id) { return (uint64_t{id.kind} << 32) | id.index; }
EventId Unpack(uint64_t v) {
  return {static_cast<uint32_t>(v >> 32), static_cast<uint32_t>(v & 0xffffffffu)};
}

}  // namespace

EventSet::EventSet() : epoll_(epoll_create1(EPOLL_CLOEXEC)) {}

namespace {
uint32_t EpollEvents(uint32_t interest) {
  return ((interest & EventSet::kReadable) ? uint32_t{EPOLLIN} : 0u) |
         ((interest & EventSet::kWritable) ? uint32_t{EPOLLOUT} : 0u);
}
}  // namespace

absl::Status EventSet::Watch(int fd, EventId id, uint32_t interest) {
  epoll_event ev{};
  ev.events = EpollEvents(interest);
  ev.data.u64 = Pack(id);
  if (!epoll_.valid() || epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) != 0) {
    return ErrnoError(absl::StrFormat("epoll: watch fd %d (event %u/%u)", fd, id.kind, id.index));
  }
  return absl::OkStatus();
}

absl::Status EventSet::Modify(int fd, EventId id, uint32_t interest) {
  epoll_event ev{};
  ev.events = EpollEvents(interest);
  ev.data.u64 = Pack(id);
  if (epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, fd, &ev) != 0) {
    return ErrnoError(absl::StrFormat("epoll: modify fd %d (event %u/%u)", fd, id.kind, id.index));
  }
  return absl::OkStatus();
}

absl::Status EventSet::Unwatch(int fd) {
  if (epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr) != 0) {
    return ErrnoError(absl::StrFormat("epoll: unwatch fd %d", fd));
  }
  return absl::OkStatus();
}

absl::StatusOr<size_t> EventSet::Wait(absl::Span<EventId> ready, int timeout_ms) const {
  epoll_event evs[kMaxBatch];
  const int max = static_cast<int>(std::min(ready.size(), kMaxBatch));
  const int n = epoll_wait(epoll_.get(), evs, max, timeout_ms);
  if (n < 0) {
    if (errno == EINTR) return 0;
    return ErrnoError("epoll_wait");
  }
  for (int i = 0; i < n; ++i) ready[static_cast<size_t>(i)] = Unpack(evs[i].data.u64);
  return static_cast<size_t>(n);
}

}  // namespace edgevisor
