#include "src/devices/vsock/virtio_vsock.h"

#include <cstring>

#include "src/base/errors.h"
#include "src/base/event_fd.h"
#include "src/base/json_fields.h"
#include "src/base/log.h"
#include "src/devices/virtio/virtio_spec.h"

namespace edgevisor::vsock {

absl::StatusOr<std::unique_ptr<VirtioVsock>> VirtioVsock::Create(
    const VsockConfig& cfg, std::string thread_name, std::shared_ptr<const ThreadFilter> filter) {
  if (cfg.guest_cid < kMinGuestCid || cfg.guest_cid > kMaxGuestCid) {
    return UsageError(absl::StrFormat("guest_cid %u: must be %u to %u", cfg.guest_cid, kMinGuestCid,
                                      kMaxGuestCid));
  }
  std::unique_ptr<VirtioVsock> v(new VirtioVsock(cfg, std::move(thread_name)));
  EV_ASSIGN_OR_RETURN(v->muxer_, Muxer::Create(cfg.guest_cid, cfg.uds_path, &v->counters_));
  EV_RETURN_IF_ERROR(v->thread_.Prepare(v->thread_name_, std::move(filter)));
  return v;
}

VirtioVsock::~VirtioVsock() { thread_.Stop(); }

uint64_t VirtioVsock::features() const {
  return virtio::Bit(virtio::kFeatureVersion1) | virtio::Bit(virtio::kFeatureRingIndirectDesc) |
         virtio::Bit(virtio::kFeatureRingEventIdx);
}

void VirtioVsock::ReadConfig(uint64_t offset, absl::Span<uint8_t> data) const {
  const Config config{.guest_cid = cfg_.guest_cid};  // little-endian hosts only (x86_64, arm64)
  virtio::ReadConfigBytes(config, offset, data);
}

virtio::VirtioDevice::CounterList VirtioVsock::Counters() const {
  const VsockCounters& c = counters_;
  return {{"activate_fails", activate_fails_.load()},
          {"rx_packets_count", c.rx_packets.load()},
          {"rx_bytes_count", c.rx_bytes.load()},
          {"tx_packets_count", c.tx_packets.load()},
          {"tx_bytes_count", c.tx_bytes.load()},
          {"conns_added", c.conns_added.load()},
          {"conns_killed", c.conns_killed.load()},
          {"conns_removed", c.conns_removed.load()},
          {"rx_read_fails", c.rx_read_fails.load()},
          {"tx_write_fails", c.tx_write_fails.load()},
          {"tx_bad_packets", c.bad_packets.load()},
          {"host_conns_refused", c.refused_host_conns.load()},
          {"transport_reset_events", events_sent_.load()}};
}

// ---- the device thread ("vsock") ----------------------------------------------------------

namespace {
enum class VsockEvent : uint32_t {
  kNotify,  // the driver's queue notify (ioeventfd); index: the queue
  kMuxer,   // a host socket, the listener or the muxer's timer
};
}  // namespace

class VirtioVsock::Worker : public virtio::Worker {
 public:
  Worker(VirtioVsock& dev, const virtio::ActivateArgs& args,
         std::vector<std::unique_ptr<virtio::Virtqueue>> vqs)
      : dev_(dev),
        mem_(*args.mem),
        irq_(*args.interrupt),
        vqs_(std::move(vqs)),
        notify_fds_(args.notify_fds),
        want_irq_(vqs_.size(), false),
        buf_(kHeaderSize + kMaxPayload) {}

  absl::Status WatchAll() {
    for (uint32_t q = 0; q < vqs_.size(); ++q) {
      if (vqs_[q]) EV_RETURN_IF_ERROR(Watch(notify_fds_[q], EventId::Of(VsockEvent::kNotify, q)));
    }
    return Watch(dev_.muxer_->fd(), EventId::Of(VsockEvent::kMuxer));
  }
  std::vector<virtio::QueueState> QueueStates() override {
    std::vector<virtio::QueueState> s;
    for (const auto& q : vqs_) s.push_back(q ? q->state() : virtio::QueueState{});
    return s;
  }

 protected:
  // What waited before this worker started (a restored guest's buffers, host connections).
  void OnStart() override {
    SendEvents();
    Serve();
    AfterEvents();
  }
  void OnEvent(EventId id) override {
    if (id.Is(VsockEvent::kMuxer)) {
      dev_.muxer_->ProcessHostEvents();
    } else {
      DrainEventFd(notify_fds_[id.index]);
      if (id.index == kEventQueue) SendEvents();
    }
    Serve();
  }
  void AfterEvents() override {
    for (size_t q = 0; q < vqs_.size(); ++q) {
      if (!want_irq_[q] || broken_) continue;
      want_irq_[q] = false;
      if (vqs_[q]->ShouldInterrupt()) irq_.Signal(virtio::kInterruptUsedBuffer);
    }
  }

 private:
  // TX and RX until neither can go on: TX makes control packets for RX, and RX making room
  // lets a backlogged TX go on.
  void Serve() {
    while (!broken_) {
      const bool tx = ProcessTx();
      const bool rx = ProcessRx();
      if (!tx && !rx) break;
    }
  }
  bool ProcessTx();
  bool ProcessRx();
  void HandleTx(const virtio::DescriptorChain& chain);
  void SendEvents();
  void MarkBroken(const absl::Status& why) {
    if (!broken_) spdlog::warn("{}: {}", dev_.thread_name_, why.message());
    broken_ = true;
    irq_.NeedsReset();
  }
  void Used(uint16_t q, uint16_t head, uint32_t len) {
    if (absl::Status s = vqs_[q]->AddUsed(head, len); !s.ok()) return MarkBroken(s);
    want_irq_[q] = true;
  }

  VirtioVsock& dev_;
  const GuestMemory& mem_;
  virtio::InterruptSink& irq_;
  std::vector<std::unique_ptr<virtio::Virtqueue>> vqs_;
  std::vector<int> notify_fds_;
  std::vector<bool> want_irq_;
  std::vector<uint8_t> buf_;  // one packet, either way
  bool broken_ = false;
};

// Takes the guest's packets while the muxer can queue what they cause; whether any was taken.
bool VirtioVsock::Worker::ProcessTx() {
  virtio::Virtqueue* vq = vqs_[kTxQueue].get();
  if (!vq) return false;
  bool any = false;
  vq->SuppressNotifications();
  while (!broken_ && !dev_.muxer_->backlogged()) {
    auto head = vq->PopOrEnableNotification();
    if (!head.ok()) {
      MarkBroken(head.status());
      break;
    }
    if (!*head) break;
    auto chain = vq->ReadChain(**head);
    if (!chain.ok()) {
      MarkBroken(chain.status());
      break;
    }
    HandleTx(*chain);
    Used(kTxQueue, **head, 0);
    any = true;
  }
  // Backlogged: the ring is read again once RX took control packets (Serve's loop).
  return any;
}

void VirtioVsock::Worker::HandleTx(const virtio::DescriptorChain& chain) {
  const size_t have = virtio::GatherReadable(mem_, chain, absl::MakeSpan(buf_));
  const std::optional<Header> hdr = ParseHeader(absl::MakeConstSpan(buf_).first(have));
  if (!hdr) {
    dev_.counters_.bad_packets++;  // no header to answer to: dropped
    spdlog::debug("{}: a TX chain of {} readable bytes has no header", dev_.thread_name_, have);
    return;
  }
  if (absl::Status s = CheckPayload(*hdr, have - kHeaderSize); !s.ok()) {
    return dev_.muxer_->OnBadGuestPacket(*hdr, s);
  }
  dev_.muxer_->OnGuestPacket(*hdr, absl::MakeConstSpan(buf_).subspan(kHeaderSize, hdr->len));
}

// Hands the muxer's packets to the guest's receive buffers; whether any was delivered.
bool VirtioVsock::Worker::ProcessRx() {
  virtio::Virtqueue* vq = vqs_[kRxQueue].get();
  if (!vq) return false;
  bool any = false;
  while (!broken_ && dev_.muxer_->has_rx()) {
    auto head = vq->PopOrEnableNotification();
    if (!head.ok()) {
      MarkBroken(head.status());
      break;
    }
    if (!*head) break;  // armed: the guest's next buffer notifies
    auto chain = vq->ReadChain(**head);
    if (!chain.ok()) {
      MarkBroken(chain.status());
      break;
    }
    if (chain->writable_bytes < kHeaderSize) {
      // A buffer no packet fits in (§5.10.6.3.1 asks for header room at least): used empty.
      dev_.counters_.bad_packets++;
      Used(kRxQueue, **head, 0);
      continue;
    }
    const uint64_t room = std::min<uint64_t>(chain->writable_bytes - kHeaderSize, kMaxPayload);
    std::optional<Packet> p = dev_.muxer_->NextRx(static_cast<uint32_t>(room));
    if (!p) {
      vq->UndoPop();
      break;
    }
    EncodeHeader(p->hdr, absl::MakeSpan(buf_));
    if (!p->data.empty()) {  // an empty vector's data() may be null
      std::memcpy(buf_.data() + kHeaderSize, p->data.data(), p->data.size());
    }
    const size_t len = kHeaderSize + p->data.size();
    const size_t done = virtio::ScatterWritable(mem_, *chain, absl::MakeConstSpan(buf_).first(len));
    Used(kRxQueue, **head, static_cast<uint32_t>(done));
    dev_.counters_.rx_packets++;
    dev_.counters_.rx_bytes += p->data.size();
    any = true;
  }
  return any;
}

// A restored device's TRANSPORT_RESET, once the guest has an event buffer for it.
void VirtioVsock::Worker::SendEvents() {
  virtio::Virtqueue* vq = vqs_[kEventQueue].get();
  if (!dev_.reset_event_due_ || !vq || broken_) return;
  auto head = vq->PopOrEnableNotification();
  if (!head.ok()) return MarkBroken(head.status());
  if (!*head) return;
  auto chain = vq->ReadChain(**head);
  if (!chain.ok()) return MarkBroken(chain.status());
  uint8_t event[4] = {static_cast<uint8_t>(kEventTransportReset), 0, 0, 0};  // le32 id
  const size_t done = virtio::ScatterWritable(mem_, *chain, event);
  Used(kEventQueue, **head, static_cast<uint32_t>(done));
  if (done == sizeof(event)) {
    dev_.reset_event_due_ = false;
    dev_.events_sent_++;
  }
}

absl::StatusOr<std::vector<virtio::QueueState>> VirtioVsock::Quiesce() {
  std::unique_ptr<virtio::Worker> w = thread_.Quiesce();
  if (!w) return absl::FailedPreconditionError(thread_name_ + ": not active");
  return w->QueueStates();
}

nlohmann::json VirtioVsock::SaveDeviceState() const { return {{"guest_cid", cfg_.guest_cid}}; }

absl::Status VirtioVsock::LoadDeviceState(const nlohmann::json& j) {
  const std::string where = "device";
  EV_RETURN_IF_ERROR(json_fields::CheckObject(j, where, {"guest_cid"}));
  EV_ASSIGN_OR_RETURN(uint64_t cid, json_fields::GetUint(j, where, "guest_cid", 0, ~0ull));
  if (cid != cfg_.guest_cid) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "device.guest_cid %u is not the configured guest_cid %u", cid, cfg_.guest_cid));
  }
  // The connections of the snapshot's VMM are gone: the guest must drop its own.
  reset_event_due_ = true;
  return absl::OkStatus();
}

absl::Status VirtioVsock::Activate(virtio::ActivateArgs args) {
  thread_.Stop();
  // A fresh activation (not a resume after a quiesce) starts with no connections.
  if (args.resume.empty()) muxer_->ResetAll();
  auto vqs = virtio::MakeQueues(args);
  if (!vqs.ok()) {
    activate_fails_++;
    return vqs.status();
  }
  if (!(*vqs)[kRxQueue] || !(*vqs)[kTxQueue] || !(*vqs)[kEventQueue]) {
    activate_fails_++;
    return absl::InvalidArgumentError("vsock: the driver did not set up all three queues");
  }
  auto worker = std::make_unique<Worker>(*this, args, std::move(*vqs));
  EV_RETURN_IF_ERROR(worker->WatchAll());
  return thread_.Start(thread_name_, std::move(worker));
}

void VirtioVsock::Reset() {
  thread_.Stop();
  muxer_->ResetAll();  // the driver is gone: so are its connections
}

}  // namespace edgevisor::vsock
