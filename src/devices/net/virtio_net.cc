#include "src/devices/net/virtio_net.h"

#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cstring>
#include <deque>

#include "absl/strings/str_format.h"
#include "src/devices/net/packet.h"
#include "src/devices/virtio/virtio_spec.h"
#include "src/vmm/util/errors.h"
#include "src/vmm/util/log.h"

namespace edgevisor::net {

using namespace virtio_net;  // NOLINT(build/namespaces): spec constants
using virtio::Bit;

VirtioNet::VirtioNet(NetConfig cfg, Tap tap, std::string thread_name)
    : cfg_(std::move(cfg)), tap_(std::move(tap)), thread_name_(std::move(thread_name)) {}

absl::StatusOr<std::unique_ptr<VirtioNet>> VirtioNet::Create(const NetConfig& cfg,
                                                             std::string thread_name) {
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
  return n;
}

VirtioNet::~VirtioNet() { Reset(); }

uint32_t VirtioNet::device_id() const { return virtio::kDeviceIdNet; }

uint16_t VirtioNet::num_queues() const {
  return static_cast<uint16_t>(2 * cfg_.queues + (cfg_.queues > 1 ? 1 : 0));
}

void VirtioNet::ReadConfig(uint64_t offset, absl::Span<uint8_t> data) const {
  const auto* c = reinterpret_cast<const uint8_t*>(&config_);
  for (size_t i = 0; i < data.size(); ++i) {
    data[i] = offset + i < sizeof(config_) ? c[offset + i] : 0;
  }
}

absl::Status VirtioNet::Activate(virtio::ActivateArgs args) {
  Reset();
  const bool event_idx = args.features & Bit(virtio::kFeatureRingEventIdx);
  const bool indirect = args.features & Bit(virtio::kFeatureRingIndirectDesc);
  for (const virtio::QueueConfig& q : args.queues) {
    if (!q.ready) continue;
    absl::Status s = virtio::Virtqueue(args.mem, q, event_idx, indirect).Validate();
    if (!s.ok()) return s;
  }
  // Mirror what the guest accepts on receive into the TAP, so the kernel never hands us a
  // frame (a GSO super-packet, a partial checksum) the guest did not negotiate.
  absl::Status s = tap_.SetOffload(TapOffloadFlags(args.features));
  if (!s.ok()) return s;
  stop_fd_.Reset(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!stop_fd_.valid()) return ErrnoError("eventfd for net worker");
  worker_ = std::thread([this, args = std::move(args)]() mutable { Run(std::move(args)); });
  pthread_setname_np(worker_.native_handle(), thread_name_.substr(0, 15).c_str());
  return absl::OkStatus();
}

void VirtioNet::Reset() {
  if (!worker_.joinable()) return;
  uint64_t one = 1;
  [[maybe_unused]] ssize_t n = write(stop_fd_.get(), &one, sizeof(one));
  worker_.join();
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

void VirtioNet::Run(virtio::ActivateArgs args) {
  const GuestMemory& mem = *args.mem;
  virtio::InterruptSink& irq = *args.interrupt;
  const uint64_t features = args.features;
  const bool event_idx = features & Bit(virtio::kFeatureRingEventIdx);
  const bool indirect = features & Bit(virtio::kFeatureRingIndirectDesc);
  const bool mrg = features & Bit(kFeatureMrgRxbuf);
  const int pairs = cfg_.queues;

  std::vector<std::unique_ptr<virtio::Virtqueue>> vqs(args.queues.size());
  for (size_t i = 0; i < vqs.size(); ++i) {
    if (args.queues[i].ready) {
      vqs[i] = std::make_unique<virtio::Virtqueue>(args.mem, args.queues[i], event_idx, indirect);
    }
  }
  struct Pair {
    std::deque<RxChain> rx_chains;  // popped from the RX ring, not yet used
    Frame frame;                    // staging buffer, allocated once per pair
    bool pending = false;           // `frame` holds a frame that waits for buffers
    bool tap_watched = false;
    bool broken = false;
  };
  std::vector<Pair> state(static_cast<size_t>(pairs));
  for (Pair& st : state) st.frame.data.resize(sizeof(NetHdr) + kMaxFrame);
  UniqueFd ep(epoll_create1(EPOLL_CLOEXEC));
  constexpr uint64_t kStop = ~0ull, kTapBase = 1000;
  auto ctl = [&](int op, int fd, uint64_t tag) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = tag;
    epoll_ctl(ep.get(), op, fd, &ev);
  };
  ctl(EPOLL_CTL_ADD, stop_fd_.get(), kStop);
  for (size_t i = 0; i < vqs.size(); ++i) {
    if (vqs[i]) ctl(EPOLL_CTL_ADD, args.notify_fds[i], i);
  }
  auto broken = [&](size_t pair, const absl::Status& why) {
    if (!state[pair].broken) spdlog::warn("{}: {}", thread_name_, why.message());
    state[pair].broken = true;
    irq.NeedsReset();
  };
  std::vector<bool> want_irq(vqs.size(), false);

  // ---- TX: guest -> TAP ----------------------------------------------------------------------
  auto process_tx = [&](int p) {
    virtio::Virtqueue* vq = vqs[2 * p + 1].get();
    if (!vq || state[p].broken) return;
    QueueCounters& c = *tx_[p];
    vq->SuppressNotifications();
    for (bool armed = false;;) {
      auto head = vq->PopHead();
      if (!head.ok()) return broken(p, head.status());
      if (!*head) {
        if (armed) break;
        vq->ArmNotification();
        armed = true;
        continue;
      }
      armed = false;
      auto chain = vq->ReadChain(**head);
      if (!chain.ok()) return broken(p, chain.status());
      const std::vector<iovec> iov = HostViews(mem, *chain);
      bool ok = chain->writable_bytes == 0;  // a TX chain is all device-readable (§5.1.6.2)
      NetHdr h{};
      if (ok && GatherTxHeader(iov, &h)) {
        absl::Status s = ValidateTxHeader(h, chain->readable_bytes - sizeof(NetHdr), features);
        if (!s.ok()) {
          spdlog::debug("{}: TX frame dropped: {}", thread_name_, s.message());
          ok = false;
        }
      } else {
        ok = false;  // no room for the header, or device-writable buffers in a TX chain
      }
      if (ok) {
        ssize_t n;
        do {
          n = writev(tap_.fd(p), iov.data(), static_cast<int>(iov.size()));
        } while (n < 0 && errno == EINTR);
        ok = n == static_cast<ssize_t>(chain->readable_bytes);
      }
      if (ok) {
        c.packets++;
        c.bytes += chain->readable_bytes - sizeof(NetHdr);
      } else {
        c.drops++;
      }
      absl::Status s = vq->AddUsed(**head, 0);
      if (!s.ok()) return broken(p, s);
      want_irq[2 * p + 1] = true;
    }
  };

  // ---- RX: TAP -> guest ----------------------------------------------------------------------
  auto watch_tap = [&](int p, bool on) {
    if (state[p].tap_watched == on) return;
    ctl(on ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, tap_.fd(p), kTapBase + p);
    state[p].tap_watched = on;
  };
  // Pops RX chains until `need` bytes of buffers are held (or the ring is empty).
  auto gather_rx = [&](int p, uint64_t need) -> bool {
    Pair& st = state[p];
    virtio::Virtqueue* vq = vqs[2 * p].get();
    uint64_t have = 0;
    for (const RxChain& ch : st.rx_chains) have += ch.capacity;
    vq->SuppressNotifications();  // armed again below only if the buffers run out
    for (bool armed = false; have < need;) {
      auto head = vq->PopHead();
      if (!head.ok()) {
        broken(p, head.status());
        return false;
      }
      if (!*head) {
        if (armed) return false;
        vq->ArmNotification();
        armed = true;
        continue;
      }
      armed = false;
      auto chain = vq->ReadChain(**head);
      if (!chain.ok()) {
        broken(p, chain.status());
        return false;
      }
      if (chain->readable_bytes != 0 || chain->writable_bytes < sizeof(NetHdr)) {
        broken(p, absl::InvalidArgumentError("RX buffer is not device-writable or too small"));
        return false;
      }
      RxChain rc{**head, HostViews(mem, *chain), chain->writable_bytes};
      have += rc.capacity;
      st.rx_chains.push_back(std::move(rc));
      if (!mrg) break;  // without MRG_RXBUF one chain must hold a whole frame
    }
    return have >= need;
  };
  // Delivers the pending frame if the buffers allow; returns false if it must keep waiting.
  auto deliver = [&](int p) -> bool {
    Pair& st = state[p];
    Frame& f = st.frame;
    virtio::Virtqueue* vq = vqs[2 * p].get();
    QueueCounters& c = *rx_[p];
    if (!mrg) {
      if (!gather_rx(p, 1)) return false;
      RxChain ch = std::move(st.rx_chains.front());
      st.rx_chains.pop_front();
      if (ch.capacity < f.len) {  // the guest posted a buffer too small for this frame
        c.drops++;
        absl::Status s = vq->AddUsed(ch.head, 0);
        if (!s.ok()) broken(p, s);
      } else {
        reinterpret_cast<NetHdr*>(f.data.data())->num_buffers = 1;
        CopyTo(ch.iov, f.data.data(), f.len);
        absl::Status s = vq->AddUsed(ch.head, static_cast<uint32_t>(f.len));
        if (!s.ok()) broken(p, s);
        c.packets++;
        c.bytes += f.len - sizeof(NetHdr);
      }
      want_irq[2 * p] = true;
      st.pending = false;
      return true;
    }
    if (!gather_rx(p, f.len)) return false;
    // Spread the frame over as many buffers as it needs; num_buffers, in the header that
    // lands in the first buffer, tells the guest how many (§5.1.6.4).
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
      absl::Status s = vq->AddUsed(head, len);
      if (!s.ok()) return broken(p, s), true;
    }
    c.packets++;
    c.bytes += f.len - sizeof(NetHdr);
    want_irq[2 * p] = true;
    st.pending = false;
    return true;
  };
  auto process_rx = [&](int p) {
    Pair& st = state[p];
    if (!vqs[2 * p] || st.broken) return;
    for (;;) {
      if (st.pending && !deliver(p)) break;  // out of buffers: wait for the guest
      if (st.broken) return;
      Frame& f = st.frame;
      ssize_t n = read(tap_.fd(p), f.data.data(), f.data.size());
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {  // EAGAIN: the TAP is empty; wait for it
        watch_tap(p, true);
        return;
      }
      if (static_cast<size_t>(n) < sizeof(NetHdr)) {
        rx_[p]->drops++;
        continue;
      }
      f.len = static_cast<size_t>(n);
      st.pending = true;
    }
    watch_tap(p, false);  // backpressure: no reads until the guest posts buffers
  };

  // ---- control queue ---------------------------------------------------------------------------
  auto process_ctrl = [&](size_t qi) {
    virtio::Virtqueue* vq = vqs[qi].get();
    for (;;) {
      auto head = vq->PopHead();
      if (!head.ok()) return broken(0, head.status());
      if (!*head) break;
      auto chain = vq->ReadChain(**head);
      if (!chain.ok()) return broken(0, chain.status());
      // Readable: class, command, data. Writable: the one-byte ack (§5.1.6.5).
      std::vector<uint8_t> cmd;
      uint8_t* ack = nullptr;
      for (const virtio::ChainDesc& d : chain->descs) {
        absl::Span<uint8_t> v = *mem.Translate(d.addr, d.len);
        if (!d.writable) {
          cmd.insert(cmd.end(), v.begin(), v.end());
        } else if (!v.empty()) {
          ack = v.data() + v.size() - 1;
        }
      }
      if (ack == nullptr)
        return broken(0, absl::InvalidArgumentError("control command has no ack"));
      uint8_t result = kCtrlErr;
      if (cmd.size() == 4 && cmd[0] == kCtrlMq && cmd[1] == kCtrlMqVqPairsSet) {
        const uint16_t want = static_cast<uint16_t>(cmd[2] | (cmd[3] << 8));
        if (want >= 1 && want <= pairs) result = kCtrlOk;  // every pair is always served
      }
      *ack = result;
      absl::Status s = vq->AddUsed(**head, 1);
      if (!s.ok()) return broken(0, s);
      want_irq[qi] = true;
    }
  };

  for (int p = 0; p < pairs; ++p) process_rx(p);
  for (bool running = true; running;) {
    epoll_event evs[16];
    const int n = epoll_wait(ep.get(), evs, 16, -1);
    for (int i = 0; i < n; ++i) {
      const uint64_t tag = evs[i].data.u64;
      if (tag == kStop) {
        running = false;
        break;
      }
      if (tag >= kTapBase) {
        process_rx(static_cast<int>(tag - kTapBase));
        continue;
      }
      uint64_t v;
      [[maybe_unused]] ssize_t r = read(args.notify_fds[tag], &v, sizeof(v));
      if (tag == static_cast<uint64_t>(2 * pairs)) {
        process_ctrl(tag);
      } else if (tag % 2 == 0) {
        process_rx(static_cast<int>(tag / 2));  // new buffers: resume a waiting frame
      } else {
        process_tx(static_cast<int>(tag / 2));
      }
    }
    for (size_t q = 0; q < vqs.size(); ++q) {
      if (want_irq[q] && vqs[q]->ShouldInterrupt()) irq.Signal(virtio::kInterruptUsedBuffer);
      want_irq[q] = false;
    }
  }
}

}  // namespace edgevisor::net
