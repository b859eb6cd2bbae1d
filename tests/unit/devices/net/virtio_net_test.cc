// The virtio-net device below the process level: a VirtioNet on a real TAP, in a network
// namespace of the test's own, activated on queues in test RAM with a fake transport (no KVM, no
// vCPU). The test plays the guest's driver on the rings and the host's network on the TAP's
// other side (an AF_PACKET socket bound to the interface).
#include "src/devices/net/virtio_net.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "src/base/event_fd.h"
#include "src/base/fd.h"
#include "src/devices/net/virtio_net_spec.h"
#include "tests/unit/devices/virtio/virtio_test_util.h"

namespace edgevisor::net {
namespace {

using namespace virtio::testing;  // NOLINT(build/namespaces)
using virtio::Bit;
using virtio::kDescFlagNext;
using virtio::kDescFlagWrite;
using virtio::UsedElem;

constexpr uint16_t kQueueSize = 16;
constexpr uint16_t kEtherType = 0x88b5;  // IEEE local experimental: nothing else sends it
constexpr char kTap[] = "evnettest0";
constexpr size_t kHdr = sizeof(virtio_net::NetHdr);
// The two queues' rings (RX: queue 0, TX: queue 1) and buffers in test RAM.
constexpr uint64_t kRing[2][3] = {{0x1000, 0x3000, 0x4000}, {0x5000, 0x7000, 0x8000}};
constexpr uint64_t kRxBuf = 0x20000, kTxBuf = 0x40000, kBufStride = 0x1000;

std::vector<uint8_t> Frame(uint8_t tag, size_t len = 100) {
  std::vector<uint8_t> f(len);
  for (size_t i = 0; i < 6; ++i) f[i] = 0xff;  // broadcast
  const uint8_t src[6] = {0x06, 0xed, 0x9e, 0x00, 0x00, 0x01};
  std::memcpy(&f[6], src, 6);
  f[12] = kEtherType >> 8;
  f[13] = kEtherType & 0xff;
  for (size_t i = 14; i < len; ++i) f[i] = static_cast<uint8_t>(tag + i);
  return f;
}

class VirtioNetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (UnderQemuUser()) GTEST_SKIP() << "the device thread hangs under qemu-user";
    // A private network namespace: the TAP and its traffic stay out of the host's. The device
    // thread, started later from this thread, inherits it.
    if (geteuid() != 0 || access("/dev/net/tun", R_OK | W_OK) != 0) {
      GTEST_SKIP() << "needs root and /dev/net/tun (a TAP in a private network namespace)";
    }
    ASSERT_EQ(unshare(CLONE_NEWNET), 0) << std::strerror(errno);
    // No IPv6 on the TAP: its router solicitations and MLD reports would take RX buffers.
    std::ofstream("/proc/sys/net/ipv6/conf/default/disable_ipv6") << "1";
    NetConfig cfg;
    cfg.id = "unit-net";
    cfg.tap = kTap;
    cfg.mac = {0x06, 0xed, 0x9e, 0x00, 0x00, 0x02};
    auto dev = VirtioNet::Create(cfg, "net-test");
    ASSERT_TRUE(dev.ok()) << dev.status();
    dev_ = std::move(*dev);
    // The host's side: the interface up, and a packet socket on it.
    UniqueFd ctl(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    ifreq ifr{};
    std::strncpy(ifr.ifr_name, kTap, IFNAMSIZ - 1);
    ASSERT_EQ(ioctl(ctl.get(), SIOCGIFFLAGS, &ifr), 0);
    ifr.ifr_flags |= IFF_UP;
    ASSERT_EQ(ioctl(ctl.get(), SIOCSIFFLAGS, &ifr), 0) << std::strerror(errno);
    ifindex_ = static_cast<int>(if_nametoindex(kTap));
    ASSERT_GT(ifindex_, 0);
    host_.Reset(socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(kEtherType)));
    ASSERT_TRUE(host_.valid()) << std::strerror(errno);
    sockaddr_ll sll{};
    sll.sll_family = AF_PACKET;
    sll.sll_protocol = htons(kEtherType);
    sll.sll_ifindex = ifindex_;
    ASSERT_EQ(bind(host_.get(), reinterpret_cast<sockaddr*>(&sll), sizeof(sll)), 0);
    for (auto& n : notify_) {
      auto e = EventFd::Create("notify");
      ASSERT_TRUE(e.ok());
      n = std::move(*e);
    }
  }
  void TearDown() override { dev_.reset(); }

  absl::Status Activate() {
    virtio::ActivateArgs args;
    args.mem = &mem_;
    args.features = Bit(virtio::kFeatureVersion1) | Bit(virtio_net::kFeatureMac);
    for (int q = 0; q < 2; ++q) {
      args.queues.push_back({256, kQueueSize, true, kRing[q][0], kRing[q][1], kRing[q][2]});
      args.notify_fds.push_back(notify_[q].fd());
    }
    args.interrupt = &irq_;
    return dev_->Activate(std::move(args));
  }
  // Makes the chain at `head` available on queue q and notifies the device.
  void Publish(int q, uint16_t head) {
    ASSERT_TRUE(mem_.WriteObj<uint16_t>(kRing[q][1] + 4 + 2 * (avail_[q] % kQueueSize), head).ok());
    ASSERT_TRUE(mem_.WriteObj<uint16_t>(kRing[q][1] + 2, ++avail_[q]).ok());
    notify_[q].Signal();
  }
  // A TX chain at descriptors d, d + 1: the 12-byte header, then the frame.
  void PostTx(uint16_t d, const std::vector<uint8_t>& frame) {
    const uint64_t at = kTxBuf + d * kBufStride;
    ASSERT_TRUE(mem_.WriteObj(at, virtio_net::NetHdr{}).ok());
    ASSERT_TRUE(mem_.Write(at + 0x100, frame).ok());
    PutDesc(mem_, kRing[1][0], d, at, kHdr, kDescFlagNext, static_cast<uint16_t>(d + 1));
    PutDesc(mem_, kRing[1][0], static_cast<uint16_t>(d + 1), at + 0x100,
            static_cast<uint32_t>(frame.size()), 0, 0);
    Publish(1, d);
  }
  // One device-writable 2 KiB RX buffer at descriptor d.
  void PostRx(uint16_t d) {
    PutDesc(mem_, kRing[0][0], d, kRxBuf + d * kBufStride, 2048, kDescFlagWrite, 0);
    Publish(0, d);
  }
  uint16_t UsedIdx(int q) { return *mem_.ReadObj<uint16_t>(kRing[q][2] + 2); }
  UsedElem Used(int q, uint16_t i) {
    return *mem_.ReadObj<UsedElem>(kRing[q][2] + 4 + 8 * (i % kQueueSize));
  }
  bool WaitUsed(int q, uint16_t n) {
    return irq_.WaitFor(
        [&] { return UsedIdx(q) >= n && (irq_.bits() & virtio::kInterruptUsedBuffer); });
  }
  // The next frame of ours the host's side receives, or empty after `timeout_ms`.
  std::vector<uint8_t> HostReceive(int timeout_ms = 5000) {
    pollfd p{host_.get(), POLLIN, 0};
    if (poll(&p, 1, timeout_ms) != 1) return {};
    std::vector<uint8_t> f(65536);
    const ssize_t n = recv(host_.get(), f.data(), f.size(), 0);
    f.resize(n > 0 ? static_cast<size_t>(n) : 0);
    return f;
  }
  bool HostSend(const std::vector<uint8_t>& frame) {
    sockaddr_ll to{};
    to.sll_family = AF_PACKET;
    to.sll_ifindex = ifindex_;
    to.sll_halen = 6;
    std::memcpy(to.sll_addr, frame.data(), 6);
    return sendto(host_.get(), frame.data(), frame.size(), 0, reinterpret_cast<sockaddr*>(&to),
                  sizeof(to)) == static_cast<ssize_t>(frame.size());
  }
  // Whether RX buffer d holds `frame` after the header.
  bool RxHolds(uint16_t d, const std::vector<uint8_t>& frame) {
    std::vector<uint8_t> got(frame.size());
    if (!mem_.Read(kRxBuf + d * kBufStride + kHdr, absl::MakeSpan(got)).ok()) return false;
    return got == frame;
  }
  uint64_t Counter(const std::string& name) {
    for (const auto& [k, v] : dev_->Counters()) {
      if (k == name) return v;
    }
    return ~0ull;
  }

  GuestMemory mem_ = TestMemory();
  FakeInterrupts irq_;
  EventFd notify_[2];
  uint16_t avail_[2] = {0, 0};
  std::unique_ptr<VirtioNet> dev_;
  UniqueFd host_;
  int ifindex_ = 0;
};

TEST_F(VirtioNetTest, GuestFrameReachesTheHost) {
  ASSERT_TRUE(Activate().ok());
  const std::vector<uint8_t> frame = Frame(1);
  PostTx(0, frame);
  ASSERT_TRUE(WaitUsed(1, 1));
  EXPECT_EQ(Used(1, 0).id, 0u);
  EXPECT_EQ(HostReceive(), frame);
  EXPECT_EQ(Counter("tx_packets_count"), 1u);
}

TEST_F(VirtioNetTest, HostFrameReachesTheGuestWithItsHeader) {
  ASSERT_TRUE(Activate().ok());
  for (uint16_t d = 0; d < 4; ++d) PostRx(d);
  const std::vector<uint8_t> frame = Frame(2, 300);
  ASSERT_TRUE(HostSend(frame));
  ASSERT_TRUE(WaitUsed(0, 1));
  const UsedElem used = Used(0, 0);
  EXPECT_EQ(used.len, kHdr + frame.size());
  EXPECT_TRUE(RxHolds(static_cast<uint16_t>(used.id), frame));
  EXPECT_EQ(Counter("rx_packets_count"), 1u);
}

TEST_F(VirtioNetTest, FrameWaitsForABufferInsteadOfBeingDropped) {
  ASSERT_TRUE(Activate().ok());
  const std::vector<uint8_t> frame = Frame(3, 200);
  ASSERT_TRUE(HostSend(frame));  // no RX buffer yet
  usleep(100 * 1000);
  EXPECT_EQ(UsedIdx(0), 0);
  PostRx(0);
  ASSERT_TRUE(WaitUsed(0, 1));
  EXPECT_TRUE(RxHolds(static_cast<uint16_t>(Used(0, 0).id), frame));
  EXPECT_EQ(Counter("rx_dropped_count"), 0u);
}

TEST_F(VirtioNetTest, TxDescriptorOutsideRamAsksForAReset) {
  ASSERT_TRUE(Activate().ok());
  PutDesc(mem_, kRing[1][0], 0, kRamSize + 0x1000, 64, 0, 0);  // past the end of guest RAM
  Publish(1, 0);
  EXPECT_TRUE(irq_.WaitFor([&] { return irq_.needs_reset(); }));
  EXPECT_EQ(HostReceive(200), std::vector<uint8_t>{});  // nothing reached the host
  // A reset and a fresh activation, on clean rings, bring the device back.
  dev_->Reset();
  for (int q = 0; q < 2; ++q) {
    ASSERT_TRUE(mem_.Write(kRing[q][1], std::vector<uint8_t>(0x1000, 0)).ok());
    ASSERT_TRUE(mem_.Write(kRing[q][2], std::vector<uint8_t>(0x1000, 0)).ok());
    avail_[q] = 0;
  }
  ASSERT_TRUE(Activate().ok());
  const std::vector<uint8_t> frame = Frame(4);
  PostTx(0, frame);
  ASSERT_TRUE(WaitUsed(1, 1));
  EXPECT_EQ(HostReceive(), frame);
}

}  // namespace
}  // namespace edgevisor::net
