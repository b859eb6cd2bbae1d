#include "src/devices/virtio/worker.h"

#include <pthread.h>

#include "src/base/errors.h"
#include "src/base/log.h"

namespace edgevisor::virtio {

void Worker::Run(const EventFd& stop) {
  OnStart();
  for (bool running = true; running;) {
    EventId ready[EventSet::kMaxBatch];
    const absl::StatusOr<size_t> n = events_.Wait(absl::MakeSpan(ready));
    if (!n.ok()) {
      spdlog::error("device worker: {}; the device stops", n.status().message());
      break;
    }
    for (size_t i = 0; i < *n && running; ++i) {
      if (ready[i].kind == kStopKind) {
        stop.Drain();
        running = false;
      } else {
        OnEvent(ready[i]);
      }
    }
    if (running && *n > 0) AfterEvents();
  }
  OnStop();
}

absl::Status WorkerThread::Start(const std::string& name, std::unique_ptr<Worker> worker) {
  Stop();
  EV_ASSIGN_OR_RETURN(stop_, EventFd::Create(name + " stop"));
  EV_RETURN_IF_ERROR(worker->Watch(stop_.fd(), EventId{Worker::kStopKind, 0}));
  worker_ = std::move(worker);
  thread_ = std::thread([w = worker_.get(), stop = &stop_] { w->Run(*stop); });
  pthread_setname_np(thread_.native_handle(), name.substr(0, 15).c_str());
  return absl::OkStatus();
}

void WorkerThread::Stop() {
  if (!thread_.joinable()) return;
  stop_.Signal();
  thread_.join();
  worker_.reset();
}

}  // namespace edgevisor::virtio
