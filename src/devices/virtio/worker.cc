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

WorkerThread::~WorkerThread() {
  Stop();
  {
    absl::MutexLock lock(&mu_);
    quit_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

absl::Status WorkerThread::Prepare(const std::string& name,
                                   std::shared_ptr<const ThreadFilter> filter) {
  if (thread_.joinable()) return absl::FailedPreconditionError(name + ": already prepared");
  EV_ASSIGN_OR_RETURN(stop_, EventFd::Create(name + " stop"));
  thread_ = std::thread([this, name = name.substr(0, 15), filter = std::move(filter)] {
    pthread_setname_np(pthread_self(), name.c_str());  // before the filter: its report names it
    Main(filter);
  });
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(&ready_));
  return filter_status_;
}

void WorkerThread::Main(std::shared_ptr<const ThreadFilter> filter) {
  {
    absl::MutexLock lock(&mu_);
    filter_status_ = InstallThreadFilter(filter.get());
    ready_ = true;
    if (!filter_status_.ok()) return;
  }
  for (;;) {
    Worker* w;
    {
      absl::MutexLock lock(&mu_);
      auto has_work = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return current_ != nullptr || quit_;
      };
      mu_.Await(absl::Condition(&has_work));
      if (quit_) return;
      w = current_;
    }
    w->Run(stop_);
    absl::MutexLock lock(&mu_);
    current_ = nullptr;
    busy_ = false;
  }
}

absl::Status WorkerThread::Start(const std::string& name, std::unique_ptr<Worker> worker) {
  Stop();
  if (!thread_.joinable()) EV_RETURN_IF_ERROR(Prepare(name, nullptr));
  {
    absl::MutexLock lock(&mu_);
    if (!filter_status_.ok()) return filter_status_;
  }
  EV_RETURN_IF_ERROR(worker->Watch(stop_.fd(), EventId{Worker::kStopKind, 0}));
  worker_ = std::move(worker);
  absl::MutexLock lock(&mu_);
  current_ = worker_.get();
  busy_ = true;
  return absl::OkStatus();
}

void WorkerThread::Stop() { Quiesce(/*finish=*/false).reset(); }

std::unique_ptr<Worker> WorkerThread::Quiesce(bool finish) {
  {
    absl::MutexLock lock(&mu_);
    if (!busy_) return nullptr;
  }
  worker_->set_finish_on_stop(finish);  // read by the thread after the stop event, below
  stop_.Signal();
  {
    absl::MutexLock lock(&mu_);
    auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !busy_; };
    mu_.Await(absl::Condition(&idle));
  }
  return std::move(worker_);
}

}  // namespace edgevisor::virtio
