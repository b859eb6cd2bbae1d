#include "src/devices/net/virtio_net.h"

#include <sys/uio.h>
#include <unistd.h>

#include <cstring>
#include <deque>

#include "absl/strings/str_format.h"
#include "src/base/errors.h"
#include "src/base/event_fd.h"
#include "src/base/log.h"
#include "src/devices/net/packet.h"
#include "src/devices/virtio/virtio_spec.h"

namespace edgevisor::net {

using namespace virtio_net;  // NOLINT(build/namespaces): spec constants
using virtio::Bit;

VirtioNet::VirtioNet(NetConfig cfg, Tap tap, std::string thread_name)
    : cfg_(std::move(cfg)), tap_(std::move(tap)), thread_name_(std::move(thread_name)) {}

absl::StatusOr<std::unique_ptr<VirtioNet>> VirtioNet::Create(
    const NetConfig& cfg, std::string thread_name, std::shared_ptr<const ThreadFilter> filter) {
  if (cfg.queues == 0 || cfg.queues > 8) return UsageError("queues must be 1 to 8");
  auto tap = Tap::Open(cfg.tap, cfg.queues);
  if (!tap.ok()) return tap.status();
  std::unique_ptr<VirtioNet> n(new VirtioNet(cfg, std::move(*tap), std::move(thread_name)));
  uint64_t f = Bit(virtio::kFeatureVersion1) | Bit(virtio::kFeatureRingIndirectDesc) |
               Bit(virtio::kFeatureRingEventIdx) | Bit(kFeatureMac) | Bit(kFeatureStatus) |
               Bit(kFeatureMtu) | Bit(kFeatureMrgRxbuf) | Bit(kFeatureCsum) |
               Bit(kFeatureGuestCsum) | Bit(kFeatureHostTso4) | Bit(kFeatureHostTso6) |
               Bit(kFeatureGuestTso4) | Bit(kFeatureGuestTso6);
  // UFO depends on the host kernel's TAP; offer it only where TUNSETOFFLOAD takes it.
  if (n->tap_.SupportsOffload(TapOffloadFlags(Bit(kFeatureGuestCsum) | Bit(kFeatureGuestUfo)))) {
    f |= Bit(kFeatureHostUfo) | Bit(kFeatureGuestUfo);
  }
  if (cfg.queues > 1) f |= Bit(kFeatureCtrlVq) | Bit(kFeatureMq);
  n->features_ = f;
  std::memcpy(n->config_.mac, cfg.mac.data(), 6);
  n->config_.status = kStatusLinkUp;
  n->config_.max_virtqueue_pairs = cfg.queues;
  n->config_.mtu = static_cast<uint16_t>(std::min(n->tap_.mtu(), 65535));
  for (int i = 0; i < cfg.queues; ++i) {
    n->rx_.push_back(std::make_unique<QueueCounters>());
    n->tx_.push_back(std::make_unique<QueueCounters>());
  }
  EV_ASSIGN_OR_RETURN(n->rx_limiter_, virtio::RateLimiter::Create(cfg.rx_rate_limiter));
  EV_ASSIGN_OR_RETURN(n->tx_limiter_, virtio::RateLimiter::Create(cfg.tx_rate_limiter));
  EV_RETURN_IF_ERROR(n->thread_.Prepare(n->thread_name_, std::move(filter)));
  return n;
}

VirtioNet::~VirtioNet() { Reset(); }

namespace {
uint64_t Sum(const std::vector<std::unique_ptr<QueueCounters>>& queues,
             std::atomic<uint64_t> QueueCounters::*field) {
  uint64_t t = 0;
  for (const auto& q : queues) t += ((*q).*field).load();
  return t;
}
}  // namespace

virtio::VirtioDevice::CounterList VirtioNet::Counters() const {
  using QC = QueueCounters;
  return {{"rx_packets_count", Sum(rx_, &QC::packets)},
          {"rx_bytes_count", Sum(rx_, &QC::bytes)},
          {"rx_dropped_count", Sum(rx_, &QC::drops)},
          {"tx_packets_count", Sum(tx_, &QC::packets)},
          {"tx_bytes_count", Sum(tx_, &QC::bytes)},
          {"tx_dropped_count", Sum(tx_, &QC::drops)},
          {"rx_rate_limiter_throttled", rx_limiter_->throttled()},
          {"tx_rate_limiter_throttled", tx_limiter_->throttled()},
          {"rx_event_rate_limiter_count", rx_limiter_wakeups_.load()},
          {"tx_rate_limiter_event_count", tx_limiter_wakeups_.load()},
          // The metadata service's, 0 where it is off (Firecracker's group "mmds").
          {"mmds_rx_frames", mmds_counters_.rx_frames.load()},
          {"mmds_rx_dropped", mmds_counters_.rx_dropped.load()},
          {"mmds_tx_frames", mmds_counters_.tx_frames.load()},
          {"mmds_tx_dropped", mmds_counters_.tx_dropped.load()},
          {"mmds_connections", mmds_counters_.connections.load()},
          {"mmds_evictions", mmds_counters_.evictions.load()},
          {"mmds_requests", mmds_counters_.requests.load()},
          {"mmds_bad_requests", mmds_counters_.bad_requests.load()}};
}

uint32_t VirtioNet::device_id() const { return virtio::kDeviceIdNet; }

uint16_t VirtioNet::num_queues() const {
  return static_cast<uint16_t>(2 * cfg_.queues + (cfg_.queues > 1 ? 1 : 0));
}

void VirtioNet::ReadConfig(uint64_t offset, absl::Span<uint8_t> data) const {
  virtio::ReadConfigBytes(config_, offset, data);
}

namespace {

// Bytes of a device-writable chain, as host views.
struct RxChain {
  uint16_t head;
  std::vector<iovec> iov;
  uint64_t capacity = 0;
};

// A frame read from the TAP that waits for receive buffers.
struct Frame {
  std::vector<uint8_t> data;  // NetHdr + frame
  size_t len = 0;
};

// Host views of a chain's non-empty buffers. The chain walker proved each lies in guest RAM.
std::vector<iovec> HostViews(const GuestMemory& mem, const virtio::DescriptorChain& chain) {
  std::vector<iovec> iov;
  for (const virtio::ChainDesc& d : chain.descs) {
    if (d.len == 0) continue;
    absl::Span<uint8_t> v = *mem.Translate(d.addr, d.len);
    iov.push_back({v.data(), v.size()});
  }
  return iov;
}

// Up to DST's size bytes of IOV from OFFSET on, into DST; how many.
size_t CopyFrom(const std::vector<iovec>& iov, size_t offset, absl::Span<uint8_t> dst) {
  size_t done = 0;
  for (const iovec& v : iov) {
    if (done == dst.size()) break;
    if (offset >= v.iov_len) {
      offset -= v.iov_len;
      continue;
    }
    const size_t n = std::min(v.iov_len - offset, dst.size() - done);
    std::memcpy(dst.data() + done, static_cast<const uint8_t*>(v.iov_base) + offset, n);
    done += n;
    offset = 0;
  }
  return done;
}

uint64_t CopyTo(const std::vector<iovec>& iov, const uint8_t* src, uint64_t len) {
  uint64_t done = 0;
  for (const iovec& v : iov) {
    if (done == len) break;
    const uint64_t n = std::min<uint64_t>(v.iov_len, len - done);
    std::memcpy(v.iov_base, src + done, n);
    done += n;
  }
  return done;
}

}  // namespace

// ---- the device thread ("netN"): every queue pair and the control queue -----------------------

namespace {
enum class NetEvent : uint32_t {
  kNotify,     // the driver's queue notify (ioeventfd); index: the queue (rx 2p, tx 2p+1, ctrl)
  kTap,        // a TAP queue has frames to read; index: the pair
  kRxLimiter,  // the RX rate limiter's timer: a held frame may go on
  kTxLimiter,  // the TX rate limiter's timer: a held chain may go on
};
}  // namespace

class VirtioNet::Worker : public virtio::Worker {
 public:
  Worker(VirtioNet& dev, const virtio::ActivateArgs& args,
         std::vector<std::unique_ptr<virtio::Virtqueue>> vqs);
  absl::Status WatchAll();
  std::vector<virtio::QueueState> QueueStates() override;

 protected:
  void OnStart() override;
  void OnEvent(virtio::EventId id) override;
  void AfterEvents() override;

 private:
  struct Pair {
    std::deque<RxChain> rx_chains;  // popped from the RX ring, not yet used
    Frame frame;                    // staging buffer, allocated once per pair
    bool pending = false;           // `frame` holds a frame that waits for buffers
    bool admitted = false;          // ... and the RX rate limiter has let it through
    bool tap_watched = false;
    bool broken = false;
  };

  void ProcessTx(int p);
  bool SendToTap(int p, const virtio::DescriptorChain& chain);
  void ProcessRx(int p);
  bool GatherRx(int p, uint64_t need);
  bool Deliver(int p);
  void DeliverWhole(int p);
  void DeliverMerged(int p);
  void ProcessCtrl(uint32_t qi);
  uint8_t ExecuteCtrl(const std::vector<uint8_t>& cmd) const;
  void WatchTap(int p, bool on);
  void MarkBroken(int p, const absl::Status& why);
  bool ToMmds(const std::vector<iovec>& iov, uint64_t frame_len);
  virtio::Virtqueue* rxq(int p) { return vqs_[2 * p].get(); }
  virtio::Virtqueue* txq(int p) { return vqs_[2 * p + 1].get(); }

  VirtioNet& dev_;
  const GuestMemory& mem_;
  virtio::InterruptSink& irq_;
  const uint64_t features_;
  const bool mrg_;  // VIRTIO_NET_F_MRG_RXBUF: a frame may span several RX chains
  std::vector<std::unique_ptr<virtio::Virtqueue>> vqs_;
  std::vector<int> notify_fds_;
  std::vector<Pair> pairs_;
  std::vector<bool> want_irq_;       // per queue: used elements added in this batch
  std::vector<uint8_t> mmds_frame_;  // a TX frame for the metadata service, gathered
};

VirtioNet::Worker::Worker(VirtioNet& dev, const virtio::ActivateArgs& args,
                          std::vector<std::unique_ptr<virtio::Virtqueue>> vqs)
    : dev_(dev),
      mem_(*args.mem),
      irq_(*args.interrupt),
      features_(args.features),
      mrg_(args.features & Bit(kFeatureMrgRxbuf)),
      vqs_(std::move(vqs)),
      notify_fds_(args.notify_fds),
      pairs_(static_cast<size_t>(dev.cfg_.queues)),
      want_irq_(vqs_.size(), false) {
  for (Pair& st : pairs_) st.frame.data.resize(sizeof(NetHdr) + kMaxFrame);
}

absl::Status VirtioNet::Worker::WatchAll() {
  for (uint32_t i = 0; i < vqs_.size(); ++i) {
    if (vqs_[i])
      EV_RETURN_IF_ERROR(Watch(notify_fds_[i], virtio::EventId::Of(NetEvent::kNotify, i)));
  }
  EV_RETURN_IF_ERROR(
      Watch(dev_.rx_limiter_->timer_fd(), virtio::EventId::Of(NetEvent::kRxLimiter)));
  return Watch(dev_.tx_limiter_->timer_fd(), virtio::EventId::Of(NetEvent::kTxLimiter));
}

// Frames waiting on the TAP, and what the driver queued before this worker started (after a
// restore or a quiesce, its notification went to a worker that is gone).
void VirtioNet::Worker::OnStart() {
  for (int p = 0; p < static_cast<int>(pairs_.size()); ++p) {
    ProcessRx(p);
    ProcessTx(p);
  }
  AfterEvents();
}

void VirtioNet::Worker::OnEvent(virtio::EventId id) {
  if (id.Is(NetEvent::kTap)) return ProcessRx(static_cast<int>(id.index));
  if (id.Is(NetEvent::kRxLimiter) || id.Is(NetEvent::kTxLimiter)) {
    const bool rx = id.Is(NetEvent::kRxLimiter);
    (rx ? dev_.rx_limiter_wakeups_ : dev_.tx_limiter_wakeups_)++;
    (rx ? dev_.rx_limiter_ : dev_.tx_limiter_)->OnTimer();
    for (int p = 0; p < static_cast<int>(pairs_.size()); ++p) rx ? ProcessRx(p) : ProcessTx(p);
    return;
  }
  DrainEventFd(notify_fds_[id.index]);
  if (id.index == 2 * pairs_.size()) {
    ProcessCtrl(id.index);
  } else if (id.index % 2 == 0) {
    ProcessRx(static_cast<int>(id.index / 2));  // new buffers: resume a waiting frame
  } else {
    ProcessTx(static_cast<int>(id.index / 2));
  }
}

void VirtioNet::Worker::AfterEvents() {
  for (size_t q = 0; q < vqs_.size(); ++q) {
    if (want_irq_[q] && vqs_[q]->ShouldInterrupt()) irq_.Signal(virtio::kInterruptUsedBuffer);
    want_irq_[q] = false;
  }
}

// The driver broke a ring (§2.1.2): the pair stops, and the device asks for a reset.
void VirtioNet::Worker::MarkBroken(int p, const absl::Status& why) {
  if (!pairs_[p].broken) spdlog::warn("{}: {}", dev_.thread_name_, why.message());
  pairs_[p].broken = true;
  irq_.NeedsReset();
}

// ---- TX: guest -> TAP ---------------------------------------------------------------------------

void VirtioNet::Worker::ProcessTx(int p) {
  virtio::Virtqueue* vq = txq(p);
  if (!vq || pairs_[p].broken) return;
  QueueCounters& c = *dev_.tx_[p];
  vq->SuppressNotifications();
  while (!dev_.tx_limiter_->blocked()) {
    auto head = vq->PopOrEnableNotification();
    if (!head.ok()) return MarkBroken(p, head.status());
    if (!*head) break;
    auto chain = vq->ReadChain(**head);
    if (!chain.ok()) return MarkBroken(p, chain.status());
    const uint64_t payload =
        chain->readable_bytes > sizeof(NetHdr) ? chain->readable_bytes - sizeof(NetHdr) : 0;
    if (!dev_.tx_limiter_->Consume(1, payload)) {  // back into the ring until the timer
      vq->UndoPop();
      break;
    }
    if (SendToTap(p, *chain)) {
      c.packets++;
      c.bytes += chain->readable_bytes - sizeof(NetHdr);
    } else {
      c.drops++;
    }
    absl::Status s = vq->AddUsed(**head, 0);
    if (!s.ok()) return MarkBroken(p, s);
    want_irq_[2 * p + 1] = true;
  }
  if (dev_.mmds_ && dev_.mmds_->has_frames()) ProcessRx(0);  // the service's replies
}

// One TX chain to the TAP: false (a drop) for a chain with device-writable buffers (§5.1.6.2),
// without room for the header, with a header the features do not allow, or a short write.
bool VirtioNet::Worker::SendToTap(int p, const virtio::DescriptorChain& chain) {
  if (chain.writable_bytes != 0) return false;
  const std::vector<iovec> iov = HostViews(mem_, chain);
  NetHdr h{};
  if (!GatherTxHeader(iov, &h)) return false;
  absl::Status s = ValidateTxHeader(h, chain.readable_bytes - sizeof(NetHdr), features_);
  if (!s.ok()) {
    spdlog::debug("{}: TX frame dropped: {}", dev_.thread_name_, s.message());
    return false;
  }
  if (dev_.mmds_ && ToMmds(iov, chain.readable_bytes - sizeof(NetHdr))) return true;
  ssize_t n;
  do {
    n = writev(dev_.tap_.fd(p), iov.data(), static_cast<int>(iov.size()));
  } while (n < 0 && errno == EINTR);
  return n == static_cast<ssize_t>(chain.readable_bytes);
}

// A TX frame for the metadata service goes to its stack, not the TAP; true if it was one.
bool VirtioNet::Worker::ToMmds(const std::vector<iovec>& iov, uint64_t frame_len) {
  uint8_t prefix[mmds::Stack::kClaimBytes];
  const size_t n = CopyFrom(iov, sizeof(NetHdr), absl::MakeSpan(prefix));
  if (!dev_.mmds_->Claims(absl::MakeConstSpan(prefix, n))) return false;
  mmds_frame_.resize(frame_len);
  CopyFrom(iov, sizeof(NetHdr), absl::MakeSpan(mmds_frame_));
  dev_.mmds_->OnGuestFrame(mmds_frame_, absl::Now());
  return true;
}

// ---- RX: TAP -> guest ---------------------------------------------------------------------------

// Reads frames from the TAP while the guest has buffers for them. Out of buffers, the TAP
// leaves the epoll set (backpressure) until the guest posts more.
void VirtioNet::Worker::ProcessRx(int p) {
  Pair& st = pairs_[p];
  if (!rxq(p) || st.broken) return;
  for (;;) {
    if (st.pending && !st.admitted) {
      if (!dev_.rx_limiter_->Consume(1, st.frame.len - sizeof(NetHdr))) {
        WatchTap(p, false);  // the TAP keeps what comes meanwhile: wait for the timer
        return;
      }
      st.admitted = true;
    }
    if (st.pending && !Deliver(p)) break;  // out of buffers: wait for the guest
    st.admitted = false;
    if (st.broken) return;
    Frame& f = st.frame;
    if (p == 0 && dev_.mmds_ && dev_.mmds_->has_frames()) {
      // The metadata service's replies first (not rate limited: they answer the guest's own).
      const std::vector<uint8_t> m = dev_.mmds_->PopFrame();
      if (sizeof(NetHdr) + m.size() > f.data.size()) continue;
      std::memset(f.data.data(), 0, sizeof(NetHdr));
      std::memcpy(f.data.data() + sizeof(NetHdr), m.data(), m.size());
      f.len = sizeof(NetHdr) + m.size();
      st.pending = st.admitted = true;
      continue;
    }
    ssize_t n = read(dev_.tap_.fd(p), f.data.data(), f.data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {  // EAGAIN: the TAP is empty; wait for it
      WatchTap(p, true);
      return;
    }
    if (static_cast<size_t>(n) < sizeof(NetHdr)) {
      dev_.rx_[p]->drops++;
      continue;
    }
    f.len = static_cast<size_t>(n);
    st.pending = true;
  }
  WatchTap(p, false);
}

void VirtioNet::Worker::WatchTap(int p, bool on) {
  Pair& st = pairs_[p];
  if (st.tap_watched == on) return;
  const int fd = dev_.tap_.fd(p);
  absl::Status s = on ? Watch(fd, virtio::EventId::Of(NetEvent::kTap, p)) : Unwatch(fd);
  if (!s.ok()) {
    spdlog::error("{}: {}", dev_.thread_name_, s.message());
    return;
  }
  st.tap_watched = on;
}

// Pops RX chains until `need` bytes of buffers are held (or the ring is empty).
bool VirtioNet::Worker::GatherRx(int p, uint64_t need) {
  Pair& st = pairs_[p];
  virtio::Virtqueue* vq = rxq(p);
  uint64_t have = 0;
  for (const RxChain& ch : st.rx_chains) have += ch.capacity;
  vq->SuppressNotifications();  // armed again below only if the buffers run out
  while (have < need) {
    auto head = vq->PopOrEnableNotification();
    if (!head.ok()) return MarkBroken(p, head.status()), false;
    if (!*head) return false;
    auto chain = vq->ReadChain(**head);
    if (!chain.ok()) return MarkBroken(p, chain.status()), false;
    if (chain->readable_bytes != 0 || chain->writable_bytes < sizeof(NetHdr)) {
      MarkBroken(p, absl::InvalidArgumentError("RX buffer is not device-writable or too small"));
      return false;
    }
    RxChain rc{**head, HostViews(mem_, *chain), chain->writable_bytes};
    have += rc.capacity;
    st.rx_chains.push_back(std::move(rc));
    if (!mrg_) break;  // without MRG_RXBUF one chain must hold a whole frame
  }
  return have >= need;
}

// Delivers the pending frame if the buffers allow; false if it must keep waiting.
bool VirtioNet::Worker::Deliver(int p) {
  if (!GatherRx(p, mrg_ ? pairs_[p].frame.len : 1)) return false;
  if (mrg_) {
    DeliverMerged(p);
  } else {
    DeliverWhole(p);
  }
  if (pairs_[p].broken) return true;  // no interrupt for a ring the device gave up on
  want_irq_[2 * p] = true;
  pairs_[p].pending = false;
  return true;
}

// Without MRG_RXBUF: the frame into one chain, or dropped if the guest posted one too small.
void VirtioNet::Worker::DeliverWhole(int p) {
  Pair& st = pairs_[p];
  Frame& f = st.frame;
  QueueCounters& c = *dev_.rx_[p];
  RxChain ch = std::move(st.rx_chains.front());
  st.rx_chains.pop_front();
  uint32_t used = 0;
  if (ch.capacity < f.len) {
    c.drops++;
  } else {
    reinterpret_cast<NetHdr*>(f.data.data())->num_buffers = 1;
    CopyTo(ch.iov, f.data.data(), f.len);
    used = static_cast<uint32_t>(f.len);
    c.packets++;
    c.bytes += f.len - sizeof(NetHdr);
  }
  absl::Status s = rxq(p)->AddUsed(ch.head, used);
  if (!s.ok()) MarkBroken(p, s);
}

// With MRG_RXBUF: the frame spread over as many chains as it needs; num_buffers, in the header
// that lands in the first one, tells the guest how many (§5.1.6.4).
void VirtioNet::Worker::DeliverMerged(int p) {
  Pair& st = pairs_[p];
  Frame& f = st.frame;
  uint16_t count = 0;
  for (uint64_t covered = 0; covered < f.len; ++count) covered += st.rx_chains[count].capacity;
  reinterpret_cast<NetHdr*>(f.data.data())->num_buffers = count;
  uint64_t off = 0;
  std::vector<std::pair<uint16_t, uint32_t>> elems;
  for (uint16_t i = 0; i < count; ++i) {
    RxChain ch = std::move(st.rx_chains.front());
    st.rx_chains.pop_front();
    const uint64_t n = CopyTo(ch.iov, f.data.data() + off, f.len - off);
    elems.push_back({ch.head, static_cast<uint32_t>(n)});
    off += n;
  }
  for (const auto& [head, len] : elems) {
    absl::Status s = rxq(p)->AddUsed(head, len);
    if (!s.ok()) return MarkBroken(p, s);
  }
  dev_.rx_[p]->packets++;
  dev_.rx_[p]->bytes += f.len - sizeof(NetHdr);
}

// ---- control queue ------------------------------------------------------------------------------

void VirtioNet::Worker::ProcessCtrl(uint32_t qi) {
  virtio::Virtqueue* vq = vqs_[qi].get();
  for (;;) {
    auto head = vq->PopHead();
    if (!head.ok()) return MarkBroken(0, head.status());
    if (!*head) break;
    auto chain = vq->ReadChain(**head);
    if (!chain.ok()) return MarkBroken(0, chain.status());
    // Readable: class, command, data. Writable: the one-byte ack (§5.1.6.5).
    std::vector<uint8_t> cmd;
    uint8_t* ack = nullptr;
    for (const virtio::ChainDesc& d : chain->descs) {
      absl::Span<uint8_t> v = *mem_.Translate(d.addr, d.len);
      if (!d.writable) {
        cmd.insert(cmd.end(), v.begin(), v.end());
      } else if (!v.empty()) {
        ack = v.data() + v.size() - 1;
      }
    }
    if (ack == nullptr) {
      return MarkBroken(0, absl::InvalidArgumentError("control command has no ack"));
    }
    *ack = ExecuteCtrl(cmd);
    absl::Status s = vq->AddUsed(**head, 1);
    if (!s.ok()) return MarkBroken(0, s);
    want_irq_[qi] = true;
  }
}

// VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET within the pairs we have is the one command: every pair is
// always served, so it only needs an answer.
uint8_t VirtioNet::Worker::ExecuteCtrl(const std::vector<uint8_t>& cmd) const {
  if (cmd.size() == 4 && cmd[0] == kCtrlMq && cmd[1] == kCtrlMqVqPairsSet) {
    const uint16_t want = static_cast<uint16_t>(cmd[2] | (cmd[3] << 8));
    if (want >= 1 && want <= pairs_.size()) return kCtrlOk;
  }
  return kCtrlErr;
}

absl::Status VirtioNet::Activate(virtio::ActivateArgs args) {
  Reset();
  EV_ASSIGN_OR_RETURN(auto vqs, virtio::MakeQueues(args));
  // Mirror what the guest accepts on receive into the TAP, so the kernel never hands us a
  // frame (a GSO super-packet, a partial checksum) the guest did not negotiate.
  EV_RETURN_IF_ERROR(tap_.SetOffload(TapOffloadFlags(args.features)));
  auto worker = std::make_unique<Worker>(*this, args, std::move(vqs));
  EV_RETURN_IF_ERROR(worker->WatchAll());
  return thread_.Start(thread_name_, std::move(worker));
}

void VirtioNet::Reset() { thread_.Stop(); }

// RX chains popped for a frame that never came are given back; a frame waiting for buffers is
// dropped (as a link would).
std::vector<virtio::QueueState> VirtioNet::Worker::QueueStates() {
  std::vector<virtio::QueueState> out;
  for (size_t q = 0; q < vqs_.size(); ++q) {
    if (!vqs_[q]) {
      out.emplace_back();
      continue;
    }
    virtio::QueueState s = vqs_[q]->state();
    if (q % 2 == 0 && q / 2 < pairs_.size()) {
      s.next_avail = static_cast<uint16_t>(s.next_avail - pairs_[q / 2].rx_chains.size());
    }
    out.push_back(s);
  }
  return out;
}

absl::StatusOr<std::vector<virtio::QueueState>> VirtioNet::Quiesce() {
  std::unique_ptr<virtio::Worker> w = thread_.Quiesce();
  if (!w) return absl::FailedPreconditionError(thread_name_ + ": not active");
  return w->QueueStates();
}

}  // namespace edgevisor::net
