// The vsock muxer with real Unix sockets and no virtqueues: the test plays the guest (it hands
// packets to OnGuestPacket and takes what NextRx gives) and the host processes (sockets on
// uds_path and "<uds_path>_<port>").
#include "src/devices/vsock/muxer.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"

namespace edgevisor::vsock {
namespace {

constexpr uint64_t kCid = 7;

UniqueFd UnixSocket() { return UniqueFd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)); }

sockaddr_un Address(const std::string& path) {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strncpy(a.sun_path, path.c_str(), sizeof(a.sun_path) - 1);
  return a;
}

UniqueFd ConnectTo(const std::string& path) {
  UniqueFd fd = UnixSocket();
  sockaddr_un a = Address(path);
  EXPECT_EQ(connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0) << strerror(errno);
  return fd;
}

UniqueFd Listen(const std::string& path) {
  UniqueFd fd = UnixSocket();
  sockaddr_un a = Address(path);
  EXPECT_EQ(bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0) << strerror(errno);
  EXPECT_EQ(listen(fd.get(), 16), 0);
  return fd;
}

// Reads what is there within TIMEOUT_MS ("" on EOF, "<timeout>" when nothing came).
std::string ReadSome(int fd, int timeout_ms = 2000) {
  pollfd p{.fd = fd, .events = POLLIN, .revents = 0};
  if (poll(&p, 1, timeout_ms) != 1) return "<timeout>";
  char buf[65536];
  const ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
  return n <= 0 ? std::string() : std::string(buf, static_cast<size_t>(n));
}

class MuxerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/vsock-test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    uds_ = dir_ + "/v.sock";
    auto m = Muxer::Create(kCid, uds_, &counters_);
    ASSERT_TRUE(m.ok()) << m.status();
    mux_ = std::move(*m);
  }
  void TearDown() override {
    mux_.reset();
    (void)!system(("rm -rf " + dir_).c_str());
  }

  // Runs the muxer's host side until PRED holds (or ROUNDS times 10 ms pass).
  bool PumpUntil(const std::function<bool()>& pred, int rounds = 300) {
    for (int i = 0; i < rounds; ++i) {
      if (pred()) return true;
      pollfd p{.fd = mux_->fd(), .events = POLLIN, .revents = 0};
      if (poll(&p, 1, 10) == 1) mux_->ProcessHostEvents();
    }
    return pred();
  }
  // The next packet for the guest, pumping the host side for it; nullopt after 3 s.
  std::optional<Packet> NextRx(uint32_t max_data = 4096) {
    std::optional<Packet> p;
    PumpUntil([&] { return (p = mux_->NextRx(max_data)).has_value(); });
    return p;
  }
  Header FromGuest(uint16_t op, uint32_t guest_port, uint32_t host_port, uint32_t len = 0) {
    return Header{.src_cid = kCid,
                  .dst_cid = kHostCid,
                  .src_port = guest_port,
                  .dst_port = host_port,
                  .len = len,
                  .type = kTypeStream,
                  .op = op,
                  .flags = 0,
                  .buf_alloc = guest_buf_alloc_,
                  .fwd_cnt = guest_fwd_cnt_};
  }
  void Send(uint16_t op, uint32_t guest_port, uint32_t host_port, const std::string& data = "",
            uint32_t flags = 0) {
    Header h = FromGuest(op, guest_port, host_port, static_cast<uint32_t>(data.size()));
    h.flags = flags;
    mux_->OnGuestPacket(
        h, absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(data.data()), data.size()));
  }
  // A host process connected to guest port 5000 through uds_path; returns its socket and the
  // host port the muxer gave it.
  std::pair<UniqueFd, uint32_t> HostConnect(uint32_t guest_port = 5000) {
    UniqueFd host = ConnectTo(uds_);
    const std::string line = absl::StrFormat("CONNECT %u\n", guest_port);
    EXPECT_EQ(write(host.get(), line.data(), line.size()), static_cast<ssize_t>(line.size()));
    std::optional<Packet> req = NextRx();
    EXPECT_TRUE(req.has_value());
    if (!req) return {std::move(host), 0};
    EXPECT_EQ(req->hdr.op, kOpRequest);
    EXPECT_EQ(req->hdr.dst_port, guest_port);
    EXPECT_EQ(req->hdr.dst_cid, kCid);
    EXPECT_EQ(req->hdr.src_cid, kHostCid);
    EXPECT_GE(req->hdr.src_port, Muxer::kFirstLocalPort);
    Send(kOpResponse, guest_port, req->hdr.src_port);
    EXPECT_EQ(ReadSome(host.get()), absl::StrFormat("OK %u\n", req->hdr.src_port));
    return {std::move(host), req->hdr.src_port};
  }

  std::string dir_, uds_;
  VsockCounters counters_;
  std::unique_ptr<Muxer> mux_;
  uint32_t guest_buf_alloc_ = 256 * 1024;
  uint32_t guest_fwd_cnt_ = 0;
};

TEST_F(MuxerTest, AnExistingSocketPathIsRefusedByName) {
  VsockCounters c;
  auto again = Muxer::Create(kCid, uds_, &c);
  ASSERT_FALSE(again.ok());
  EXPECT_NE(again.status().message().find("already exists"), std::string::npos) << again.status();
  auto too_long = Muxer::Create(kCid, dir_ + "/" + std::string(120, 'x'), &c);
  ASSERT_FALSE(too_long.ok());
  EXPECT_NE(too_long.status().message().find("uds_path"), std::string::npos);
}

TEST_F(MuxerTest, AHostConnectionCarriesDataBothWays) {
  auto [host, port] = HostConnect();
  ASSERT_NE(port, 0u);
  ASSERT_EQ(write(host.get(), "ping", 4), 4);
  std::optional<Packet> rw = NextRx();
  ASSERT_TRUE(rw.has_value());
  EXPECT_EQ(rw->hdr.op, kOpRw);
  EXPECT_EQ(rw->hdr.src_port, port);
  EXPECT_EQ(rw->hdr.dst_port, 5000u);
  EXPECT_EQ(std::string(rw->data.begin(), rw->data.end()), "ping");
  EXPECT_EQ(rw->hdr.buf_alloc, kConnBufAlloc);
  Send(kOpRw, 5000, port, "pong");
  EXPECT_EQ(ReadSome(host.get()), "pong");
  EXPECT_EQ(counters_.tx_bytes.load(), 4u);
  EXPECT_EQ(counters_.conns_added.load(), 1u);
}

TEST_F(MuxerTest, AGuestConnectionReachesTheListenerForItsPort) {
  UniqueFd listener = Listen(uds_ + "_6000");
  Send(kOpRequest, 1024, 6000);
  std::optional<Packet> resp = NextRx();
  ASSERT_TRUE(resp.has_value());
  EXPECT_EQ(resp->hdr.op, kOpResponse);
  EXPECT_EQ(resp->hdr.src_port, 6000u);
  EXPECT_EQ(resp->hdr.dst_port, 1024u);
  UniqueFd peer(accept(listener.get(), nullptr, nullptr));
  ASSERT_TRUE(peer.valid());
  Send(kOpRw, 1024, 6000, "hello host");
  EXPECT_EQ(ReadSome(peer.get()), "hello host");
  ASSERT_EQ(write(peer.get(), "hello guest", 11), 11);
  std::optional<Packet> rw = NextRx();
  ASSERT_TRUE(rw.has_value());
  EXPECT_EQ(std::string(rw->data.begin(), rw->data.end()), "hello guest");
  // Nothing listens on 6001: RST.
  Send(kOpRequest, 1025, 6001);
  std::optional<Packet> rst = NextRx();
  ASSERT_TRUE(rst.has_value());
  EXPECT_EQ(rst->hdr.op, kOpRst);
  EXPECT_EQ(rst->hdr.dst_port, 1025u);
}

TEST_F(MuxerTest, HostDataWaitsForTheGuestsCredit) {
  guest_buf_alloc_ = 100;
  auto [host, port] = HostConnect();
  const std::string big(1000, 'x');
  ASSERT_EQ(write(host.get(), big.data(), big.size()), 1000);
  std::optional<Packet> first = NextRx();
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->data.size(), 100u) << "no more than the guest's buf_alloc";
  EXPECT_FALSE(PumpUntil([&] { return mux_->has_rx(); }, 20)) << "nothing until the guest frees";
  guest_fwd_cnt_ = 100;  // it consumed them
  Send(kOpCreditUpdate, 5000, port);
  std::optional<Packet> second = NextRx();
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(second->data.size(), 100u);
}

TEST_F(MuxerTest, TheGuestHearsOfFreedCreditAndAnOverrunIsReset) {
  auto [host, port] = HostConnect();
  // The host reads nothing. A guest that ignores the credit it is told keeps sending: once
  // the socket is full and the device holds kConnBufAlloc bytes, the next packet is an overrun.
  const std::string chunk(kMaxPayload, 'g');
  bool told = false;
  for (int i = 0; i < 32 && counters_.conns_killed.load() == 0; ++i) {
    Send(kOpRw, 5000, port, chunk);
    while (auto p = mux_->NextRx(4096)) told |= p->hdr.op == kOpCreditUpdate;
  }
  EXPECT_TRUE(told) << "the guest heard of the space the host socket took";
  EXPECT_EQ(counters_.conns_killed.load(), 1u) << "the overrun reset the connection";
  std::string got;
  for (std::string s; !(s = ReadSome(host.get(), 500)).empty() && s != "<timeout>";) got += s;
  EXPECT_GT(got.size(), 0u) << "what the socket took before the overrun arrived";
  EXPECT_EQ(ReadSome(host.get()), "") << "the host socket is closed";
}

TEST_F(MuxerTest, AHostThatClosesIsAShutdownAndTheGuestsShutdownEndsIt) {
  auto [host, port] = HostConnect();
  host.Reset();
  std::optional<Packet> s = NextRx();
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->hdr.op, kOpShutdown);
  EXPECT_EQ(s->hdr.flags, kShutdownSend);
  Send(kOpShutdown, 5000, port, "", kShutdownBoth);
  std::optional<Packet> rst = NextRx();
  ASSERT_TRUE(rst.has_value());
  EXPECT_EQ(rst->hdr.op, kOpRst);
  EXPECT_EQ(mux_->connections(), 0u);
  EXPECT_EQ(counters_.conns_removed.load(), 1u);
}

TEST_F(MuxerTest, TheGuestsHalfCloseReachesTheHostAsEof) {
  auto [host, port] = HostConnect();
  Send(kOpRw, 5000, port, "last words");
  Send(kOpShutdown, 5000, port, "", kShutdownSend);
  EXPECT_EQ(ReadSome(host.get()), "last words");
  EXPECT_EQ(ReadSome(host.get()), "") << "EOF after the guest's data";
  ASSERT_EQ(write(host.get(), "reply", 5), 5) << "the other way stays open";
  std::optional<Packet> rw = NextRx();
  ASSERT_TRUE(rw.has_value());
  EXPECT_EQ(std::string(rw->data.begin(), rw->data.end()), "reply");
}

TEST_F(MuxerTest, HostilePacketsGetRstAndNothingElse) {
  auto [host, port] = HostConnect();
  struct Case {
    const char* name;
    Header hdr;
  } cases[] = {
      {"RW for no connection", FromGuest(kOpRw, 999, 12345)},
      {"a SEQPACKET request",
       [&] {
         Header h = FromGuest(kOpRequest, 1000, 6000);
         h.type = 2;
         return h;
       }()},
      {"another guest's CID",
       [&] {
         Header h = FromGuest(kOpRequest, 1001, 6000);
         h.src_cid = kCid + 1;
         return h;
       }()},
      {"a packet to another CID",
       [&] {
         Header h = FromGuest(kOpRequest, 1002, 6000);
         h.dst_cid = 99;
         return h;
       }()},
  };
  for (const Case& c : cases) {
    mux_->OnGuestPacket(c.hdr, {});
    std::optional<Packet> p = NextRx();
    ASSERT_TRUE(p.has_value()) << c.name;
    EXPECT_EQ(p->hdr.op, kOpRst) << c.name;
    EXPECT_EQ(p->hdr.dst_port, c.hdr.src_port) << c.name;
    EXPECT_EQ(p->hdr.dst_cid, kCid) << c.name;
  }
  EXPECT_EQ(mux_->connections(), 1u) << "the good connection lives on";
  // An unknown operation on it ends it.
  Send(99, 5000, port);
  std::optional<Packet> rst = NextRx();
  ASSERT_TRUE(rst.has_value());
  EXPECT_EQ(rst->hdr.op, kOpRst);
  EXPECT_EQ(rst->hdr.src_port, port);
  EXPECT_EQ(ReadSome(host.get()), "");
  EXPECT_EQ(mux_->connections(), 0u);
  // A RST for nothing is not answered.
  Send(kOpRst, 5000, port);
  EXPECT_FALSE(mux_->has_rx());
}

TEST_F(MuxerTest, ABadConnectLineClosesTheHostSocket) {
  for (const char* line : {"HELLO 5000\n", "CONNECT\n", "CONNECT 99999999999\n",
                           "CONNECT 5000 extra words that make the line far too long\n"}) {
    UniqueFd host = ConnectTo(uds_);
    ASSERT_GT(write(host.get(), line, strlen(line)), 0);
    bool closed = false;
    PumpUntil([&] {
      pollfd p{.fd = host.get(), .events = POLLIN, .revents = 0};
      return closed = poll(&p, 1, 0) == 1;
    });
    EXPECT_TRUE(closed) << line;
    EXPECT_EQ(ReadSome(host.get()), "") << line;
  }
  EXPECT_FALSE(mux_->has_rx()) << "the guest heard of none of them";
  EXPECT_EQ(counters_.refused_host_conns.load(), 4u);
}

TEST_F(MuxerTest, AGuestThatNeverAnswersTimesOut) {
  UniqueFd host = ConnectTo(uds_);
  ASSERT_EQ(write(host.get(), "CONNECT 5000\n", 13), 13);
  std::optional<Packet> req = NextRx();
  ASSERT_TRUE(req.has_value());
  // No RESPONSE: after kSetupTimeout, the guest gets RST and the host socket closes.
  std::optional<Packet> rst;
  for (int i = 0; i < 4 && !rst; ++i) rst = NextRx();
  ASSERT_TRUE(rst.has_value());
  EXPECT_EQ(rst->hdr.op, kOpRst);
  EXPECT_EQ(rst->hdr.src_port, req->hdr.src_port);
  EXPECT_EQ(ReadSome(host.get()), "");
}

TEST_F(MuxerTest, ResetAllClosesEveryHostSocket) {
  auto [a, pa] = HostConnect(5000);
  auto [b, pb] = HostConnect(5001);
  mux_->ResetAll();
  EXPECT_EQ(mux_->connections(), 0u);
  EXPECT_EQ(ReadSome(a.get()), "");
  EXPECT_EQ(ReadSome(b.get()), "");
  EXPECT_FALSE(mux_->has_rx());
}

}  // namespace
}  // namespace edgevisor::vsock
