// An epoll set whose fds are registered under typed event ids: what the device workers and the
// VMM's main loop wait on (compare Cloud Hypervisor's epoll_helper). The id arithmetic and the
// error handling of epoll are written here once.
#pragma once

#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "src/base/fd.h"

namespace edgevisor {

// What woke a waiter: a kind that the owner defines as an enum, and an index (a queue, a pair).
struct EventId {
  uint32_t kind = 0;
  uint32_t index = 0;

  template <typename Kind>
  static EventId Of(Kind kind, uint32_t index = 0) {
    return {static_cast<uint32_t>(kind), index};
  }
  template <typename Kind>
  bool Is(Kind k) const {
    return kind == static_cast<uint32_t>(k);
  }
};

class EventSet {
 public:
  static constexpr size_t kMaxBatch = 16;

  // An empty set; Watch fails if the kernel refused the epoll fd.
  EventSet();

  // What a watched fd is waited for (level-triggered either way); kNone keeps it in the set.
  enum Interest : uint32_t { kNone = 0, kReadable = 1, kWritable = 2 };

  // Adds FD (level-triggered, readable) under ID; Unwatch removes it. The errors name the id.
  absl::Status Watch(int fd, EventId id) { return Watch(fd, id, kReadable); }
  absl::Status Watch(int fd, EventId id, uint32_t interest);
  // Changes what a watched FD is waited for (INTEREST: Interest bits).
  absl::Status Modify(int fd, EventId id, uint32_t interest);
  absl::Status Unwatch(int fd);
  // The epoll fd itself: readable while any watched fd is ready (a set inside another set).
  int fd() const { return epoll_.get(); }

  // Waits (timeout_ms < 0: without end) and fills `ready` with the ids of the ready fds; returns
  // how many. EINTR is 0 ready; any other failure is an error.
  absl::StatusOr<size_t> Wait(absl::Span<EventId> ready, int timeout_ms = -1) const;

 private:
  UniqueFd epoll_;
};

}  // namespace edgevisor
