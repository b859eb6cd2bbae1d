#include "src/devices/virtio/worker.h"

#include <pthread.h>
#include <sys/epoll.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_format.h"
#include "src/vmm/util/errors.h"
#include "src/vmm/util/log.h"

namespace edgevisor::virtio {
namespace {

uint64_t Pack(EventId id) { return (uint64_t{id.kind} << 32) | id.index; }
EventId Unpack(uint64_t v) {
  return {static_cast<uint32_t>(v >> 32), static_cast<uint32_t>(v & 0xffffffffu)};
}

}  // namespace

Worker::Worker() : epoll_(epoll_create1(EPOLL_CLOEXEC)) {}

absl::Status Worker::Watch(int fd, EventId id) {
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = Pack(id);
  if (!epoll_.valid() || epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) != 0) {
    return ErrnoError(absl::StrFormat("epoll: watch fd %d (event %u/%u)", fd, id.kind, id.index));
  }
  return absl::OkStatus();
}

absl::Status Worker::Unwatch(int fd) {
  if (epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr) != 0) {
    return ErrnoError(absl::StrFormat("epoll: unwatch fd %d", fd));
  }
  return absl::OkStatus();
}

void Worker::Run(const EventFd& stop) {
  OnStart();
  for (bool running = true; running;) {
    epoll_event evs[16];
    const int n = epoll_wait(epoll_.get(), evs, 16, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      spdlog::error("device worker: epoll_wait: {}; the device stops", strerror(errno));
      break;
    }
    for (int i = 0; i < n && running; ++i) {
      const EventId id = Unpack(evs[i].data.u64);
      if (id.kind == kStopKind) {
        stop.Drain();
        running = false;
      } else {
        OnEvent(id);
      }
    }
    if (running) AfterEvents();
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
