// The device side of every virtio device, written once: an epoll loop whose fds are registered
// under typed event ids, and the thread that runs it from activation to reset (compare Cloud
// Hypervisor's epoll_helper and Firecracker's event manager). A device's worker says only what
// to do for its own events.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "src/base/event_fd.h"
#include "src/base/event_set.h"

namespace edgevisor::virtio {

using EventId = ::edgevisor::EventId;  // base/event_set.h

class Worker {
 public:
  Worker() = default;
  virtual ~Worker() = default;
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Adds FD (level-triggered, readable) under ID; Unwatch removes it. The errors name the id.
  absl::Status Watch(int fd, EventId id) { return events_.Watch(fd, id); }
  absl::Status Unwatch(int fd) { return events_.Unwatch(fd); }

  // The worker thread's body: waits and dispatches until STOP is signalled, then OnStop().
  void Run(const EventFd& stop);

  // The kind of the stop event, which WorkerThread registers; devices use their own kinds.
  static constexpr uint32_t kStopKind = ~0u;

 protected:
  // On the worker thread before the first wait (work that needs no event, such as reading what
  // already waits on a TAP).
  virtual void OnStart() {}
  // One ready fd. Level-triggered: an fd left readable (an undrained eventfd) comes back.
  virtual void OnEvent(EventId id) = 0;
  // After each batch of events, before waiting again (one interrupt for a batch).
  virtual void AfterEvents() {}
  // On the worker thread after the loop ended: finish or drop what is in flight.
  virtual void OnStop() {}

 private:
  EventSet events_;
};

// A device's worker thread: started on DRIVER_OK, stopped (joined, the worker destroyed) on a
// reset or when the device goes away.
class WorkerThread {
 public:
  WorkerThread() = default;
  ~WorkerThread() { Stop(); }
  WorkerThread(const WorkerThread&) = delete;
  WorkerThread& operator=(const WorkerThread&) = delete;

  // Runs WORKER on a thread called NAME (cut to the kernel's 15 characters).
  absl::Status Start(const std::string& name, std::unique_ptr<Worker> worker);
  // Signals the stop event and joins; the worker's OnStop has run when this returns. Safe to
  // call when not started.
  void Stop();
  bool running() const { return thread_.joinable(); }

 private:
  EventFd stop_;
  std::unique_ptr<Worker> worker_;
  std::thread thread_;
};

}  // namespace edgevisor::virtio
