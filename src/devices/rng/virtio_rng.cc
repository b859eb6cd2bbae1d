#include "src/devices/rng/virtio_rng.h"

#include <sys/random.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "src/base/errors.h"
#include "src/base/event_fd.h"
#include "src/base/log.h"
#include "src/devices/virtio/virtio_spec.h"

namespace edgevisor::rng {

absl::StatusOr<std::unique_ptr<VirtioRng>> VirtioRng::Create(
    const EntropyConfig& cfg, std::string thread_name, std::shared_ptr<const ThreadFilter> filter) {
  std::unique_ptr<VirtioRng> r(new VirtioRng(std::move(thread_name)));
  EV_ASSIGN_OR_RETURN(r->limiter_, virtio::RateLimiter::Create(cfg.rate_limiter));
  EV_RETURN_IF_ERROR(r->thread_.Prepare(r->thread_name_, std::move(filter)));
  return r;
}

VirtioRng::~VirtioRng() { Reset(); }

uint32_t VirtioRng::device_id() const { return virtio::kDeviceIdRng; }

uint64_t VirtioRng::features() const {
  return virtio::Bit(virtio::kFeatureVersion1) | virtio::Bit(virtio::kFeatureRingIndirectDesc) |
         virtio::Bit(virtio::kFeatureRingEventIdx);
}

void VirtioRng::ReadConfig(uint64_t, absl::Span<uint8_t> data) const {
  std::fill(data.begin(), data.end(), 0);
}

virtio::VirtioDevice::CounterList VirtioRng::Counters() const {
  const RngCounters& c = counters_;
  return {{"entropy_event_count", c.requests.load()},
          {"entropy_bytes", c.bytes.load()},
          {"entropy_event_fails", c.bad_requests.load()},
          {"host_rng_fails", c.host_failures.load()},
          {"entropy_rate_limiter_throttled", limiter_->throttled()},
          {"rate_limiter_event_count", c.timer_events.load()},
          {"activate_fails", c.activate_fails.load()}};
}

// ---- the device thread ("rng") ----------------------------------------------------------------

namespace {
enum class RngEvent : uint32_t {
  kNotify,  // the driver's queue notify (ioeventfd)
  kTimer,   // the rate limiter's timer: the tokens a held request needs are there
};
}  // namespace

class VirtioRng::Worker : public virtio::Worker {
 public:
  Worker(VirtioRng& dev, const virtio::ActivateArgs& args, std::unique_ptr<virtio::Virtqueue> vq)
      : dev_(dev),
        mem_(*args.mem),
        irq_(*args.interrupt),
        vq_(std::move(vq)),
        notify_fd_(args.notify_fds[0]) {}
  absl::Status WatchAll() {
    EV_RETURN_IF_ERROR(Watch(notify_fd_, virtio::EventId::Of(RngEvent::kNotify)));
    return Watch(dev_.limiter_->timer_fd(), virtio::EventId::Of(RngEvent::kTimer));
  }
  std::vector<virtio::QueueState> QueueStates() override { return {vq_->state()}; }

 protected:
  // Buffers made available before this worker started (a restored snapshot's) are served now.
  void OnStart() override { Serve(); }
  void OnEvent(virtio::EventId id) override {
    if (id.Is(RngEvent::kTimer)) {
      dev_.counters_.timer_events++;
      dev_.limiter_->OnTimer();
    } else {
      DrainEventFd(notify_fd_);
    }
    Serve();
  }

 private:
  void Serve() {
    if (broken_) return;
    ProcessQueue();
    if (!broken_ && vq_->ShouldInterrupt()) irq_.Signal(virtio::kInterruptUsedBuffer);
  }
  void ProcessQueue();
  // Fills CHAIN's writable buffers (up to kMaxRequestBytes) from getrandom; the bytes written.
  uint32_t Fill(const virtio::DescriptorChain& chain);
  void MarkBroken(const absl::Status& why) {
    dev_.counters_.bad_requests++;
    if (!broken_) spdlog::warn("{}: {}", dev_.thread_name_, why.message());
    broken_ = true;
    irq_.NeedsReset();
  }

  VirtioRng& dev_;
  const GuestMemory& mem_;
  virtio::InterruptSink& irq_;
  std::unique_ptr<virtio::Virtqueue> vq_;
  int notify_fd_;
  bool broken_ = false;
};

// Serves every available buffer the rate limiter allows. A buffer it refuses goes back into the
// ring, and the queue waits for the limiter's timer (not for another notification).
void VirtioRng::Worker::ProcessQueue() {
  vq_->SuppressNotifications();
  while (true) {
    if (dev_.limiter_->blocked()) return;
    auto head = vq_->PopOrEnableNotification();
    if (!head.ok()) return MarkBroken(head.status());
    if (!*head) return;
    auto chain = vq_->ReadChain(**head);
    if (!chain.ok()) return MarkBroken(chain.status());
    const uint64_t want = std::min<uint64_t>(chain->writable_bytes, kMaxRequestBytes);
    if (!dev_.limiter_->Consume(1, want)) {
      vq_->UndoPop();
      return;
    }
    uint32_t written = 0;
    if (chain->readable_bytes != 0 || want == 0) {
      // §5.4.6.1: the driver places only device-writable buffers. Used, with nothing written.
      dev_.counters_.bad_requests++;
    } else {
      written = Fill(*chain);
    }
    if (absl::Status s = vq_->AddUsed(**head, written); !s.ok()) return MarkBroken(s);
  }
}

uint32_t VirtioRng::Worker::Fill(const virtio::DescriptorChain& chain) {
  uint32_t written = 0;
  for (const virtio::ChainDesc& d : chain.descs) {
    if (!d.writable || written >= kMaxRequestBytes) continue;
    const uint32_t len = std::min<uint32_t>(d.len, kMaxRequestBytes - written);
    auto span = mem_.Translate(d.addr, len);
    if (!span.ok()) {  // the walker checked it; a descriptor across two regions of RAM
      dev_.counters_.bad_requests++;
      break;
    }
    size_t done = 0;
    while (done < len) {
      const ssize_t n = getrandom(span->data() + done, len - done, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        dev_.counters_.host_failures++;
        spdlog::warn("{}: getrandom: {}", dev_.thread_name_, strerror(errno));
        return written + static_cast<uint32_t>(done);
      }
      done += static_cast<size_t>(n);
    }
    written += len;
  }
  dev_.counters_.requests++;
  dev_.counters_.bytes += written;
  return written;
}

absl::StatusOr<std::vector<virtio::QueueState>> VirtioRng::Quiesce() {
  std::unique_ptr<virtio::Worker> w = thread_.Quiesce();
  if (!w) return absl::FailedPreconditionError(thread_name_ + ": not active");
  return w->QueueStates();
}

absl::Status VirtioRng::Activate(virtio::ActivateArgs args) {
  Reset();
  auto vqs = virtio::MakeQueues(args);
  if (!vqs.ok()) {
    counters_.activate_fails++;
    return vqs.status();
  }
  if (!(*vqs)[0]) {
    counters_.activate_fails++;
    return absl::InvalidArgumentError("entropy: the driver did not set up the request queue");
  }
  auto worker = std::make_unique<Worker>(*this, args, std::move((*vqs)[0]));
  EV_RETURN_IF_ERROR(worker->WatchAll());
  return thread_.Start(thread_name_, std::move(worker));
}

void VirtioRng::Reset() { thread_.Stop(); }

}  // namespace edgevisor::rng
