// virtio-mmio transport conformance (virtio 1.2 §4.2.2, §4.2.3, §2.1, §3.1), without KVM: the
// transport's registers driven as a driver would, in front of a fake device that records what
// the transport asks of it.
#include "src/devices/virtio/mmio_transport.h"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "src/base/event_fd.h"
#include "src/devices/virtio/virtio_spec.h"
#include "tests/unit/devices/virtio/virtio_test_util.h"

namespace edgevisor::virtio {
namespace {

using namespace testing;  // NOLINT(build/namespaces)

// §4.2.2 register offsets.
constexpr uint64_t kMagic = 0x000, kVersion = 0x004, kDeviceId = 0x008, kVendorId = 0x00c,
                   kDeviceFeatures = 0x010, kDeviceFeaturesSel = 0x014, kDriverFeatures = 0x020,
                   kDriverFeaturesSel = 0x024, kQueueSel = 0x030, kQueueNumMax = 0x034,
                   kQueueNum = 0x038, kQueueReady = 0x044, kQueueNotify = 0x050,
                   kInterruptStatus = 0x060, kInterruptAck = 0x064, kStatus = 0x070,
                   kQueueDescLow = 0x080, kQueueDescHigh = 0x084, kQueueDriverLow = 0x090,
                   kQueueDeviceLow = 0x0a0, kConfigGeneration = 0x0fc, kConfig = 0x100;
constexpr uint64_t kOffered = Bit(kFeatureVersion1) | Bit(kFeatureRingEventIdx) | Bit(3);

struct FakeState {
  int activations = 0;
  int resets = 0;
  ActivateArgs last;
  std::vector<uint8_t> config = {1, 2, 3, 4, 5, 6, 7, 8};
  bool fail_activation = false;
};

class FakeDevice : public VirtioDevice {
 public:
  explicit FakeDevice(FakeState* s) : s_(s) {}
  uint32_t device_id() const override { return 42; }
  uint64_t features() const override { return kOffered; }
  uint16_t num_queues() const override { return 2; }
  uint16_t queue_max_size() const override { return 64; }
  void ReadConfig(uint64_t offset, absl::Span<uint8_t> data) const override {
    for (size_t i = 0; i < data.size(); ++i) {
      data[i] = offset + i < s_->config.size() ? s_->config[offset + i] : 0;
    }
  }
  void WriteConfig(uint64_t offset, absl::Span<const uint8_t> data) override {
    for (size_t i = 0; i < data.size() && offset + i < s_->config.size(); ++i) {
      s_->config[offset + i] = data[i];
    }
  }
  absl::Status Activate(ActivateArgs args) override {
    if (s_->fail_activation) return absl::InvalidArgumentError("queue 0: misaligned");
    ++s_->activations;
    s_->last = std::move(args);
    return absl::OkStatus();
  }
  void Reset() override { ++s_->resets; }
  std::string counter_group() const override { return "fake"; }
  CounterList Counters() const override { return {}; }

 private:
  FakeState* s_;
};

class MmioTransportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto t = MmioTransport::Create(std::make_unique<FakeDevice>(&dev_), &mem_);
    ASSERT_TRUE(t.ok()) << t.status();
    t_ = std::move(*t);
  }
  uint32_t Rd(uint64_t off) {
    uint32_t v = 0xdeadbeef;
    t_->Read(off, absl::Span<uint8_t>(reinterpret_cast<uint8_t*>(&v), 4));
    return v;
  }
  void Wr(uint64_t off, uint32_t v) {
    t_->Write(off, absl::Span<const uint8_t>(reinterpret_cast<const uint8_t*>(&v), 4));
  }
  // The driver's side of §3.1.1 up to FEATURES_OK with FEATURES; returns the status read back.
  uint32_t Negotiate(uint64_t features) {
    Wr(kStatus, kStatusAcknowledge);
    Wr(kStatus, kStatusAcknowledge | kStatusDriver);
    Wr(kDriverFeaturesSel, 0);
    Wr(kDriverFeatures, static_cast<uint32_t>(features));
    Wr(kDriverFeaturesSel, 1);
    Wr(kDriverFeatures, static_cast<uint32_t>(features >> 32));
    Wr(kStatus, kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk);
    return Rd(kStatus);
  }
  void SetUpQueue(uint32_t sel, uint32_t size, uint64_t desc) {
    Wr(kQueueSel, sel);
    Wr(kQueueNum, size);
    Wr(kQueueDescLow, static_cast<uint32_t>(desc));
    Wr(kQueueDescHigh, static_cast<uint32_t>(desc >> 32));
    Wr(kQueueDriverLow, 0x3000);
    Wr(kQueueDeviceLow, 0x4000);
    Wr(kQueueReady, 1);
  }
  void DriverOk() {
    Wr(kStatus, kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk | kStatusDriverOk);
  }

  GuestMemory mem_ = TestMemory();
  FakeState dev_;
  std::unique_ptr<MmioTransport> t_;
};

TEST_F(MmioTransportTest, IdentifiesItself) {
  EXPECT_EQ(Rd(kMagic), 0x74726976u);  // "virt"
  EXPECT_EQ(Rd(kVersion), 2u);
  EXPECT_EQ(Rd(kDeviceId), 42u);
  EXPECT_NE(Rd(kVendorId), 0u);
}

TEST_F(MmioTransportTest, RegistersNeedAlignedWordAccess) {
  uint8_t b[2] = {0xff, 0xff};
  t_->Read(kMagic, absl::MakeSpan(b));  // 16-bit: reads as zero (§4.2.2.2)
  EXPECT_EQ(b[0], 0);
  EXPECT_EQ(Rd(kMagic + 1), 0u);  // misaligned
  EXPECT_EQ(Rd(0x0f0), 0u);       // a reserved register
  const uint16_t half = 5;
  t_->Write(kQueueSel, absl::Span<const uint8_t>(reinterpret_cast<const uint8_t*>(&half), 2));
  EXPECT_EQ(Rd(kQueueNumMax), 64u);  // the 16-bit write did not select a queue
}

TEST_F(MmioTransportTest, OffersFeaturesThroughTheSelector) {
  Wr(kDeviceFeaturesSel, 0);
  EXPECT_EQ(Rd(kDeviceFeatures), static_cast<uint32_t>(kOffered));
  Wr(kDeviceFeaturesSel, 1);
  EXPECT_EQ(Rd(kDeviceFeatures), static_cast<uint32_t>(kOffered >> 32));
  Wr(kDeviceFeaturesSel, 2);
  EXPECT_EQ(Rd(kDeviceFeatures), 0u);
}

TEST_F(MmioTransportTest, AcceptsASubsetWithVersion1) {
  EXPECT_TRUE(Negotiate(Bit(kFeatureVersion1) | Bit(3)) & kStatusFeaturesOk);
}

TEST_F(MmioTransportTest, RefusesFeaturesNotOffered) {
  EXPECT_FALSE(Negotiate(Bit(kFeatureVersion1) | Bit(5)) & kStatusFeaturesOk);
}

TEST_F(MmioTransportTest, RefusesALegacyDriver) {
  EXPECT_FALSE(Negotiate(Bit(3)) & kStatusFeaturesOk);
}

TEST_F(MmioTransportTest, DriverFeaturesAreFrozenAfterFeaturesOk) {
  ASSERT_TRUE(Negotiate(Bit(kFeatureVersion1)) & kStatusFeaturesOk);
  Wr(kDriverFeaturesSel, 0);
  Wr(kDriverFeatures, static_cast<uint32_t>(Bit(kFeatureRingEventIdx)));
  SetUpQueue(0, 16, 0x1000);
  DriverOk();
  ASSERT_EQ(dev_.activations, 1);
  EXPECT_EQ(dev_.last.features, Bit(kFeatureVersion1));
}

TEST_F(MmioTransportTest, QueueSetupAndItsBounds) {
  Wr(kQueueSel, 1);
  EXPECT_EQ(Rd(kQueueNumMax), 64u);
  Wr(kQueueSel, 2);  // no such queue: reads 0, writes ignored
  EXPECT_EQ(Rd(kQueueNumMax), 0u);
  Wr(kQueueNum, 8);
  Wr(kQueueReady, 1);
  EXPECT_EQ(Rd(kQueueReady), 0u);
  ASSERT_TRUE(Negotiate(Bit(kFeatureVersion1)) & kStatusFeaturesOk);
  SetUpQueue(1, 32, 0x1'2345'6000ull);  // a 64-bit address from its two halves
  DriverOk();
  ASSERT_EQ(dev_.activations, 1);
  ASSERT_EQ(dev_.last.queues.size(), 2u);
  EXPECT_FALSE(dev_.last.queues[0].ready);
  const QueueConfig& q = dev_.last.queues[1];
  EXPECT_TRUE(q.ready);
  EXPECT_EQ(q.size, 32);
  EXPECT_EQ(q.max_size, 64);
  EXPECT_EQ(q.desc, 0x1'2345'6000ull);
  EXPECT_EQ(q.avail, 0x3000u);
  EXPECT_EQ(q.used, 0x4000u);
  ASSERT_EQ(dev_.last.notify_fds.size(), 2u);
  EXPECT_EQ(dev_.last.interrupt, t_.get());
  // Frozen after DRIVER_OK (§4.2.3): a change now does not reach the running device.
  Wr(kQueueSel, 1);
  Wr(kQueueNum, 8);
  EXPECT_EQ(dev_.last.queues[1].size, 32);
  Wr(kQueueSel, 0);
  EXPECT_EQ(Rd(kQueueReady), 0u);
}

TEST_F(MmioTransportTest, NoActivationWithoutFeaturesOk) {
  Wr(kStatus, kStatusAcknowledge | kStatusDriver);
  Wr(kStatus, kStatusAcknowledge | kStatusDriver | kStatusDriverOk);
  EXPECT_EQ(dev_.activations, 0);
  ASSERT_FALSE(Negotiate(Bit(5)) & kStatusFeaturesOk);  // refused features: still none
  DriverOk();
  EXPECT_EQ(dev_.activations, 0);
}

TEST_F(MmioTransportTest, AFailedActivationAsksForAReset) {
  dev_.fail_activation = true;
  ASSERT_TRUE(Negotiate(Bit(kFeatureVersion1)) & kStatusFeaturesOk);
  DriverOk();
  EXPECT_TRUE(Rd(kStatus) & kStatusNeedsReset);
}

TEST_F(MmioTransportTest, ResetStopsTheDeviceAndClearsEverything) {
  ASSERT_TRUE(Negotiate(Bit(kFeatureVersion1)) & kStatusFeaturesOk);
  SetUpQueue(0, 16, 0x1000);
  DriverOk();
  t_->Signal(kInterruptUsedBuffer);
  t_->NeedsReset();
  const int resets = dev_.resets;
  Wr(kStatus, 0);
  EXPECT_EQ(dev_.resets, resets + 1);
  EXPECT_EQ(Rd(kStatus), 0u);
  EXPECT_EQ(Rd(kInterruptStatus), 0u);
  Wr(kQueueSel, 0);
  EXPECT_EQ(Rd(kQueueReady), 0u);
  // And it can be brought up again.
  ASSERT_TRUE(Negotiate(Bit(kFeatureVersion1)) & kStatusFeaturesOk);
  SetUpQueue(0, 16, 0x1000);
  DriverOk();
  EXPECT_EQ(dev_.activations, 2);
}

TEST_F(MmioTransportTest, InterruptsAreRaisedAndAcknowledged) {
  const int irq = t_->irq_fd();
  EXPECT_EQ(DrainEventFd(irq), 0u);
  t_->Signal(kInterruptUsedBuffer);
  EXPECT_EQ(DrainEventFd(irq), 1u);
  EXPECT_EQ(Rd(kInterruptStatus), kInterruptUsedBuffer);
  Wr(kInterruptAck, kInterruptUsedBuffer);
  EXPECT_EQ(Rd(kInterruptStatus), 0u);
}

TEST_F(MmioTransportTest, AConfigChangeMovesTheGeneration) {
  const uint32_t g = Rd(kConfigGeneration);
  t_->Signal(kInterruptUsedBuffer);
  EXPECT_EQ(Rd(kConfigGeneration), g);
  t_->Signal(kInterruptConfigChange);
  EXPECT_NE(Rd(kConfigGeneration), g);
  EXPECT_TRUE(Rd(kInterruptStatus) & kInterruptConfigChange);
}

TEST_F(MmioTransportTest, NeedsResetSetsTheStatusBitAndInterrupts) {
  ASSERT_TRUE(Negotiate(Bit(kFeatureVersion1)) & kStatusFeaturesOk);
  t_->NeedsReset();
  EXPECT_TRUE(Rd(kStatus) & kStatusNeedsReset);
  EXPECT_TRUE(Rd(kInterruptStatus) & kInterruptConfigChange);
  // The bit is the device's: a driver cannot set or clear it by writing the status.
  Wr(kStatus, kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk);
  EXPECT_TRUE(Rd(kStatus) & kStatusNeedsReset);
}

TEST_F(MmioTransportTest, ConfigSpaceGoesToTheDevice) {
  uint8_t b[4] = {};
  t_->Read(kConfig + 2, absl::MakeSpan(b));
  EXPECT_EQ(b[0], 3);
  EXPECT_EQ(b[3], 6);
  t_->Read(kConfig + 6, absl::MakeSpan(b));  // past the device's config: zeros
  EXPECT_EQ(b[1], 8);
  EXPECT_EQ(b[2], 0);
  const uint8_t w[1] = {0x99};
  t_->Write(kConfig + 1, absl::MakeConstSpan(w));
  EXPECT_EQ(dev_.config[1], 0x99);
}

TEST_F(MmioTransportTest, QueueNotifyWithoutIoeventfdSignalsTheQueue) {
  Wr(kQueueNotify, 1);
  EXPECT_EQ(DrainEventFd(t_->notify_fds()[1].get()), 1u);
  EXPECT_EQ(DrainEventFd(t_->notify_fds()[0].get()), 0u);
  Wr(kQueueNotify, 7);  // no such queue: nothing
  EXPECT_EQ(DrainEventFd(t_->notify_fds()[0].get()), 0u);
}

}  // namespace
}  // namespace edgevisor::virtio
