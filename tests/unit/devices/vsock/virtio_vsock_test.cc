// The virtio-vsock device below the process level: activated on queues in test RAM with a fake
// transport (no KVM). The test plays the guest's driver through the three queues and the host
// processes through real Unix sockets.
#include "src/devices/vsock/virtio_vsock.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "src/base/event_fd.h"
#include "src/devices/vsock/packet.h"
#include "tests/unit/devices/virtio/virtio_test_util.h"

namespace edgevisor::vsock {
namespace {

using namespace virtio::testing;  // NOLINT(build/namespaces)
using virtio::kDescFlagWrite;

constexpr uint16_t kQueueSize = 16;
constexpr uint64_t kCid = 42;
constexpr uint64_t kQueueBase = 0x20000;
constexpr uint64_t kRxBufs = 0x40000;  // 16 receive buffers, 0x1100 apart
constexpr uint64_t kTxBufs = 0x60000;  // transmit buffers, 0x1100 apart
constexpr uint64_t kEventBuf = 0x70000;
constexpr uint32_t kRxLen = kHeaderSize + 4096;
uint64_t Desc(int q) { return kQueueBase + q * 0x4000; }
uint64_t Avail(int q) { return Desc(q) + 0x1000; }
uint64_t UsedRing(int q) { return Desc(q) + 0x2000; }

class VirtioVsockTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (UnderQemuUser()) GTEST_SKIP() << "the device thread hangs under qemu-user";
    for (auto& n : notify_) {
      auto e = EventFd::Create("notify");
      ASSERT_TRUE(e.ok());
      n = std::move(*e);
    }
    char tmpl[] = "/tmp/vsock-dev.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    auto dev = VirtioVsock::Create({.vsock_id = "v", .guest_cid = kCid, .uds_path = dir_ + "/v"},
                                   "vsock-test");
    ASSERT_TRUE(dev.ok()) << dev.status();
    dev_ = std::move(*dev);
  }
  void TearDown() override {
    dev_.reset();
    (void)!system(("rm -rf " + dir_).c_str());
  }
  void Activate(std::vector<virtio::QueueState> resume = {}) {
    virtio::ActivateArgs args;
    args.mem = &mem_;
    args.features = dev_->features();
    for (int q = 0; q < 3; ++q) {
      args.queues.push_back({256, kQueueSize, true, Desc(q), Avail(q), UsedRing(q)});
      args.notify_fds.push_back(notify_[q].fd());
    }
    args.interrupt = &irq_;
    args.resume = std::move(resume);
    ASSERT_TRUE(dev_->Activate(std::move(args)).ok());
  }
  void Post(int q, uint16_t d, uint64_t addr, uint32_t len, bool writable) {
    PutDesc(mem_, Desc(q), d, addr, len, writable ? kDescFlagWrite : 0, 0);
    ASSERT_TRUE(mem_.WriteObj<uint16_t>(Avail(q) + 4 + 2 * (avail_[q] % kQueueSize), d).ok());
    ASSERT_TRUE(mem_.WriteObj<uint16_t>(Avail(q) + 2, ++avail_[q]).ok());
    notify_[q].Signal();
  }
  void PostRx(int n) {
    for (int i = 0; i < n; ++i, ++rx_posted_) {
      const uint16_t d = rx_posted_ % kQueueSize;
      Post(kRxQueue, d, kRxBufs + d * 0x1100, kRxLen, true);
    }
  }
  // One packet on the TX queue: HDR (its len set to DATA's size unless LEN_OVERRIDE) and DATA.
  void SendTx(Header hdr, const std::string& data = "", int64_t len_override = -1) {
    hdr.len = len_override >= 0 ? static_cast<uint32_t>(len_override) : data.size();
    std::vector<uint8_t> b(kHeaderSize + data.size());
    EncodeHeader(hdr, absl::MakeSpan(b));
    std::memcpy(b.data() + kHeaderSize, data.data(), data.size());
    SendRawTx(b);
  }
  void SendRawTx(const std::vector<uint8_t>& bytes) {
    const uint16_t d = tx_posted_++ % kQueueSize;
    ASSERT_TRUE(mem_.Write(kTxBufs + d * 0x1100, absl::MakeConstSpan(bytes)).ok());
    Post(kTxQueue, d, kTxBufs + d * 0x1100, static_cast<uint32_t>(bytes.size()), false);
  }
  Header FromGuest(uint16_t op, uint32_t src_port, uint32_t dst_port) {
    return Header{.src_cid = kCid,
                  .dst_cid = kHostCid,
                  .src_port = src_port,
                  .dst_port = dst_port,
                  .len = 0,
                  .type = kTypeStream,
                  .op = op,
                  .flags = 0,
                  .buf_alloc = 65536,
                  .fwd_cnt = 0};
  }
  uint16_t UsedIdx(int q) { return *mem_.ReadObj<uint16_t>(UsedRing(q) + 2); }
  // The next packet the device put in the RX queue (waits for it); nullopt after 5 s.
  std::optional<Packet> NextRx() {
    if (!irq_.WaitFor([&] { return UsedIdx(kRxQueue) > rx_seen_; })) return std::nullopt;
    const uint64_t elem = UsedRing(kRxQueue) + 4 + 8 * (rx_seen_++ % kQueueSize);
    const uint32_t id = *mem_.ReadObj<uint32_t>(elem);
    const uint32_t len = *mem_.ReadObj<uint32_t>(elem + 4);
    std::vector<uint8_t> b(len);
    EXPECT_TRUE(mem_.Read(kRxBufs + id * 0x1100, absl::MakeSpan(b)).ok());
    std::optional<Header> h = ParseHeader(b);
    if (!h) return std::nullopt;
    return Packet{.hdr = *h, .data = std::vector<uint8_t>(b.begin() + kHeaderSize, b.end())};
  }

  GuestMemory mem_ = TestMemory();
  FakeInterrupts irq_;
  EventFd notify_[3];
  uint16_t avail_[3] = {};
  uint16_t rx_posted_ = 0, tx_posted_ = 0, rx_seen_ = 0;
  std::string dir_;
  std::unique_ptr<VirtioVsock> dev_;
};

TEST_F(VirtioVsockTest, ConfigSpaceHoldsTheGuestCid) {
  uint64_t cid = 0;
  dev_->ReadConfig(0, absl::MakeSpan(reinterpret_cast<uint8_t*>(&cid), 8));
  EXPECT_EQ(cid, kCid);
  EXPECT_EQ(dev_->device_id(), 19u);
  EXPECT_EQ(dev_->num_queues(), 3);
  auto bad = VirtioVsock::Create({.vsock_id = "", .guest_cid = 2, .uds_path = dir_ + "/w"}, "x");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("guest_cid"), std::string::npos);
}

TEST_F(VirtioVsockTest, AGuestConnectionCarriesDataThroughTheQueues) {
  UniqueFd listener(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  const std::string path = dir_ + "/v_6000";
  std::strncpy(a.sun_path, path.c_str(), sizeof(a.sun_path) - 1);
  ASSERT_EQ(bind(listener.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  ASSERT_EQ(listen(listener.get(), 4), 0);
  Activate();
  PostRx(8);
  SendTx(FromGuest(kOpRequest, 1234, 6000));
  std::optional<Packet> resp = NextRx();
  ASSERT_TRUE(resp.has_value());
  EXPECT_EQ(resp->hdr.op, kOpResponse);
  EXPECT_EQ(resp->hdr.dst_cid, kCid);
  EXPECT_EQ(resp->hdr.dst_port, 1234u);
  UniqueFd peer(accept(listener.get(), nullptr, nullptr));
  ASSERT_TRUE(peer.valid());
  SendTx(FromGuest(kOpRw, 1234, 6000), "to the host");
  char buf[64] = {};
  pollfd p{.fd = peer.get(), .events = POLLIN, .revents = 0};
  ASSERT_EQ(poll(&p, 1, 5000), 1);
  ASSERT_EQ(read(peer.get(), buf, sizeof(buf)), 11);
  EXPECT_STREQ(buf, "to the host");
  ASSERT_EQ(write(peer.get(), "to the guest", 12), 12);
  std::optional<Packet> rw = NextRx();
  ASSERT_TRUE(rw.has_value());
  EXPECT_EQ(rw->hdr.op, kOpRw);
  EXPECT_EQ(std::string(rw->data.begin(), rw->data.end()), "to the guest");
  EXPECT_EQ(dev_->counters().tx_bytes.load(), 11u);
  EXPECT_EQ(dev_->counters().rx_bytes.load(), 12u);
}

TEST_F(VirtioVsockTest, MalformedTxPacketsAreAnsweredOrDroppedAndTheDeviceGoesOn) {
  Activate();
  PostRx(8);
  // A chain shorter than a header: nothing to answer, used and dropped.
  SendRawTx(std::vector<uint8_t>(20, 0xab));
  ASSERT_TRUE(irq_.WaitFor([&] { return UsedIdx(kTxQueue) == 1; }));
  // A length past the chain's end, and one past the 64 KiB limit: RST.
  SendTx(FromGuest(kOpRw, 1, 7), "sixteen bytes!!!", 100);
  std::optional<Packet> rst = NextRx();
  ASSERT_TRUE(rst.has_value());
  EXPECT_EQ(rst->hdr.op, kOpRst);
  EXPECT_EQ(rst->hdr.dst_port, 1u);
  SendTx(FromGuest(kOpRw, 2, 7), "", kMaxPayload + 1);
  rst = NextRx();
  ASSERT_TRUE(rst.has_value());
  EXPECT_EQ(rst->hdr.dst_port, 2u);
  // A REQUEST to a port nobody listens on: RST. The device still answers.
  SendTx(FromGuest(kOpRequest, 3, 6001));
  rst = NextRx();
  ASSERT_TRUE(rst.has_value());
  EXPECT_EQ(rst->hdr.op, kOpRst);
  EXPECT_EQ(rst->hdr.dst_port, 3u);
  EXPECT_EQ(dev_->counters().bad_packets.load(), 3u);
  EXPECT_FALSE(irq_.needs_reset());
}

TEST_F(VirtioVsockTest, ARestoredDeviceSendsATransportReset) {
  EXPECT_FALSE(dev_->LoadDeviceState({{"guest_cid", kCid + 1}}).ok()) << "another CID";
  EXPECT_FALSE(dev_->LoadDeviceState({{"guest_cid", kCid}, {"extra", 1}}).ok());
  ASSERT_TRUE(dev_->LoadDeviceState(dev_->SaveDeviceState()).ok());
  Activate();
  Post(kEventQueue, 0, kEventBuf, 4, true);
  ASSERT_TRUE(irq_.WaitFor([&] { return UsedIdx(kEventQueue) == 1; }));
  EXPECT_EQ(*mem_.ReadObj<uint32_t>(UsedRing(kEventQueue) + 8), 4u) << "used length";
  EXPECT_EQ(*mem_.ReadObj<uint32_t>(kEventBuf), kEventTransportReset);
  // Only once.
  Post(kEventQueue, 1, kEventBuf + 16, 4, true);
  usleep(50'000);
  EXPECT_EQ(UsedIdx(kEventQueue), 1);
  EXPECT_EQ(dev_->Counters().back().second, 1u) << "transport_reset_events";
}

TEST_F(VirtioVsockTest, AQuiesceKeepsTheConnectionsAndAResetDropsThem) {
  Activate();
  PostRx(8);
  UniqueFd host(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strncpy(a.sun_path, (dir_ + "/v").c_str(), sizeof(a.sun_path) - 1);
  ASSERT_EQ(connect(host.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  ASSERT_EQ(write(host.get(), "CONNECT 80\n", 11), 11);
  std::optional<Packet> req = NextRx();
  ASSERT_TRUE(req.has_value());
  EXPECT_EQ(req->hdr.op, kOpRequest);
  auto positions = dev_->Quiesce();
  ASSERT_TRUE(positions.ok()) << positions.status();
  Activate(*positions);
  SendTx(FromGuest(kOpResponse, 80, req->hdr.src_port));
  char buf[32] = {};
  pollfd p{.fd = host.get(), .events = POLLIN, .revents = 0};
  ASSERT_EQ(poll(&p, 1, 5000), 1);
  ASSERT_GT(read(host.get(), buf, sizeof(buf)), 0);
  EXPECT_EQ(std::string(buf), "OK " + std::to_string(req->hdr.src_port) + "\n");
  dev_->Reset();
  ASSERT_EQ(poll(&p, 1, 5000), 1);
  EXPECT_EQ(read(host.get(), buf, sizeof(buf)), 0) << "closed by the reset";
}

}  // namespace
}  // namespace edgevisor::vsock
