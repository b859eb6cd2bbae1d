// Hands each API request from the HTTP server's thread to the main thread, which executes it
// and hands the response back (Firecracker's API/VMM split). The API thread thus never opens a
// file, touches KVM or builds a VM: its seccomp filter allows sockets and little else, and
// everything a request does happens on the main thread, under the main thread's filter.
#pragma once

#include <deque>
#include <functional>

#include "absl/synchronization/mutex.h"
#include "src/base/event_fd.h"
#include "src/vmm/api/http_server.h"

namespace edgevisor::api {

class RequestQueue {
 public:
  static absl::StatusOr<std::unique_ptr<RequestQueue>> Create();

  // API thread: queues REQ and blocks until the main thread answered it, or the queue closed
  // (503, the VMM is shutting down).
  HttpResponse Submit(const HttpRequest& req);

  // Main thread: readable when requests wait; Serve answers every waiting one with HANDLER.
  int fd() const { return ready_.fd(); }
  void Serve(const std::function<HttpResponse(const HttpRequest&)>& handler);

  // Main thread, when it stops serving: answers what waits, and every later request, with 503.
  void Close();

 private:
  struct Item {
    const HttpRequest* req;
    HttpResponse resp;
    bool done = false;
  };
  explicit RequestQueue(EventFd ready) : ready_(std::move(ready)) {}

  EventFd ready_;
  absl::Mutex mu_;
  std::deque<Item*> waiting_ ABSL_GUARDED_BY(mu_);
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace edgevisor::api
