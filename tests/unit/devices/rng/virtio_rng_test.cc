// The virtio-rng device below the process level: activated on a queue in test RAM with a fake
// transport (no KVM). The test plays the driver: it posts chains, rings the notify eventfd and
// reads the used ring.
#include "src/devices/rng/virtio_rng.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <vector>

#include "src/base/event_fd.h"
#include "tests/unit/devices/virtio/virtio_test_util.h"

namespace edgevisor::rng {
namespace {

using namespace virtio::testing;  // NOLINT(build/namespaces)
using virtio::Bit;
using virtio::kDescFlagNext;
using virtio::kDescFlagWrite;
using virtio::UsedElem;

constexpr uint16_t kQueueSize = 16;

class VirtioRngTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (UnderQemuUser()) GTEST_SKIP() << "the device thread hangs under qemu-user";
    auto notify = EventFd::Create("notify");
    ASSERT_TRUE(notify.ok());
    notify_ = std::move(*notify);
  }
  void Create(const EntropyConfig& cfg = {}) {
    auto dev = VirtioRng::Create(cfg, "rng-test");
    ASSERT_TRUE(dev.ok()) << dev.status();
    dev_ = std::move(*dev);
    virtio::ActivateArgs args;
    args.mem = &mem_;
    args.features = Bit(virtio::kFeatureVersion1);
    args.queues = {{256, kQueueSize, true, kDescTable, kAvail, kUsed}};
    args.notify_fds = {notify_.fd()};
    args.interrupt = &irq_;
    ASSERT_TRUE(dev_->Activate(std::move(args)).ok());
  }
  // One buffer of LEN bytes at ADDR, device-writable unless READABLE, as descriptor D.
  void Post(uint16_t d, uint64_t addr, uint32_t len, bool readable = false) {
    PutDesc(mem_, kDescTable, d, addr, len, readable ? 0 : kDescFlagWrite, 0);
    Publish(d);
  }
  void Publish(uint16_t head) {
    ASSERT_TRUE(mem_.WriteObj<uint16_t>(kAvail + 4 + 2 * (avail_ % kQueueSize), head).ok());
    ASSERT_TRUE(mem_.WriteObj<uint16_t>(kAvail + 2, ++avail_).ok());
    notify_.Signal();
  }
  uint16_t UsedIdx() { return *mem_.ReadObj<uint16_t>(kUsed + 2); }
  UsedElem Used(uint16_t i) { return *mem_.ReadObj<UsedElem>(kUsed + 4 + 8 * (i % kQueueSize)); }
  bool WaitUsed(uint16_t n) {
    return irq_.WaitFor([&] { return UsedIdx() >= n; });
  }
  std::vector<uint8_t> Bytes(uint64_t addr, size_t len) {
    std::vector<uint8_t> v(len);
    EXPECT_TRUE(mem_.Read(addr, absl::MakeSpan(v)).ok());
    return v;
  }

  GuestMemory mem_ = TestMemory();
  FakeInterrupts irq_;
  EventFd notify_;
  std::unique_ptr<VirtioRng> dev_;
  uint16_t avail_ = 0;
};

TEST_F(VirtioRngTest, FillsWritableBuffersWithRandomBytes) {
  Create();
  Post(0, kData, 4096);
  Post(1, kData + 0x2000, 4096);
  ASSERT_TRUE(WaitUsed(2));
  EXPECT_EQ(Used(0).id, 0u);
  EXPECT_EQ(Used(0).len, 4096u);
  EXPECT_EQ(Used(1).len, 4096u);
  const auto a = Bytes(kData, 4096), b = Bytes(kData + 0x2000, 4096);
  EXPECT_NE(a, b);
  EXPECT_NE(a, std::vector<uint8_t>(4096, 0));
  EXPECT_TRUE(irq_.bits() & virtio::kInterruptUsedBuffer);
  EXPECT_EQ(dev_->counters().bytes.load(), 8192u);
  EXPECT_EQ(dev_->counters().requests.load(), 2u);
}

TEST_F(VirtioRngTest, ALargeBufferIsFilledUpToTheCap) {
  Create();
  Post(0, kData, 2 * VirtioRng::kMaxRequestBytes);
  ASSERT_TRUE(WaitUsed(1));
  EXPECT_EQ(Used(0).len, VirtioRng::kMaxRequestBytes);
  EXPECT_EQ(Bytes(kData + VirtioRng::kMaxRequestBytes, 64), std::vector<uint8_t>(64, 0))
      << "nothing past the cap is written";
}

TEST_F(VirtioRngTest, AChainOfTwoWritableBuffersHasBothFilled) {
  Create();
  PutDesc(mem_, kDescTable, 0, kData, 100, kDescFlagWrite | kDescFlagNext, 1);
  PutDesc(mem_, kDescTable, 1, kData + 0x1000, 200, kDescFlagWrite, 0);
  Publish(0);
  ASSERT_TRUE(WaitUsed(1));
  EXPECT_EQ(Used(0).len, 300u);
  EXPECT_NE(Bytes(kData + 0x1000 + 136, 64), std::vector<uint8_t>(64, 0));
}

TEST_F(VirtioRngTest, ADeviceReadableBufferIsUsedEmpty) {
  Create();
  Post(0, kData, 64, /*readable=*/true);
  Post(1, kData + 0x1000, 64);
  ASSERT_TRUE(WaitUsed(2));
  EXPECT_EQ(Used(0).len, 0u);
  EXPECT_EQ(Bytes(kData, 64), std::vector<uint8_t>(64, 0));
  EXPECT_EQ(Used(1).len, 64u) << "the queue goes on";
  EXPECT_EQ(dev_->counters().bad_requests.load(), 1u);
  EXPECT_FALSE(irq_.needs_reset());
}

TEST_F(VirtioRngTest, ABufferOutsideRamAsksForAReset) {
  Create();
  Post(0, kRamSize - 16, 64);  // runs past the end of RAM
  ASSERT_TRUE(irq_.WaitFor([&] { return irq_.needs_reset(); }));
  EXPECT_EQ(UsedIdx(), 0);
  EXPECT_EQ(dev_->counters().bytes.load(), 0u);
}

TEST_F(VirtioRngTest, ALimitedQueueWaitsForTheTimerInsteadOfDroppingRequests) {
  // 1 request per 100 ms, after a bucket of 2.
  Create({.rate_limiter = {.bandwidth = {},
                           .ops = {.size = 2, .one_time_burst = 0, .refill_time_ms = 200}}});
  const auto t0 = std::chrono::steady_clock::now();
  for (uint16_t i = 0; i < 6; ++i) Post(i, kData + i * 0x1000, 32);
  ASSERT_TRUE(WaitUsed(2));
  ASSERT_TRUE(irq_.WaitFor([&] { return UsedIdx() >= 6; }));
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
          .count();
  EXPECT_GE(ms, 350) << "4 requests past the bucket at 1 per 100 ms";
  EXPECT_LT(ms, 2000);
  for (uint16_t i = 0; i < 6; ++i) {
    EXPECT_EQ(Used(i).id, i) << "in order";
    EXPECT_EQ(Used(i).len, 32u);
  }
  EXPECT_GE(dev_->rate_limiter().throttled(), 4u);
  EXPECT_GE(dev_->counters().timer_events.load(), 4u);
}

TEST_F(VirtioRngTest, QuiesceReportsTheQueuePosition) {
  Create();
  Post(0, kData, 16);
  ASSERT_TRUE(WaitUsed(1));
  auto states = dev_->Quiesce();
  ASSERT_TRUE(states.ok()) << states.status();
  ASSERT_EQ(states->size(), 1u);
  EXPECT_EQ((*states)[0].next_avail, 1);
  EXPECT_EQ((*states)[0].next_used, 1);
}

}  // namespace
}  // namespace edgevisor::rng
