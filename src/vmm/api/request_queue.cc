#include "src/vmm/api/request_queue.h"

#include "src/base/errors.h"

namespace edgevisor::api {
namespace {

HttpResponse ShuttingDown() { return {503, FaultJson("the VMM is shutting down")}; }

}  // namespace

absl::StatusOr<std::unique_ptr<RequestQueue>> RequestQueue::Create() {
  EV_ASSIGN_OR_RETURN(EventFd ready, EventFd::Create("API requests"));
  return std::unique_ptr<RequestQueue>(new RequestQueue(std::move(ready)));
}

HttpResponse RequestQueue::Submit(const HttpRequest& req) {
  Item item{&req, {}, false};
  {
    absl::MutexLock lock(&mu_);
    if (closed_) return ShuttingDown();
    waiting_.push_back(&item);
  }
  ready_.Signal();
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(&item.done));
  return std::move(item.resp);
}

void RequestQueue::Serve(const std::function<HttpResponse(const HttpRequest&)>& handler) {
  ready_.Drain();
  for (;;) {
    Item* item;
    {
      absl::MutexLock lock(&mu_);
      if (waiting_.empty()) return;
      item = waiting_.front();
      waiting_.pop_front();
    }
    HttpResponse resp = handler(*item->req);  // without mu_: Submit keeps queueing meanwhile
    absl::MutexLock lock(&mu_);
    item->resp = std::move(resp);
    item->done = true;
  }
}

void RequestQueue::Close() {
  absl::MutexLock lock(&mu_);
  closed_ = true;
  for (Item* item : waiting_) {
    item->resp = ShuttingDown();
    item->done = true;
  }
  waiting_.clear();
}

}  // namespace edgevisor::api
