#include "src/devices/vsock/muxer.h"

#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "src/base/errors.h"
#include "src/base/log.h"

namespace edgevisor::vsock {
namespace {

enum class MuxEvent : uint32_t { kListener, kTimer, kConnection };

// A sockaddr_un for PATH, or an error naming it when it does not fit.
absl::StatusOr<sockaddr_un> UnixAddress(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s: a Unix socket path must be 1 to %d bytes", path, sizeof(addr.sun_path) - 1));
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  return addr;
}

bool WouldBlock(int err) { return err == EAGAIN || err == EWOULDBLOCK; }

}  // namespace

absl::StatusOr<std::unique_ptr<Muxer>> Muxer::Create(uint64_t guest_cid, std::string uds_path,
                                                     VsockCounters* counters) {
  std::unique_ptr<Muxer> m(new Muxer(guest_cid, std::move(uds_path), counters));
  auto addr = UnixAddress(m->uds_path_);
  if (!addr.ok()) return UsageError(absl::StrCat("uds_path ", addr.status().message()));
  if (access(m->uds_path_.c_str(), F_OK) == 0) {
    return UsageError(absl::StrFormat(
        "uds_path %s already exists (a socket left by another VMM?): remove it first",
        m->uds_path_));
  }
  m->listener_ = UniqueFd(socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!m->listener_.valid()) return ErrnoError("vsock: socket");
  if (bind(m->listener_.get(), reinterpret_cast<const sockaddr*>(&*addr), sizeof(*addr)) != 0) {
    return Annotate(ErrnoError("bind"), absl::StrCat("vsock: uds_path ", m->uds_path_));
  }
  if (listen(m->listener_.get(), 128) != 0) return ErrnoError("vsock: listen");
  m->timer_ = UniqueFd(timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
  if (!m->timer_.valid()) return ErrnoError("vsock: timerfd_create");
  EV_RETURN_IF_ERROR(m->events_.Watch(m->listener_.get(), EventId::Of(MuxEvent::kListener)));
  EV_RETURN_IF_ERROR(m->events_.Watch(m->timer_.get(), EventId::Of(MuxEvent::kTimer)));
  return m;
}

Muxer::~Muxer() {
  if (listener_.valid()) unlink(uds_path_.c_str());
}

void Muxer::ProcessHostEvents() {
  EventId ready[EventSet::kMaxBatch];
  auto n = events_.Wait(absl::MakeSpan(ready), 0);
  if (!n.ok()) {
    spdlog::warn("vsock: {}", n.status().message());
    return;
  }
  for (size_t i = 0; i < *n; ++i) {
    if (ready[i].Is(MuxEvent::kListener)) {
      Accept();
    } else if (ready[i].Is(MuxEvent::kTimer)) {
      OnTimer();
    } else {
      OnConnectionEvent(ready[i].index);
    }
  }
}

// ---- connections --------------------------------------------------------------------------

Connection* Muxer::Find(Key key) {
  auto it = by_ports_.find(key);
  return it == by_ports_.end() ? nullptr : conns_[it->second].get();
}

Connection* Muxer::Add(UniqueFd fd, Connection::State state) {
  uint32_t id = next_id_++;
  while (id == 0 || conns_.contains(id)) id = next_id_++;
  auto c = std::make_unique<Connection>(id, std::move(fd), state);
  Connection* raw = c.get();
  conns_.emplace(id, std::move(c));
  return raw;
}

void Muxer::Remove(Connection& c) {
  if (c.watched) (void)events_.Unwatch(c.fd());
  if (c.state() == Connection::State::kAwaitingLine) {
    --awaiting_line_;
  } else {
    by_ports_.erase({c.local_port(), c.peer_port()});
    counters_.conns_removed++;
  }
  conns_.erase(c.id());  // closes the host socket; queued ids of it are skipped
}

void Muxer::Kill(Connection& c, const std::string& why) {
  spdlog::debug("vsock: connection {}:{} reset: {}", c.local_port(), c.peer_port(), why);
  counters_.conns_killed++;
  QueueControl(kOpRst, c.local_port(), c.peer_port());
  Remove(c);
}

void Muxer::ResetAll() {
  while (!conns_.empty()) Remove(*conns_.begin()->second);
  control_.clear();
  credit_due_.clear();
  ready_.clear();
}

// What C's socket is waited for: the CONNECT line; guest data to write; host data to read,
// while the guest has room for it and it is not queued for reading already.
void Muxer::UpdateInterest(Connection& c) {
  uint32_t want = 0;
  if (c.state() == Connection::State::kAwaitingLine) {
    want = EventSet::kReadable;
  } else if (c.state() == Connection::State::kEstablished) {
    if (c.pending_bytes() > 0) want |= EventSet::kWritable;
    if (!c.host_eof() && !c.in_ready && !(c.guest_shutdown() & kShutdownRcv) && c.PeerFree() > 0)
      want |= EventSet::kReadable;
  }
  // An fd waited for nothing leaves the set: epoll reports a hung-up socket regardless.
  if (want == c.interest && c.watched == (want != 0)) return;
  const EventId id = EventId::Of(MuxEvent::kConnection, c.id());
  absl::Status s;
  if (want == 0) {
    s = events_.Unwatch(c.fd());
    c.watched = false;
  } else if (c.watched) {
    s = events_.Modify(c.fd(), id, want);
  } else {
    s = events_.Watch(c.fd(), id, want);
    c.watched = s.ok();
  }
  c.interest = want;
  if (!s.ok()) spdlog::warn("vsock: {}", s.message());
}

Header Muxer::HostHeader(uint16_t op, uint32_t local_port, uint32_t peer_port,
                         uint32_t fwd_cnt) const {
  return Header{.src_cid = kHostCid,
                .dst_cid = guest_cid_,
                .src_port = local_port,
                .dst_port = peer_port,
                .len = 0,
                .type = kTypeStream,
                .op = op,
                .flags = 0,
                .buf_alloc = kConnBufAlloc,
                .fwd_cnt = fwd_cnt};
}

Header Muxer::HeaderFor(Connection& c, uint16_t op) {
  return HostHeader(op, c.local_port(), c.peer_port(), c.TellFwdCnt());
}

void Muxer::QueueControl(uint16_t op, uint32_t local_port, uint32_t peer_port, uint32_t flags) {
  Header h = HostHeader(op, local_port, peer_port, 0);  // fwd_cnt filled in when sent
  h.flags = flags;
  control_.push_back(h);
}

void Muxer::QueueCreditUpdate(Connection& c) {
  if (c.credit_update_queued) return;
  c.credit_update_queued = true;
  credit_due_.push_back(c.id());
}

// ---- the host side ------------------------------------------------------------------------

void Muxer::Accept() {
  UniqueFd fd(accept4(listener_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
  if (!fd.valid()) {
    if (!WouldBlock(errno)) spdlog::warn("vsock: accept: {}", strerror(errno));
    return;
  }
  if (awaiting_line_ >= kMaxAwaitingLine || conns_.size() >= kMaxConnections) {
    counters_.refused_host_conns++;
    spdlog::warn("vsock: a host connection refused: {} connections already", conns_.size());
    return;  // closed
  }
  Connection* c = Add(std::move(fd), Connection::State::kAwaitingLine);
  ++awaiting_line_;
  c->set_deadline(absl::Now() + kSetupTimeout);
  ArmTimer(c->deadline());
  UpdateInterest(*c);
}

void Muxer::OnConnectionEvent(uint32_t id) {
  auto it = conns_.find(id);
  if (it == conns_.end()) return;
  Connection& c = *it->second;
  if (c.state() == Connection::State::kAwaitingLine) return ReadLine(c);
  if (c.state() != Connection::State::kEstablished) return;
  if (c.pending_bytes() > 0) {
    Flush(c);
    if (!conns_.contains(id)) return;
  }
  if ((c.interest & EventSet::kReadable) && !c.in_ready) {
    c.in_ready = true;  // read when the guest has a buffer for it (NextRx)
    ready_.push_back(id);
  }
  UpdateInterest(c);
}

// The "CONNECT <port>\n" line, a byte at a time so that nothing after it is taken from the
// socket before the stream is set up.
void Muxer::ReadLine(Connection& c) {
  std::string& line = c.line();
  while (line.empty() || line.back() != '\n') {
    char ch;
    const ssize_t n = recv(c.fd(), &ch, 1, MSG_DONTWAIT);
    if (n < 0 && WouldBlock(errno)) return;
    if (n <= 0 || line.size() >= kMaxLine) {
      counters_.refused_host_conns++;
      return Remove(c);  // closed, or a line too long: the host sees its socket close
    }
    line.push_back(ch);
  }
  absl::string_view text = line;
  uint32_t port = 0;
  if (!absl::ConsumePrefix(&text, "CONNECT ") || !absl::ConsumeSuffix(&text, "\n") ||
      !absl::SimpleAtoi(text, &port)) {
    spdlog::debug("vsock: a host connection sent {:?}, not CONNECT <port>", line);
    counters_.refused_host_conns++;
    return Remove(c);
  }
  uint32_t local = next_local_port_;
  while (by_ports_.contains({local, port})) local = local == ~0u ? kFirstLocalPort : local + 1;
  next_local_port_ = local == ~0u ? kFirstLocalPort : local + 1;
  --awaiting_line_;
  c.set_state(Connection::State::kConnecting);
  c.set_ports(local, port);
  by_ports_[{local, port}] = c.id();
  counters_.conns_added++;
  UpdateInterest(c);  // nothing until the guest answers
  QueueControl(kOpRequest, local, port);
}

// Writes what the guest sent to the host socket, as far as it takes it now.
void Muxer::Flush(Connection& c) {
  while (c.pending_bytes() > 0) {
    const ssize_t n = send(c.fd(), c.pending().data() + c.pending_offset(), c.pending_bytes(),
                           MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && WouldBlock(errno)) break;
    if (n <= 0) {
      counters_.tx_write_fails++;
      return Kill(c, absl::StrCat("host write: ", strerror(errno)));
    }
    c.Consume(static_cast<size_t>(n));
    c.Forwarded(static_cast<uint32_t>(n));
  }
  if (c.CreditUpdateDue()) QueueCreditUpdate(c);
  if (c.pending_bytes() == 0) AfterFlush(c);
}

// Everything the guest sent is with the host: a shutdown it asked for can happen now.
void Muxer::AfterFlush(Connection& c) {
  if (c.guest_shutdown() == kShutdownBoth) {
    // Both ways closed by the guest: the stream is over (§5.10.6.6), the guest is told with RST.
    QueueControl(kOpRst, c.local_port(), c.peer_port());
    return Remove(c);
  }
  if ((c.guest_shutdown() & kShutdownSend) && !c.host_write_closed()) {
    shutdown(c.fd(), SHUT_WR);
    c.set_host_write_closed();
  }
}

void Muxer::ArmTimer(absl::Time deadline) {
  if (deadline >= timer_armed_) return;
  timer_armed_ = deadline;
  const absl::Duration in = std::max(deadline - absl::Now(), absl::Milliseconds(1));
  itimerspec spec{};
  spec.it_value = absl::ToTimespec(in);
  if (timerfd_settime(timer_.get(), 0, &spec, nullptr) != 0)
    spdlog::warn("vsock: timerfd_settime: {}", strerror(errno));
}

// Connections still being set up past their deadline end: a host process that never said
// CONNECT, a guest that never answered REQUEST (RST, and the host socket closes without OK).
void Muxer::OnTimer() {
  uint64_t expirations;
  (void)!read(timer_.get(), &expirations, sizeof(expirations));
  timer_armed_ = absl::InfiniteFuture();
  const absl::Time now = absl::Now();
  absl::Time next = absl::InfiniteFuture();
  for (auto it = conns_.begin(); it != conns_.end();) {
    Connection& c = *(it++)->second;
    if (c.state() == Connection::State::kEstablished) continue;
    if (c.deadline() > now) {
      next = std::min(next, c.deadline());
    } else if (c.state() == Connection::State::kConnecting) {
      Kill(c, "the guest did not answer the connection request");
    } else {
      counters_.refused_host_conns++;
      Remove(c);
    }
  }
  if (next != absl::InfiniteFuture()) ArmTimer(next);
}

// Host data for the guest, at most MAX_DATA bytes and what the guest has room for.
std::optional<Packet> Muxer::ReadData(Connection& c, uint32_t max_data) {
  const uint32_t room = std::min({max_data, c.PeerFree(), kMaxPayload});
  if (room == 0 || c.host_eof() || (c.guest_shutdown() & kShutdownRcv)) return std::nullopt;
  Packet p{.hdr = HeaderFor(c, kOpRw), .data = std::vector<uint8_t>(room)};
  ssize_t n;
  do {
    n = recv(c.fd(), p.data.data(), room, MSG_DONTWAIT);
  } while (n < 0 && errno == EINTR);
  if (n < 0 && WouldBlock(errno)) return std::nullopt;
  if (n < 0) {
    counters_.rx_read_fails++;
    Kill(c, absl::StrCat("host read: ", strerror(errno)));
    return std::nullopt;
  }
  if (n == 0) {
    // The host will send no more: the guest hears SHUTDOWN(SEND); if it had closed its side
    // too, the stream is over.
    c.set_host_eof();
    if (c.guest_shutdown() & kShutdownSend) {
      QueueControl(kOpRst, c.local_port(), c.peer_port());
      Remove(c);
      return std::nullopt;
    }
    Packet s{.hdr = HeaderFor(c, kOpShutdown), .data = {}};
    s.hdr.flags = kShutdownSend;
    return s;
  }
  p.data.resize(static_cast<size_t>(n));
  p.hdr.len = static_cast<uint32_t>(n);
  c.Sent(p.hdr.len);
  return p;
}

std::optional<Packet> Muxer::NextRx(uint32_t max_data) {
  while (!control_.empty()) {
    Packet p{.hdr = control_.front(), .data = {}};
    control_.pop_front();
    if (Connection* c = Find({p.hdr.src_port, p.hdr.dst_port})) p.hdr.fwd_cnt = c->TellFwdCnt();
    return p;
  }
  while (!credit_due_.empty()) {
    auto it = conns_.find(credit_due_.front());
    credit_due_.pop_front();
    if (it == conns_.end()) continue;
    it->second->credit_update_queued = false;
    return Packet{.hdr = HeaderFor(*it->second, kOpCreditUpdate), .data = {}};
  }
  while (!ready_.empty()) {
    const uint32_t id = ready_.front();
    ready_.pop_front();
    auto it = conns_.find(id);
    if (it == conns_.end()) continue;
    Connection& c = *it->second;
    std::optional<Packet> p = ReadData(c, max_data);
    if (!conns_.contains(id)) {
      if (p) return p;
      continue;
    }
    // Round robin: a connection with more to read goes to the back; one drained (or out of
    // the guest's credit) is waited for again.
    if (p && p->hdr.op == kOpRw && c.PeerFree() > 0) {
      ready_.push_back(id);
    } else {
      c.in_ready = false;
      UpdateInterest(c);
    }
    if (p) return p;
  }
  return std::nullopt;
}

// ---- the guest side -----------------------------------------------------------------------

void Muxer::OnBadGuestPacket(const Header& hdr, const absl::Status& why) {
  counters_.bad_packets++;
  spdlog::debug("vsock: {}: {}", Describe(hdr), why.message());
  if (Connection* c = Find({hdr.dst_port, hdr.src_port}))
    return Kill(*c, std::string(why.message()));
  if (hdr.op != kOpRst) QueueReply(hdr, kOpRst);
}

void Muxer::OnGuestPacket(const Header& hdr, absl::Span<const uint8_t> data) {
  counters_.tx_packets++;
  if (hdr.src_cid != guest_cid_ || hdr.dst_cid != kHostCid || hdr.type != kTypeStream) {
    return OnBadGuestPacket(hdr,
                            absl::InvalidArgumentError("not a stream from the guest to the host"));
  }
  Connection* c = Find({hdr.dst_port, hdr.src_port});
  if (c == nullptr) {
    if (hdr.op == kOpRequest) return ConnectToHost(hdr);
    if (hdr.op != kOpRst) {
      counters_.bad_packets++;
      QueueReply(hdr, kOpRst);  // §5.10.6.4: no such connection
    }
    return;
  }
  c->PeerCredit(hdr.buf_alloc, hdr.fwd_cnt);
  if (c->state() == Connection::State::kConnecting) {
    if (hdr.op == kOpResponse) {
      c->set_state(Connection::State::kEstablished);
      c->set_deadline(absl::InfiniteFuture());
      const std::string ok = absl::StrFormat("OK %u\n", c->local_port());
      // A new socket's buffer is empty: the line goes whole, or the host process is gone.
      if (send(c->fd(), ok.data(), ok.size(), MSG_DONTWAIT | MSG_NOSIGNAL) !=
          static_cast<ssize_t>(ok.size())) {
        return Kill(*c, "the host process went away before the guest answered");
      }
      return UpdateInterest(*c);
    }
    if (hdr.op == kOpRst) return Remove(*c);  // refused: the host socket closes without OK
    return Kill(*c, "expected RESPONSE to the connection request");
  }
  OnEstablishedPacket(*c, hdr, data);
}

void Muxer::OnEstablishedPacket(Connection& c, const Header& hdr, absl::Span<const uint8_t> data) {
  switch (hdr.op) {
    case kOpRw:
      if (c.guest_shutdown() & kShutdownSend) return Kill(c, "data after the guest's shutdown");
      return OnGuestData(c, data);
    case kOpCreditUpdate:
      return UpdateInterest(c);  // its credit is in; reading may go on
    case kOpCreditRequest:
      QueueCreditUpdate(c);
      return UpdateInterest(c);
    case kOpShutdown:
      return OnGuestShutdown(c, hdr.flags & kShutdownBoth);
    case kOpRst:
      // An abortive close: what the host socket takes now of the guest's last bytes is
      // written, the rest dropped, and the socket closes.
      if (c.pending_bytes() > 0) {
        (void)!send(c.fd(), c.pending().data() + c.pending_offset(), c.pending_bytes(),
                    MSG_DONTWAIT | MSG_NOSIGNAL);
      }
      return Remove(c);
    default:  // REQUEST or RESPONSE on a connected stream, or no operation we know
      counters_.bad_packets++;
      return Kill(c, absl::StrCat("unexpected ", Describe(hdr)));
  }
}

void Muxer::OnGuestData(Connection& c, absl::Span<const uint8_t> data) {
  const uint32_t len = static_cast<uint32_t>(data.size());
  if (!c.FitsCredit(len)) {
    counters_.bad_packets++;
    return Kill(c, absl::StrFormat("the guest overran its credit (%u bytes more)", len));
  }
  c.Received(len);
  counters_.tx_bytes += len;
  c.pending().insert(c.pending().end(), data.begin(), data.end());
  const uint32_t id = c.id();
  Flush(c);  // may end the connection
  if (conns_.contains(id)) UpdateInterest(c);
}

void Muxer::OnGuestShutdown(Connection& c, uint32_t flags) {
  c.GuestShutdown(flags);
  // What the guest sent before goes to the host first; then AfterFlush acts on the shutdown.
  if (c.pending_bytes() == 0) {
    const uint32_t id = c.id();
    AfterFlush(c);
    if (!conns_.contains(id)) return;
  }
  UpdateInterest(c);
}

// The guest's REQUEST to host port P: a connection to "<uds_path>_P".
void Muxer::ConnectToHost(const Header& hdr) {
  auto refuse = [&](const std::string& why) {
    spdlog::debug("vsock: guest connection to host port {} refused: {}", hdr.dst_port, why);
    QueueReply(hdr, kOpRst);
  };
  if (conns_.size() >= kMaxConnections) return refuse("too many connections");
  const std::string path = absl::StrFormat("%s_%u", uds_path_, hdr.dst_port);
  auto addr = UnixAddress(path);
  if (!addr.ok()) return refuse(std::string(addr.status().message()));
  UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return refuse(absl::StrCat("socket: ", strerror(errno)));
  // A Unix stream connect completes at once or fails (EAGAIN: the listener's backlog is full).
  if (connect(fd.get(), reinterpret_cast<const sockaddr*>(&*addr), sizeof(*addr)) != 0) {
    return refuse(absl::StrCat(path, ": ", strerror(errno)));
  }
  Connection* c = Add(std::move(fd), Connection::State::kEstablished);
  c->set_ports(hdr.dst_port, hdr.src_port);
  c->PeerCredit(hdr.buf_alloc, hdr.fwd_cnt);
  by_ports_[{hdr.dst_port, hdr.src_port}] = c->id();
  counters_.conns_added++;
  QueueControl(kOpResponse, hdr.dst_port, hdr.src_port);
  UpdateInterest(*c);
}

}  // namespace edgevisor::vsock
