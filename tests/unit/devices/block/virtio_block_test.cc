// The virtio-blk device below the process level: a VirtioBlock on a real file, activated on a
// queue in test RAM with a fake transport (no KVM, no vCPU). The test plays the driver: it
// writes descriptor chains, rings the queue's notify eventfd and reads the used ring.
#include "src/devices/block/virtio_block.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "src/base/event_fd.h"
#include "src/devices/block/virtio_blk_spec.h"
#include "tests/unit/devices/virtio/virtio_test_util.h"

namespace edgevisor::block {
namespace {

using namespace virtio::testing;  // NOLINT(build/namespaces)
using virtio::Bit;
using virtio::Desc;
using virtio::kDescFlagNext;
using virtio::kDescFlagWrite;
using virtio::UsedElem;
using virtio_blk::ReqHeader;

constexpr uint16_t kQueueSize = 16;
constexpr size_t kDiskBytes = 64 * 1024;

struct Case {
  std::string name;
  DriveConfig::Engine engine;
};

class VirtioBlockTest : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    if (UnderQemuUser()) GTEST_SKIP() << "the device thread hangs under qemu-user";
    char path[] = "/tmp/edgevisor-blk-test-XXXXXX";
    const int fd = mkstemp(path);
    ASSERT_GE(fd, 0);
    path_ = path;
    std::vector<uint8_t> disk(kDiskBytes);
    for (size_t i = 0; i < disk.size(); ++i) disk[i] = static_cast<uint8_t>(i / 512);
    ASSERT_EQ(pwrite(fd, disk.data(), disk.size(), 0), static_cast<ssize_t>(disk.size()));
    close(fd);
    DriveConfig cfg;
    cfg.path = path_;
    cfg.id = "unit-disk";
    cfg.engine = GetParam().engine;
    auto dev = VirtioBlock::Create(cfg, "blk-test");
    if (!dev.ok() && cfg.engine == DriveConfig::Engine::kUring) GTEST_SKIP() << dev.status();
    ASSERT_TRUE(dev.ok()) << dev.status();
    dev_ = std::move(*dev);
    auto notify = EventFd::Create("notify");
    ASSERT_TRUE(notify.ok());
    notify_ = std::move(*notify);
  }
  void TearDown() override {
    dev_.reset();
    if (!path_.empty()) unlink(path_.c_str());
  }

  // RESUME: the queue's saved position (empty: from 0).
  absl::Status Activate(std::vector<virtio::QueueState> resume = {}) {
    virtio::ActivateArgs args;
    args.mem = &mem_;
    args.features = Bit(virtio::kFeatureVersion1);
    args.queues = {{256, kQueueSize, true, kDescTable, kAvail, kUsed}};
    args.notify_fds = {notify_.fd()};
    args.interrupt = &irq_;
    args.resume = std::move(resume);
    return dev_->Activate(std::move(args));
  }

  // Request N (0..4): descriptors 3N..3N+2 (header, data, status) and its buffers at
  // kData + N * 0x2000. Published in the avail ring, and the queue notified.
  void Post(uint16_t n, uint32_t type, uint64_t sector, uint32_t len) {
    const uint16_t d = static_cast<uint16_t>(3 * n);
    const uint64_t base = kData + n * 0x2000;
    ASSERT_TRUE(mem_.WriteObj(base, ReqHeader{type, 0, sector}).ok());
    ASSERT_TRUE(mem_.WriteObj<uint8_t>(Status(n), 0xff).ok());
    const uint16_t data_flags = kDescFlagNext | (type == virtio_blk::kTypeIn ? kDescFlagWrite : 0);
    PutDesc(mem_, kDescTable, d, base, sizeof(ReqHeader), kDescFlagNext, d + 1);
    PutDesc(mem_, kDescTable, d + 1, Data(n), len, data_flags, d + 2);
    PutDesc(mem_, kDescTable, d + 2, Status(n), 1, kDescFlagWrite, 0);
    PublishHead(d);
  }
  void PublishHead(uint16_t head) {
    ASSERT_TRUE(mem_.WriteObj<uint16_t>(kAvail + 4 + 2 * (avail_ % kQueueSize), head).ok());
    ASSERT_TRUE(mem_.WriteObj<uint16_t>(kAvail + 2, ++avail_).ok());
    notify_.Signal();
  }
  uint64_t Data(uint16_t n) const { return kData + n * 0x2000 + 0x100; }
  uint64_t Status(uint16_t n) const { return kData + n * 0x2000 + 0x1f00; }
  uint16_t UsedIdx() { return *mem_.ReadObj<uint16_t>(kUsed + 2); }
  UsedElem Used(uint16_t i) { return *mem_.ReadObj<UsedElem>(kUsed + 4 + 8 * (i % kQueueSize)); }
  // Waits until the device has used N chains in all and said so with an interrupt.
  bool WaitUsed(uint16_t n) {
    return irq_.WaitFor(
        [&] { return UsedIdx() >= n && (irq_.bits() & virtio::kInterruptUsedBuffer); });
  }

  GuestMemory mem_ = TestMemory();
  FakeInterrupts irq_;
  EventFd notify_;
  std::string path_;
  std::unique_ptr<VirtioBlock> dev_;
  uint16_t avail_ = 0;
};

TEST_P(VirtioBlockTest, WritesAndReadsThroughTheRing) {
  ASSERT_TRUE(Activate().ok());
  std::vector<uint8_t> pattern(1024, 0x5a);
  ASSERT_TRUE(mem_.Write(Data(0), pattern).ok());
  Post(0, virtio_blk::kTypeOut, 3, 1024);  // sectors 3 and 4
  ASSERT_TRUE(WaitUsed(1));
  EXPECT_EQ(*mem_.ReadObj<uint8_t>(Status(0)), virtio_blk::kStatusOk);
  EXPECT_EQ(Used(0).id, 0u);

  Post(1, virtio_blk::kTypeIn, 2, 2048);  // sectors 2..5: old, new, new, old
  ASSERT_TRUE(WaitUsed(2));
  EXPECT_EQ(*mem_.ReadObj<uint8_t>(Status(1)), virtio_blk::kStatusOk);
  EXPECT_EQ(Used(1).id, 3u);
  EXPECT_EQ(Used(1).len, 2048u + 1);  // the data and the status byte
  std::vector<uint8_t> got(2048);
  ASSERT_TRUE(mem_.Read(Data(1), absl::MakeSpan(got)).ok());
  EXPECT_EQ(got[0], 2);
  EXPECT_EQ(got[512], 0x5a);
  EXPECT_EQ(got[1535], 0x5a);
  EXPECT_EQ(got[1536], 5);

  // On the host: the file has the write.
  dev_->Reset();
  const int fd = open(path_.c_str(), O_RDONLY);
  uint8_t b = 0;
  ASSERT_EQ(pread(fd, &b, 1, 3 * 512), 1);
  close(fd);
  EXPECT_EQ(b, 0x5a);
  EXPECT_EQ(dev_->counters().write_ops.load(), 1u);
  EXPECT_EQ(dev_->counters().read_bytes.load(), 2048u);
}

TEST_P(VirtioBlockTest, ReadPastTheEndIsAnIoErrorAndTheQueueGoesOn) {
  ASSERT_TRUE(Activate().ok());
  Post(0, virtio_blk::kTypeIn, kDiskBytes / 512, 512);
  ASSERT_TRUE(WaitUsed(1));
  EXPECT_EQ(*mem_.ReadObj<uint8_t>(Status(0)), virtio_blk::kStatusIoErr);
  EXPECT_FALSE(irq_.needs_reset());
  Post(1, virtio_blk::kTypeIn, 0, 512);
  ASSERT_TRUE(WaitUsed(2));
  EXPECT_EQ(*mem_.ReadObj<uint8_t>(Status(1)), virtio_blk::kStatusOk);
}

TEST_P(VirtioBlockTest, AHeadOutsideTheQueueAsksForAResetAndReactivationWorks) {
  ASSERT_TRUE(Activate().ok());
  PublishHead(kQueueSize);  // not a descriptor of this queue
  ASSERT_TRUE(irq_.WaitFor([&] { return irq_.needs_reset(); }));
  EXPECT_EQ(UsedIdx(), 0);
  EXPECT_GE(dev_->counters().bad_requests.load(), 1u);

  // The driver resets the device and sets the queue up afresh.
  dev_->Reset();
  ASSERT_TRUE(mem_.WriteObj<uint16_t>(kAvail + 2, 0).ok());
  ASSERT_TRUE(mem_.WriteObj<uint16_t>(kUsed + 2, 0).ok());
  avail_ = 0;
  ASSERT_TRUE(Activate().ok());
  Post(0, virtio_blk::kTypeIn, 1, 512);
  ASSERT_TRUE(WaitUsed(1));
  EXPECT_EQ(*mem_.ReadObj<uint8_t>(Status(0)), virtio_blk::kStatusOk);
  EXPECT_EQ(*mem_.ReadObj<uint8_t>(Data(0)), 1);
}

TEST_P(VirtioBlockTest, AChainWithoutAStatusByteAsksForAReset) {
  ASSERT_TRUE(Activate().ok());
  ASSERT_TRUE(mem_.WriteObj(kData, ReqHeader{virtio_blk::kTypeIn, 0, 0}).ok());
  PutDesc(mem_, kDescTable, 0, kData, sizeof(ReqHeader), 0, 0);  // the header alone
  PublishHead(0);
  ASSERT_TRUE(irq_.WaitFor([&] { return irq_.needs_reset(); }));
}

TEST_P(VirtioBlockTest, AQueueOutsideGuestRamIsRefusedAtActivation) {
  virtio::ActivateArgs args;
  args.mem = &mem_;
  args.features = Bit(virtio::kFeatureVersion1);
  args.queues = {{256, kQueueSize, true, kDescTable, kAvail, kRamSize - 8}};
  args.notify_fds = {notify_.fd()};
  args.interrupt = &irq_;
  absl::Status s = dev_->Activate(std::move(args));
  EXPECT_FALSE(s.ok());
  EXPECT_NE(std::string(s.message()).find("queue 0"), std::string::npos) << s;
}

TEST_P(VirtioBlockTest, ResetWithRequestsQueuedStopsCleanly) {
  ASSERT_TRUE(Activate().ok());
  for (uint16_t n = 0; n < 5; ++n) Post(n, virtio_blk::kTypeIn, n, 512);
  dev_->Reset();  // whatever was in flight is waited for; nothing touches the ring afterwards
  const uint16_t used = UsedIdx();
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(UsedIdx(), used);
  EXPECT_LE(used, 5);
}

INSTANTIATE_TEST_SUITE_P(Engines, VirtioBlockTest,
                         ::testing::Values(Case{"sync", DriveConfig::Engine::kSync},
                                           Case{"uring", DriveConfig::Engine::kUring}),
                         [](const auto& info) { return info.param.name; });

// ---- quiesce (snapshots): requests in flight complete before the device stops ----------------

// An engine whose operations stay in flight until the test releases them: what a slow disk
// does, on demand. Releasing completes each one successfully (reads leave the buffer as is).
class HeldEngine : public IoEngine {
 public:
  struct Op {
    const HeldEngine* engine;  // the engine that took it (each device activation makes new ones)
    uint64_t tag;
    int64_t bytes;  // what a successful completion reports
    bool reaped = false;
  };
  struct Shared {
    std::mutex mu;
    std::vector<Op> submitted;  // every op, in submission order
    size_t released = 0;        // how many of them the test let complete
    int event_fd = -1;
  };
  explicit HeldEngine(std::shared_ptr<Shared> s) : s_(std::move(s)) {}
  Kind kind() const override { return Kind::kSync; }
  int event_fd() const override { return s_->event_fd; }
  absl::Status Submit(const IoOp& op) override {
    int64_t bytes = 0;
    for (int i = 0; i < op.iovcnt; ++i) bytes += static_cast<int64_t>(op.iov[i].iov_len);
    std::lock_guard lock(s_->mu);
    s_->submitted.push_back({this, op.tag, bytes});
    return absl::OkStatus();
  }
  void Kick() override {}
  void Reap(const std::function<void(uint64_t, int64_t)>& done) override {
    DrainEventFd(s_->event_fd);
    std::vector<Op> ready;
    {
      std::lock_guard lock(s_->mu);
      for (size_t i = 0; i < s_->released; ++i) {
        Op& op = s_->submitted[i];
        if (op.engine != this || op.reaped) continue;
        op.reaped = true;
        ready.push_back(op);
      }
    }
    for (const Op& op : ready) done(op.tag, op.bytes);
  }

 private:
  std::shared_ptr<Shared> s_;
};

class QuiesceTest : public VirtioBlockTest {
 protected:
  void SetUp() override {
    VirtioBlockTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    auto fd = EventFd::Create("held completions");
    ASSERT_TRUE(fd.ok());
    completions_ = std::move(*fd);
    held_->event_fd = completions_.fd();
    dev_->SetEngineFactory([held = held_](int) -> absl::StatusOr<std::unique_ptr<IoEngine>> {
      return std::make_unique<HeldEngine>(held);
    });
  }
  size_t Submitted() {
    std::lock_guard lock(held_->mu);
    return held_->submitted.size();
  }
  void ReleaseAll() {
    {
      std::lock_guard lock(held_->mu);
      held_->released = held_->submitted.size();
    }
    completions_.Signal();
  }
  std::shared_ptr<HeldEngine::Shared> held_ = std::make_shared<HeldEngine::Shared>();
  EventFd completions_;
};

TEST_P(QuiesceTest, RequestsInFlightCompleteBeforeTheDeviceStops) {
  ASSERT_TRUE(Activate().ok());
  for (uint16_t n = 0; n < 3; ++n) Post(n, virtio_blk::kTypeIn, n, 512);
  ASSERT_TRUE(irq_.WaitFor([&] { return Submitted() == 3; }));
  auto quiesced = std::async(std::launch::async, [&] { return dev_->Quiesce(); });
  // The device waits for its host I/O: nothing used yet, and the quiesce has not returned.
  EXPECT_EQ(quiesced.wait_for(std::chrono::milliseconds(100)), std::future_status::timeout);
  EXPECT_EQ(UsedIdx(), 0);
  ReleaseAll();
  auto pos = quiesced.get();
  ASSERT_TRUE(pos.ok()) << pos.status();
  ASSERT_EQ(pos->size(), 1u);
  EXPECT_EQ((*pos)[0].next_avail, 3);
  EXPECT_EQ((*pos)[0].next_used, 3);
  EXPECT_EQ(UsedIdx(), 3) << "each request completed into the ring before the stop";
  for (uint16_t n = 0; n < 3; ++n) {
    EXPECT_EQ(*mem_.ReadObj<uint8_t>(Status(n)), virtio_blk::kStatusOk) << n;
  }
  EXPECT_TRUE(irq_.bits() & virtio::kInterruptUsedBuffer);
}

TEST_P(QuiesceTest, ResumingServesWhatTheDriverQueuedMeanwhile) {
  ASSERT_TRUE(Activate().ok());
  Post(0, virtio_blk::kTypeIn, 0, 512);
  ASSERT_TRUE(irq_.WaitFor([&] { return Submitted() == 1; }));
  ReleaseAll();
  ASSERT_TRUE(WaitUsed(1));
  auto pos = dev_->Quiesce();
  ASSERT_TRUE(pos.ok()) << pos.status();
  // The driver queues one more while the device is stopped; its notification is lost (as with
  // a snapshot restored in another process).
  Post(1, virtio_blk::kTypeIn, 1, 512);
  notify_.Drain();
  ASSERT_TRUE(Activate(*pos).ok());
  ASSERT_TRUE(irq_.WaitFor([&] { return Submitted() == 2; })) << "served without a notify";
  ReleaseAll();
  ASSERT_TRUE(irq_.WaitFor([&] { return UsedIdx() == 2; }));
  EXPECT_EQ(Used(1).id, 3u) << "the second request's head, in the next used slot";
}

INSTANTIATE_TEST_SUITE_P(HeldEngine, QuiesceTest,
                         ::testing::Values(Case{"held", DriveConfig::Engine::kSync}),
                         [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace edgevisor::block
