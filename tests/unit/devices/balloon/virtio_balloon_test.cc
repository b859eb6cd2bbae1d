// The virtio-balloon device below the process level: activated on queues in test RAM with a fake
// transport (no KVM). The test plays the guest's driver: it posts page numbers and statistics,
// rings the notify eventfds and reads the used rings and guest memory.
#include "src/devices/balloon/virtio_balloon.h"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "src/base/event_fd.h"
#include "tests/unit/devices/virtio/virtio_test_util.h"

namespace edgevisor::balloon {
namespace {

using namespace virtio::testing;  // NOLINT(build/namespaces)
using virtio::Bit;
using virtio::kDescFlagWrite;
using virtio::UsedElem;

constexpr uint16_t kQueueSize = 16;
// Each queue's rings: queue q's descriptor table, avail and used rings 0x1000 apart from q's base.
constexpr uint64_t kQueueBase = 0x20000;
constexpr uint64_t kPages = 0x40000;  // the pages the tests give away (inside the 1 MiB test RAM)
constexpr uint64_t kList = 0x30000;   // the page numbers / statistics buffer
uint64_t Desc(int q) { return kQueueBase + q * 0x4000; }
uint64_t Avail(int q) { return Desc(q) + 0x1000; }
uint64_t Used(int q) { return Desc(q) + 0x2000; }

class VirtioBalloonTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (UnderQemuUser()) GTEST_SKIP() << "the device thread hangs under qemu-user";
    for (auto& n : notify_) {
      auto e = EventFd::Create("notify");
      ASSERT_TRUE(e.ok());
      n = std::move(*e);
    }
  }
  // Creates and activates a balloon with CFG (3 queues with statistics, 4 with reporting).
  void Create(BalloonConfig cfg, bool activate = true) {
    auto dev = VirtioBalloon::Create(cfg, "balloon-test");
    ASSERT_TRUE(dev.ok()) << dev.status();
    dev_ = std::move(*dev);
    if (activate) Activate();
  }
  void Activate(std::vector<virtio::QueueState> resume = {}) {
    virtio::ActivateArgs args;
    args.mem = &mem_;
    args.features = dev_->features();
    for (int q = 0; q < dev_->num_queues(); ++q) {
      args.queues.push_back({256, kQueueSize, true, Desc(q), Avail(q), Used(q)});
      args.notify_fds.push_back(notify_[q].fd());
    }
    args.interrupt = &irq_;
    args.resume = std::move(resume);
    ASSERT_TRUE(dev_->Activate(std::move(args)).ok());
  }
  // Puts one buffer (descriptor D of queue Q) on Q's avail ring and notifies.
  void Post(int q, uint16_t d, uint64_t addr, uint32_t len, bool writable = false) {
    PutDesc(mem_, Desc(q), d, addr, len, writable ? kDescFlagWrite : 0, 0);
    ASSERT_TRUE(mem_.WriteObj<uint16_t>(Avail(q) + 4 + 2 * (avail_[q] % kQueueSize), d).ok());
    ASSERT_TRUE(mem_.WriteObj<uint16_t>(Avail(q) + 2, ++avail_[q]).ok());
    notify_[q].Signal();
  }
  // The page numbers PFNS as an inflate (q 0) or deflate (q 1) buffer.
  void PostPfns(int q, uint16_t d, const std::vector<uint32_t>& pfns) {
    ASSERT_TRUE(mem_.Write(kList + d * 0x400,
                           absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(pfns.data()),
                                               pfns.size() * 4))
                    .ok());
    Post(q, d, kList + d * 0x400, static_cast<uint32_t>(pfns.size() * 4));
  }
  uint16_t UsedIdx(int q) { return *mem_.ReadObj<uint16_t>(Used(q) + 2); }
  bool WaitUsed(int q, uint16_t n) {
    return irq_.WaitFor([&] { return UsedIdx(q) >= n; });
  }
  void FillPage(uint64_t gpa, uint8_t v) {
    std::vector<uint8_t> b(4096, v);
    ASSERT_TRUE(mem_.Write(gpa, absl::MakeConstSpan(b)).ok());
  }
  uint8_t ByteAt(uint64_t gpa) { return *mem_.ReadObj<uint8_t>(gpa); }
  uint32_t ConfigWord(uint64_t off) {
    uint32_t v = 0;
    dev_->ReadConfig(off, absl::MakeSpan(reinterpret_cast<uint8_t*>(&v), 4));
    return v;
  }
  // A statistics buffer: {tag, value} pairs, packed.
  void PostStats(uint16_t d, const std::vector<std::pair<uint16_t, uint64_t>>& stats,
                 size_t extra = 0) {
    std::vector<uint8_t> b;
    for (auto [tag, value] : stats) {
      b.insert(b.end(), reinterpret_cast<uint8_t*>(&tag), reinterpret_cast<uint8_t*>(&tag) + 2);
      b.insert(b.end(), reinterpret_cast<uint8_t*>(&value), reinterpret_cast<uint8_t*>(&value) + 8);
    }
    b.resize(b.size() + extra, 0xee);
    ASSERT_TRUE(mem_.Write(kList + 0x3000, absl::MakeConstSpan(b)).ok());
    Post(2, d, kList + 0x3000, static_cast<uint32_t>(b.size()));
  }

  GuestMemory mem_ = TestMemory();
  FakeInterrupts irq_;
  EventFd notify_[4];
  uint16_t avail_[4] = {};
  std::unique_ptr<VirtioBalloon> dev_;
};

TEST_F(VirtioBalloonTest, FeaturesQueuesAndConfigFollowTheConfiguration) {
  Create({.amount_mib = 3,
          .deflate_on_oom = false,
          .stats_polling_interval_s = 0,
          .free_page_reporting = false},
         /*activate=*/false);
  EXPECT_EQ(dev_->num_queues(), 2);
  EXPECT_FALSE(dev_->features() & Bit(kFeatureStatsVq));
  EXPECT_FALSE(dev_->features() & Bit(kFeatureDeflateOnOom));
  EXPECT_EQ(ConfigWord(0), 3u * 256) << "num_pages: 3 MiB in 4 KiB pages";
  Create({.amount_mib = 0,
          .deflate_on_oom = true,
          .stats_polling_interval_s = 1,
          .free_page_reporting = true},
         /*activate=*/false);
  EXPECT_EQ(dev_->num_queues(), 4);
  EXPECT_TRUE(dev_->features() & Bit(kFeatureStatsVq));
  EXPECT_TRUE(dev_->features() & Bit(kFeatureDeflateOnOom));
  EXPECT_TRUE(dev_->features() & Bit(kFeatureReporting));
  const uint32_t actual = 77;
  dev_->WriteConfig(4, absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(&actual), 4));
  EXPECT_EQ(ConfigWord(4), 77u);
  dev_->WriteConfig(0, absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(&actual), 4));
  EXPECT_EQ(ConfigWord(0), 0u) << "the driver cannot write num_pages";
  EXPECT_EQ(dev_->Stats().actual_pages, 77u);
}

TEST_F(VirtioBalloonTest, InflateReleasesThePagesAndSkipsNumbersOutsideRam) {
  Create({});
  for (int i = 0; i < 4; ++i) FillPage(kPages + i * 4096, 0xa5);
  const uint32_t first = kPages >> 12;
  // Three consecutive pages (one release), one outside RAM, one far outside, the fourth page.
  PostPfns(0, 0, {first, first + 1, first + 2, 0x100000, 0xffffffffu, first + 3});
  ASSERT_TRUE(WaitUsed(0, 1));
  for (int i = 0; i < 4; ++i) EXPECT_EQ(ByteAt(kPages + i * 4096 + 100), 0) << "page " << i;
  EXPECT_EQ(dev_->counters().inflated_pages.load(), 4u);
  EXPECT_EQ(dev_->counters().bad_pfns.load(), 2u);
  EXPECT_EQ(dev_->counters().inflates.load(), 1u);
  EXPECT_TRUE(irq_.bits() & virtio::kInterruptUsedBuffer);
  EXPECT_FALSE(irq_.needs_reset());
}

TEST_F(VirtioBalloonTest, ARunThatLeavesRamIsReleasedUpToItsEnd) {
  Create({});
  const uint64_t last = kRamSize - 4096;
  FillPage(last, 0x11);
  PostPfns(0, 0, {static_cast<uint32_t>(last >> 12), static_cast<uint32_t>(kRamSize >> 12)});
  ASSERT_TRUE(WaitUsed(0, 1));
  EXPECT_EQ(ByteAt(last), 0);
  EXPECT_EQ(dev_->counters().inflated_pages.load(), 1u);
  EXPECT_EQ(dev_->counters().bad_pfns.load(), 1u);
}

TEST_F(VirtioBalloonTest, AWritableInflateBufferIsNotReadAndDeflateOnlyCounts) {
  Create({});
  FillPage(kPages, 0x77);
  const uint32_t pfn = kPages >> 12;
  ASSERT_TRUE(mem_.WriteObj(kList, pfn).ok());
  Post(0, 0, kList, 4, /*writable=*/true);
  ASSERT_TRUE(WaitUsed(0, 1));
  EXPECT_EQ(ByteAt(kPages), 0x77) << "a device-writable buffer holds no page numbers";
  PostPfns(1, 0, {pfn});
  ASSERT_TRUE(WaitUsed(1, 1));
  EXPECT_EQ(ByteAt(kPages), 0x77) << "deflate touches nothing";
  EXPECT_EQ(dev_->counters().deflates.load(), 1u);
}

TEST_F(VirtioBalloonTest, ABufferOutsideRamAsksForAReset) {
  Create({});
  Post(0, 0, kRamSize + 0x1000, 64);
  ASSERT_TRUE(irq_.WaitFor([&] { return irq_.needs_reset(); }));
  EXPECT_EQ(dev_->counters().event_fails.load(), 1u);
}

TEST_F(VirtioBalloonTest, ANewTargetRaisesAConfigChangeInterruptOnceActive) {
  Create({});
  EXPECT_FALSE(irq_.bits() & virtio::kInterruptConfigChange);
  dev_->SetTargetMib(5);
  EXPECT_EQ(ConfigWord(0), 5u * 256);
  EXPECT_TRUE(irq_.bits() & virtio::kInterruptConfigChange);
  dev_->Reset();
  dev_->SetTargetMib(6);  // no transport to tell: the driver reads it when it probes
  EXPECT_EQ(dev_->Stats().target_pages, 6u * 256);
}

TEST_F(VirtioBalloonTest, StatisticsAreHeldParsedAndAskedForAgain) {
  Create({.amount_mib = 0,
          .deflate_on_oom = false,
          .stats_polling_interval_s = 3600,
          .free_page_reporting = false});
  PostStats(0, {{VIRTIO_BALLOON_S_MEMFREE, 1000}, {VIRTIO_BALLOON_S_MEMTOT, 4000}, {99, 5}});
  ASSERT_TRUE(irq_.WaitFor([&] { return dev_->counters().stats_updates.load() == 1; }));
  BalloonStats s = dev_->Stats();
  EXPECT_EQ(s.values[VIRTIO_BALLOON_S_MEMFREE], 1000u);
  EXPECT_EQ(s.values[VIRTIO_BALLOON_S_MEMTOT], 4000u);
  EXPECT_FALSE(s.values[VIRTIO_BALLOON_S_SWAP_IN].has_value());
  EXPECT_EQ(UsedIdx(2), 0) << "the device keeps the buffer until it wants new figures";
  // A new interval asks at once.
  ASSERT_TRUE(dev_->SetStatsInterval(3600).ok());
  ASSERT_TRUE(WaitUsed(2, 1));
  PostStats(1, {{VIRTIO_BALLOON_S_MEMFREE, 2000}}, /*extra=*/3);
  ASSERT_TRUE(irq_.WaitFor([&] { return dev_->counters().stats_updates.load() == 2; }));
  EXPECT_EQ(dev_->Stats().values[VIRTIO_BALLOON_S_MEMFREE], 2000u);
  EXPECT_EQ(dev_->counters().stats_update_fails.load(), 1u) << "3 bytes past the last entry";
  EXPECT_FALSE(dev_->SetStatsInterval(0).ok()) << "statistics cannot be turned off";
}

TEST_F(VirtioBalloonTest, StatisticsIntervalCannotBeSetWithoutThem) {
  Create({});
  absl::Status s = dev_->SetStatsInterval(5);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("stats_polling_interval_s"), std::string::npos) << s;
}

TEST_F(VirtioBalloonTest, TheIntervalTimerAsksForStatistics) {
  Create({.amount_mib = 0,
          .deflate_on_oom = false,
          .stats_polling_interval_s = 1,
          .free_page_reporting = false});
  PostStats(0, {{VIRTIO_BALLOON_S_AVAIL, 1}});
  ASSERT_TRUE(WaitUsed(2, 1)) << "handed back within the 5 s wait, a second after it came";
}

TEST_F(VirtioBalloonTest, AQuiesceGivesTheHeldStatisticsBufferBack) {
  Create({.amount_mib = 0,
          .deflate_on_oom = false,
          .stats_polling_interval_s = 3600,
          .free_page_reporting = false});
  PostStats(0, {{VIRTIO_BALLOON_S_AVAIL, 1}});
  ASSERT_TRUE(irq_.WaitFor([&] { return dev_->counters().stats_updates.load() == 1; }));
  auto pos = dev_->Quiesce();
  ASSERT_TRUE(pos.ok()) << pos.status();
  ASSERT_EQ(pos->size(), 3u);
  EXPECT_EQ((*pos)[2].next_avail, 0) << "the held buffer goes back into the ring";
  EXPECT_EQ((*pos)[2].next_used, 0);
  // A restored worker takes it again.
  Activate(*pos);
  ASSERT_TRUE(irq_.WaitFor([&] { return dev_->counters().stats_updates.load() == 2; }));
  ASSERT_TRUE(dev_->SetStatsInterval(1).ok());
  ASSERT_TRUE(WaitUsed(2, 1));
}

TEST_F(VirtioBalloonTest, FreePageReportingReleasesTheReportedRanges) {
  Create({.amount_mib = 0,
          .deflate_on_oom = false,
          .stats_polling_interval_s = 0,
          .free_page_reporting = true});
  FillPage(kPages, 0x33);
  FillPage(kPages + 4096, 0x33);
  // Without statistics, the reporting queue is queue 2 (§5.5.2: the absent one takes no index).
  Post(2, 0, kPages, 2 * 4096, /*writable=*/true);
  ASSERT_TRUE(WaitUsed(2, 1));
  EXPECT_EQ(ByteAt(kPages), 0);
  EXPECT_EQ(ByteAt(kPages + 4096), 0);
  EXPECT_EQ(dev_->counters().reports.load(), 1u);
  EXPECT_EQ(dev_->counters().reported_bytes.load(), 2u * 4096);
}

TEST_F(VirtioBalloonTest, DeviceStateRoundTripsAndHostileStateIsRefused) {
  Create({}, /*activate=*/false);
  const uint32_t actual = 42;
  dev_->WriteConfig(4, absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(&actual), 4));
  nlohmann::json saved = dev_->SaveDeviceState();
  Create({}, /*activate=*/false);
  ASSERT_TRUE(dev_->LoadDeviceState(saved).ok());
  EXPECT_EQ(ConfigWord(4), 42u);
  EXPECT_FALSE(dev_->LoadDeviceState(nlohmann::json{{"actual_pages", -1}}).ok());
  EXPECT_FALSE(dev_->LoadDeviceState(nlohmann::json{{"actual_pages", 1ull << 32}}).ok());
  EXPECT_FALSE(dev_->LoadDeviceState(nlohmann::json{{"actual_pages", 1}, {"x", 1}}).ok());
  EXPECT_FALSE(dev_->LoadDeviceState(nlohmann::json(nullptr)).ok());
}

}  // namespace
}  // namespace edgevisor::balloon
