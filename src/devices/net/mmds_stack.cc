#include "src/devices/net/mmds_stack.h"

#include <sys/random.h>

#include <algorithm>
#include <cstring>

#include "src/base/log.h"

namespace edgevisor::mmds {
namespace {

constexpr uint16_t kEtherIpv4 = 0x0800, kEtherArp = 0x0806;
constexpr uint8_t kProtoTcp = 6;
constexpr uint8_t kFin = 0x01, kSyn = 0x02, kRst = 0x04, kPsh = 0x08, kAck = 0x10;
constexpr size_t kEth = 14, kIp = 20, kTcp = 20;
constexpr uint16_t kOurWindow = 65535;

uint16_t Be16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
uint32_t Be32(const uint8_t* p) {
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3];
}
void Put16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
void Put32(uint8_t* p, uint32_t v) {
  Put16(p, static_cast<uint16_t>(v >> 16));
  Put16(p + 2, static_cast<uint16_t>(v));
}

// The Internet checksum's one's-complement sum, to be folded.
uint32_t Sum(const uint8_t* p, size_t n, uint32_t acc = 0) {
  for (size_t i = 0; i + 1 < n; i += 2) acc += Be16(p + i);
  if (n % 2) acc += uint32_t{p[n - 1]} << 8;
  return acc;
}
uint16_t Fold(uint32_t acc) {
  while (acc >> 16) acc = (acc & 0xffff) + (acc >> 16);
  return static_cast<uint16_t>(~acc);
}

// a < b in sequence space (RFC 9293's modular comparison).
bool SeqLt(uint32_t a, uint32_t b) { return static_cast<int32_t>(a - b) < 0; }
bool SeqLe(uint32_t a, uint32_t b) { return !SeqLt(b, a); }

uint32_t RandomIss() {
  uint32_t v = 0;
  if (getrandom(&v, sizeof(v), 0) != sizeof(v))
    v = static_cast<uint32_t>(absl::GetCurrentTimeNanos());
  return v;
}

}  // namespace

struct Stack::Segment {
  std::array<uint8_t, 6> mac{};
  std::array<uint8_t, 4> ip{};
  uint16_t src_port = 0, dst_port = 0;
  uint32_t seq = 0, ack = 0;
  uint8_t flags = 0;
  uint16_t window = 0;
  uint16_t mss = 0;  // 0: the SYN named none
  absl::Span<const uint8_t> payload;
  // Sequence space the segment takes: its bytes, and one each for SYN and FIN.
  uint32_t span() const {
    return static_cast<uint32_t>(payload.size()) + ((flags & kSyn) ? 1 : 0) +
           ((flags & kFin) ? 1 : 0);
  }
};

bool Stack::Claims(absl::Span<const uint8_t> f) const {
  if (f.size() < kEth + 20) return false;
  const uint16_t type = Be16(f.data() + 12);
  if (type == kEtherIpv4) return std::equal(ip_.begin(), ip_.end(), f.data() + kEth + 16);
  // ARP: the target protocol address (IPv4 over Ethernet) at byte 24 of its body.
  return type == kEtherArp && f.size() >= kEth + 28 &&
         std::equal(ip_.begin(), ip_.end(), f.data() + kEth + 24);
}

void Stack::Queue(std::vector<uint8_t> frame) {
  if (out_.size() >= kMaxQueuedFrames) {
    counters_.tx_dropped++;
    return;
  }
  counters_.tx_frames++;
  out_.push_back(std::move(frame));
}

std::vector<uint8_t> Stack::PopFrame() {
  std::vector<uint8_t> f = std::move(out_.front());
  out_.pop_front();
  return f;
}

void Stack::OnGuestFrame(absl::Span<const uint8_t> f, absl::Time now) {
  counters_.rx_frames++;
  if (!Claims(f.first(std::min(f.size(), kClaimBytes)))) return void(counters_.rx_dropped++);
  if (Be16(f.data() + 12) == kEtherArp) return OnArp(f);
  const uint8_t* ip = f.data() + kEth;
  const size_t avail = f.size() - kEth;
  const size_t ihl = (ip[0] & 0xf) * 4u;
  const size_t total = Be16(ip + 2);
  // IPv4 only, whole (no fragments), TCP, lengths inside the frame.
  if ((ip[0] >> 4) != 4 || ihl < kIp || total < ihl + kTcp || total > avail ||
      (Be16(ip + 6) & 0x3fff) != 0 || ip[9] != kProtoTcp) {
    return void(counters_.rx_dropped++);
  }
  const uint8_t* tcp = ip + ihl;
  const size_t tcp_len = total - ihl;
  const size_t doff = (tcp[12] >> 4) * 4u;
  if (doff < kTcp || doff > tcp_len) return void(counters_.rx_dropped++);
  Segment s;
  std::copy_n(f.data() + 6, 6, s.mac.begin());
  std::copy_n(ip + 12, 4, s.ip.begin());
  s.src_port = Be16(tcp);
  s.dst_port = Be16(tcp + 2);
  s.seq = Be32(tcp + 4);
  s.ack = Be32(tcp + 8);
  s.flags = tcp[13];
  s.window = Be16(tcp + 14);
  for (size_t o = kTcp; o < doff;) {  // options: MSS is the one read
    const uint8_t kind = tcp[o];
    if (kind == 0) break;
    if (kind == 1) {
      ++o;
      continue;
    }
    if (o + 1 >= doff || tcp[o + 1] < 2 || o + tcp[o + 1] > doff) break;
    if (kind == 2 && tcp[o + 1] == 4) s.mss = Be16(tcp + o + 2);
    o += tcp[o + 1];
  }
  s.payload = absl::MakeConstSpan(tcp + doff, tcp_len - doff);
  OnTcp(s, now);
}

void Stack::OnArp(absl::Span<const uint8_t> f) {
  const uint8_t* a = f.data() + kEth;
  // Ethernet/IPv4 requests only (htype 1, ptype 0x0800, sizes 6 and 4, op 1).
  if (Be16(a) != 1 || Be16(a + 2) != kEtherIpv4 || a[4] != 6 || a[5] != 4 || Be16(a + 6) != 1) {
    return void(counters_.rx_dropped++);
  }
  std::vector<uint8_t> r(kEth + 28);
  std::copy_n(a + 8, 6, r.begin());  // to the sender's MAC
  std::copy(kMmdsMac.begin(), kMmdsMac.end(), r.begin() + 6);
  Put16(&r[12], kEtherArp);
  uint8_t* b = &r[kEth];
  Put16(b, 1);
  Put16(b + 2, kEtherIpv4);
  b[4] = 6;
  b[5] = 4;
  Put16(b + 6, 2);  // reply
  std::copy(kMmdsMac.begin(), kMmdsMac.end(), b + 8);
  std::copy(ip_.begin(), ip_.end(), b + 14);
  std::copy_n(a + 8, 10, b + 18);  // the requester's MAC and IPv4 address
  Queue(std::move(r));
}

void Stack::Emit(const Conn& c, uint8_t flags, uint32_t seq, absl::Span<const uint8_t> payload,
                 bool mss_option) {
  const size_t tcp_len = kTcp + (mss_option ? 4 : 0) + payload.size();
  std::vector<uint8_t> f(kEth + kIp + tcp_len);
  std::copy(c.mac.begin(), c.mac.end(), f.begin());
  std::copy(kMmdsMac.begin(), kMmdsMac.end(), f.begin() + 6);
  Put16(&f[12], kEtherIpv4);
  uint8_t* ip = &f[kEth];
  ip[0] = 0x45;
  Put16(ip + 2, static_cast<uint16_t>(kIp + tcp_len));
  Put16(ip + 4, ip_id_++);
  Put16(ip + 6, 0x4000);  // don't fragment
  ip[8] = 64;
  ip[9] = kProtoTcp;
  std::copy(ip_.begin(), ip_.end(), ip + 12);
  std::copy(c.ip.begin(), c.ip.end(), ip + 16);
  Put16(ip + 10, Fold(Sum(ip, kIp)));
  uint8_t* tcp = ip + kIp;
  Put16(tcp, kHttpPort);
  Put16(tcp + 2, c.port);
  Put32(tcp + 4, seq);
  Put32(tcp + 8, c.rcv_nxt);
  tcp[12] = static_cast<uint8_t>(((mss_option ? 24 : 20) / 4) << 4);
  tcp[13] = flags;
  Put16(tcp + 14, kOurWindow);
  size_t o = kTcp;
  if (mss_option) {
    tcp[o] = 2;
    tcp[o + 1] = 4;
    Put16(tcp + o + 2, kMaxMss);
    o += 4;
  }
  std::copy(payload.begin(), payload.end(), tcp + o);
  // The pseudo-header: addresses, protocol, TCP length.
  uint32_t acc = Sum(ip + 12, 8);
  acc += kProtoTcp + static_cast<uint32_t>(tcp_len);
  Put16(tcp + 16, Fold(Sum(tcp, tcp_len, acc)));
  Queue(std::move(f));
}

// No connection for S (or a port other than 80): RST, as a closed port answers (RFC 9293 3.10.7.1).
void Stack::Reset(const Segment& s) {
  if (s.flags & kRst) return;
  Conn c;
  c.mac = s.mac;
  c.ip = s.ip;
  c.port = s.src_port;
  if (s.flags & kAck) {
    Emit(c, kRst, s.ack, {});
  } else {
    c.rcv_nxt = s.seq + s.span();
    Emit(c, kRst | kAck, 0, {});
  }
}

void Stack::OnTcp(const Segment& s, absl::Time now) {
  if (s.dst_port != kHttpPort) return Reset(s);
  auto it = conns_.find({s.ip, s.src_port});
  if (it == conns_.end()) {
    if ((s.flags & (kSyn | kAck | kRst)) == kSyn) return Accept(s, now);
    return Reset(s);
  }
  Conn& c = it->second;
  if (s.flags & kRst) {
    conns_.erase(it);
    return;
  }
  c.active = now;
  c.mac = s.mac;
  if (s.flags & kSyn) {
    // The guest did not get our SYN-ACK: again. A SYN on a connection past that is ignored.
    if (!c.established && s.seq + 1 == c.rcv_nxt) Emit(c, kSyn | kAck, c.iss, {}, true);
    return;
  }
  if (!(s.flags & kAck)) return;  // every segment after the SYN carries an ACK
  OnAck(c, s);
  OnData(c, s, now);
  if (c.fin_received && c.responded && c.snd_una == c.fin_seq() + 1) conns_.erase(it);
}

void Stack::Accept(const Segment& s, absl::Time now) {
  if (conns_.size() >= kMaxConnections) {
    auto oldest = std::min_element(conns_.begin(), conns_.end(), [](const auto& a, const auto& b) {
      return a.second.active < b.second.active;
    });
    conns_.erase(oldest);
    counters_.evictions++;
  }
  Conn c;
  c.mac = s.mac;
  c.ip = s.ip;
  c.port = s.src_port;
  c.iss = RandomIss();
  c.snd_una = c.iss;
  c.snd_nxt = c.iss + 1;
  c.rcv_nxt = s.seq + 1;
  c.mss = std::clamp<uint16_t>(s.mss == 0 ? kDefaultMss : s.mss, 64, kMaxMss);
  c.window = s.window;
  c.active = now;
  counters_.connections++;
  Conn& added = conns_[{s.ip, s.src_port}] = std::move(c);
  Emit(added, kSyn | kAck, added.iss, {}, true);
}

void Stack::OnAck(Conn& c, const Segment& s) {
  c.window = s.window;
  if (SeqLt(c.snd_una, s.ack) && SeqLe(s.ack, c.snd_nxt)) {
    c.snd_una = s.ack;
    c.dup_acks = 0;
    if (!c.established && s.ack == c.iss + 1) c.established = true;
  } else if (s.ack == c.snd_una && s.payload.empty() && !(s.flags & kFin) &&
             c.snd_una != c.snd_nxt && ++c.dup_acks == 3) {
    // Three duplicate ACKs: what followed snd_una was lost; go back and send it again.
    c.snd_nxt = c.snd_una;
    c.dup_acks = 0;
  }
}

void Stack::OnData(Conn& c, const Segment& s, absl::Time now) {
  bool ack = false;
  if (!s.payload.empty() || (s.flags & kFin)) {
    ack = true;  // in order or not, the guest hears where we are
    if (s.seq == c.rcv_nxt && c.established) {
      if (!c.responded) c.request.append(s.payload.begin(), s.payload.end());
      c.rcv_nxt += static_cast<uint32_t>(s.payload.size());
      if (s.flags & kFin) {
        c.rcv_nxt += 1;
        c.fin_received = true;
      }
    }
  }
  if (!c.responded && (!c.request.empty() || c.fin_received)) Respond(c, now);
  Pump(c, ack);
}

void Stack::Respond(Conn& c, absl::Time now) {
  auto req = ParseRequest(c.request);
  if (req.ok() && !req->has_value() && !c.fin_received) return;  // more to come
  HttpResponse r;
  if (!req.ok()) {
    counters_.bad_requests++;
    r = {.status = absl::IsResourceExhausted(req.status()) ? 413 : 400,
         .content_type = "text/plain",
         .body = std::string(req.status().message())};
  } else if (!req->has_value()) {
    counters_.bad_requests++;  // the guest closed in the middle of its request
    r = {.status = 400, .content_type = "text/plain", .body = "incomplete request"};
  } else {
    r = service_->Handle(**req, now);
  }
  counters_.requests++;
  c.response = Serialize(r);
  c.responded = true;
  c.request.clear();
  c.request.shrink_to_fit();
}

void Stack::Pump(Conn& c, bool ack) {
  bool sent = false;
  const uint32_t data_end = c.fin_seq();
  while (c.established && c.responded) {
    const uint32_t in_flight = c.snd_nxt - c.snd_una;
    if (SeqLt(c.snd_nxt, data_end)) {
      if (in_flight >= c.window) break;  // the guest's window is full: its ACKs open it
      const uint32_t off = c.snd_nxt - (c.iss + 1);
      const uint32_t n = std::min({uint32_t{c.mss}, data_end - c.snd_nxt, c.window - in_flight});
      Emit(c, kAck | kPsh, c.snd_nxt,
           absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(c.response.data()) + off, n));
      c.snd_nxt += n;
      sent = true;
    } else {
      if (c.snd_nxt == data_end) {  // everything went: the FIN
        Emit(c, kAck | kFin, c.snd_nxt, {});
        c.snd_nxt += 1;
        sent = true;
      }
      break;
    }
  }
  if (ack && !sent) Emit(c, kAck, c.snd_nxt, {});
}

}  // namespace edgevisor::mmds
