// The device side of every virtio device, written once: an epoll loop whose fds are registered
// under typed event ids, and the thread that runs it from activation to reset (compare Cloud
// Hypervisor's epoll_helper and Firecracker's event manager). A device's worker says only what
// to do for its own events.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "src/base/event_fd.h"
#include "src/base/event_set.h"
#include "src/base/thread_filter.h"
#include "src/devices/virtio/queue.h"

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

  // After the worker stopped for a quiesce: each queue's position (see VirtioDevice::Quiesce),
  // with heads it popped but never used given back.
  virtual std::vector<QueueState> QueueStates() { return {}; }
  // Set before a stop that must complete what is in flight instead of dropping it.
  void set_finish_on_stop(bool on) { finish_on_stop_ = on; }

 protected:
  // On the worker thread before the first wait (work that needs no event, such as reading what
  // already waits on a TAP).
  virtual void OnStart() {}
  // One ready fd. Level-triggered: an fd left readable (an undrained eventfd) comes back.
  virtual void OnEvent(EventId id) = 0;
  // After each batch of events, before waiting again (one interrupt for a batch).
  virtual void AfterEvents() {}
  // On the worker thread after the loop ended: finish (finish_on_stop()) or drop what is in
  // flight.
  virtual void OnStop() {}
  bool finish_on_stop() const { return finish_on_stop_; }

 private:
  EventSet events_;
  std::atomic<bool> finish_on_stop_{false};
};

// A device's worker thread. The thread itself lives as long as the device: Prepare starts it
// (at build time, on the main thread) and it installs its seccomp filter before anything else,
// so that no thread is ever created once the guest runs and a filter never has to allow clone.
// Each worker runs on it from DRIVER_OK (Start) to a reset (Stop).
class WorkerThread {
 public:
  WorkerThread() = default;
  ~WorkerThread();
  WorkerThread(const WorkerThread&) = delete;
  WorkerThread& operator=(const WorkerThread&) = delete;

  // Starts the thread, called NAME (cut to the kernel's 15 characters), parked until Start;
  // it installs FILTER first (none when null) and the error, if any, is returned here.
  absl::Status Prepare(const std::string& name, std::shared_ptr<const ThreadFilter> filter);
  // Runs WORKER on the thread (Prepare-ing an unfiltered one first if there is none).
  absl::Status Start(const std::string& name, std::unique_ptr<Worker> worker);
  // Signals the stop event and waits for the worker's OnStop; the thread parks again. Safe to
  // call when nothing runs.
  void Stop();
  // Stop, but the worker completes its requests in flight first, and is handed back (null when
  // none ran) so the device can read its queue positions.
  std::unique_ptr<Worker> Quiesce(bool finish = true);
  bool running() const {
    absl::MutexLock lock(&mu_);
    return busy_;
  }

 private:
  void Main(std::shared_ptr<const ThreadFilter> filter);  // the thread's body

  EventFd stop_;
  std::unique_ptr<Worker> worker_;  // the worker that runs, or ran last
  mutable absl::Mutex mu_;
  Worker* current_ ABSL_GUARDED_BY(mu_) = nullptr;  // handed to the thread by Start
  bool busy_ ABSL_GUARDED_BY(mu_) = false;          // from Start until the worker's OnStop ran
  bool quit_ ABSL_GUARDED_BY(mu_) = false;
  bool ready_ ABSL_GUARDED_BY(mu_) = false;  // the filter is installed (or failed)
  absl::Status filter_status_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace edgevisor::virtio
