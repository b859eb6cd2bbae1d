// The virtio-mmio transport's snapshot state (src/devices/virtio/mmio_state.cc): a saved
// transport loads into a fresh one, an active one activates its device at the saved positions,
// and a malformed state is refused, naming the field, before any of it is used.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <string>
#include <vector>

#include "src/base/event_fd.h"
#include "src/devices/virtio/mmio_transport.h"
#include "src/devices/virtio/virtio_spec.h"
#include "tests/unit/devices/virtio/virtio_test_util.h"

namespace edgevisor::virtio {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

// §4.2.2 register offsets.
constexpr uint64_t kDeviceFeatures = 0x010, kDeviceFeaturesSel = 0x014, kDriverFeatures = 0x020,
                   kDriverFeaturesSel = 0x024, kQueueSel = 0x030, kQueueNum = 0x038,
                   kQueueReady = 0x044, kInterruptStatus = 0x060, kStatus = 0x070,
                   kQueueDescLow = 0x080, kQueueDriverLow = 0x090, kQueueDeviceLow = 0x0a0;
constexpr uint64_t kOffered = Bit(kFeatureVersion1) | Bit(kFeatureRingEventIdx) | Bit(3);
constexpr uint32_t kFeaturesOk = kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk;
constexpr uint32_t kDriverOk = kFeaturesOk | kStatusDriverOk;

struct Activations {
  int count = 0;
  ActivateArgs last;
};

// Device type 42 with two queues of at most 64 entries; records its activations.
class FakeDevice : public VirtioDevice {
 public:
  explicit FakeDevice(Activations* a) : a_(a) {}
  uint32_t device_id() const override { return 42; }
  uint64_t features() const override { return kOffered; }
  uint16_t num_queues() const override { return 2; }
  uint16_t queue_max_size() const override { return 64; }
  void ReadConfig(uint64_t, absl::Span<uint8_t> data) const override {
    std::fill(data.begin(), data.end(), 0);
  }
  void WriteConfig(uint64_t, absl::Span<const uint8_t>) override {}
  absl::Status Activate(ActivateArgs args) override {
    ++a_->count;
    a_->last = std::move(args);
    return absl::OkStatus();
  }
  void Reset() override {}
  std::string counter_group() const override { return "fake"; }
  CounterList Counters() const override { return {}; }

 private:
  Activations* a_;
};

class MmioStateTest : public ::testing::Test {
 protected:
  std::unique_ptr<MmioTransport> Fresh(Activations* a) {
    auto t = MmioTransport::Create(std::make_unique<FakeDevice>(a), &mem_);
    EXPECT_TRUE(t.ok()) << t.status();
    return t.ok() ? std::move(*t) : nullptr;
  }
  static uint32_t Rd(MmioTransport& t, uint64_t off) {
    uint32_t v = 0xdeadbeef;
    t.Read(off, absl::Span<uint8_t>(reinterpret_cast<uint8_t*>(&v), 4));
    return v;
  }
  static void Wr(MmioTransport& t, uint64_t off, uint32_t v) {
    t.Write(off, absl::Span<const uint8_t>(reinterpret_cast<const uint8_t*>(&v), 4));
  }
  // A transport that a driver has taken up to FEATURES_OK, with queue 0 set up and ready (size
  // 32), queue 1 selected and the high feature words selected: what SaveState sees between the
  // driver's setup steps.
  Json InactiveState() {
    Activations a;
    auto t = Fresh(&a);
    Wr(*t, kStatus, kStatusAcknowledge);
    Wr(*t, kStatus, kStatusAcknowledge | kStatusDriver);
    Wr(*t, kDriverFeaturesSel, 0);
    Wr(*t, kDriverFeatures, static_cast<uint32_t>(kOffered));
    Wr(*t, kDriverFeaturesSel, 1);
    Wr(*t, kDriverFeatures, static_cast<uint32_t>(kOffered >> 32));
    Wr(*t, kStatus, kFeaturesOk);
    Wr(*t, kQueueSel, 0);
    Wr(*t, kQueueNum, 32);
    Wr(*t, kQueueDescLow, testing::kDescTable);
    Wr(*t, kQueueDriverLow, testing::kAvail);
    Wr(*t, kQueueDeviceLow, testing::kUsed);
    Wr(*t, kQueueReady, 1);
    Wr(*t, kQueueSel, 1);
    Wr(*t, kDeviceFeaturesSel, 1);
    auto s = t->SaveState();
    EXPECT_TRUE(s.ok()) << s.status();
    EXPECT_EQ(a.count, 0);
    return s.ok() ? *s : Json();
  }
  // The state of a transport whose driver said DRIVER_OK, with queue positions.
  Json ActiveState() {
    Json j = InactiveState();
    j["status"] = kDriverOk;
    j["active"] = true;
    j["interrupt_status"] = 1u;
    j["queues"][0]["next_avail"] = 7u;
    j["queues"][0]["next_used"] = 6u;
    j["queues"][0]["signalled_used"] = 5u;
    j["queues"][0]["notify_suppressed"] = true;
    return j;
  }

  GuestMemory mem_ = testing::TestMemory();
};

TEST_F(MmioStateTest, InactiveStateLoadsIntoAFreshTransport) {
  const Json saved = InactiveState();
  EXPECT_EQ(saved["device_id"], 42);
  EXPECT_EQ(saved["active"], false);
  Activations a;
  auto t = Fresh(&a);
  absl::Status s = t->LoadState(saved);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(a.count, 0) << "not active: nothing to start";
  auto again = t->SaveState();
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(*again, saved);
  EXPECT_EQ(Rd(*t, kStatus), kFeaturesOk);
  EXPECT_EQ(Rd(*t, kDeviceFeatures), static_cast<uint32_t>(kOffered >> 32)) << "selector 1";
  EXPECT_EQ(Rd(*t, kQueueReady), 0u) << "queue 1 is selected";
  Wr(*t, kQueueSel, 0);
  EXPECT_EQ(Rd(*t, kQueueReady), 1u);
  // The driver goes on where it stopped: DRIVER_OK starts the device with the loaded queue.
  Wr(*t, kStatus, kDriverOk);
  ASSERT_EQ(a.count, 1);
  EXPECT_EQ(a.last.features, kOffered);
  ASSERT_EQ(a.last.queues.size(), 2u);
  EXPECT_EQ(a.last.queues[0].size, 32);
  EXPECT_TRUE(a.last.queues[0].ready);
  EXPECT_EQ(a.last.queues[0].desc, testing::kDescTable);
  EXPECT_EQ(a.last.queues[0].avail, testing::kAvail);
  EXPECT_EQ(a.last.queues[0].used, testing::kUsed);
  EXPECT_FALSE(a.last.queues[1].ready);
}

TEST_F(MmioStateTest, ActiveStateStartsTheDeviceAtTheSavedPositions) {
  Activations a;
  auto t = Fresh(&a);
  DrainEventFd(t->irq_fd());
  absl::Status s = t->LoadState(ActiveState());
  ASSERT_TRUE(s.ok()) << s;
  ASSERT_EQ(a.count, 1);
  EXPECT_EQ(a.last.features, kOffered);
  ASSERT_EQ(a.last.resume.size(), 2u);
  EXPECT_EQ(a.last.resume[0].next_avail, 7);
  EXPECT_EQ(a.last.resume[0].next_used, 6);
  EXPECT_EQ(a.last.resume[0].signalled_used, 5);
  EXPECT_TRUE(a.last.resume[0].notify_suppressed);
  EXPECT_EQ(a.last.resume[1].next_avail, 0);
  EXPECT_EQ(Rd(*t, kInterruptStatus), 1u);
  EXPECT_EQ(DrainEventFd(t->irq_fd()), 1u) << "a pending interrupt is raised again";
  // Loading twice is refused: the device is running.
  s = t->LoadState(ActiveState());
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
}

// One malformed field: MUTATE spoils a saved state; the error must begin with FIELD and say WHY.
struct BadField {
  std::string name;
  std::function<void(Json&)> mutate;
  std::string field;
  std::string why;
};

TEST_F(MmioStateTest, MalformedFieldsAreNamed) {
  const std::vector<BadField> cases = {
      {"not an object", [](Json& j) { j = Json::array(); }, "body", "must be a JSON object"},
      {"unknown field", [](Json& j) { j["vendor"] = 1u; }, "vendor", "unknown field"},
      {"device_id mismatch", [](Json& j) { j["device_id"] = 2u; }, "device_id",
       "2, but this slot holds a device of type 42"},
      {"missing device_id", [](Json& j) { j.erase("device_id"); }, "device_id",
       "missing required field"},
      {"driver_features not offered", [](Json& j) { j["driver_features"] = kOffered | Bit(5); },
       "driver_features", "has features this device does not offer"},
      {"queues of the wrong length", [](Json& j) { j["queues"].erase(1); }, "queues",
       "must be an array of 2 queues"},
      {"queues too many", [](Json& j) { j["queues"].push_back(j["queues"][0]); }, "queues",
       "must be an array of 2 queues"},
      {"queue size larger than max", [](Json& j) { j["queues"][0]["size"] = 65u; },
       "queues[0].size", "65 is outside [0, 64]"},
      {"queue next_avail over 16 bits", [](Json& j) { j["queues"][1]["next_avail"] = 65536u; },
       "queues[1].next_avail", "65536 is outside [0, 65535]"},
      {"unknown queue field", [](Json& j) { j["queues"][0]["event_idx"] = true; },
       "queues[0].event_idx", "unknown field"},
      {"active without DRIVER_OK",
       [](Json& j) {
         j["active"] = true;
         j["status"] = kFeaturesOk;
       },
       "active", "cannot be active without FEATURES_OK and DRIVER_OK"},
      {"active without FEATURES_OK",
       [](Json& j) {
         j["active"] = true;
         j["status"] = kStatusAcknowledge | kStatusDriver | kStatusDriverOk;
       },
       "active", "cannot be active without FEATURES_OK and DRIVER_OK"},
      {"interrupt_status 4", [](Json& j) { j["interrupt_status"] = 4u; }, "interrupt_status",
       "4 is outside [0, 3]"},
      {"status 256", [](Json& j) { j["status"] = 256u; }, "status", "256 is outside [0, 255]"},
      {"needs_reset not a bool", [](Json& j) { j["needs_reset"] = 0u; }, "needs_reset",
       "must be true or false"},
  };
  const Json good = InactiveState();
  for (const BadField& b : cases) {
    SCOPED_TRACE(b.name);
    Json j = good;
    b.mutate(j);
    Activations a;
    auto t = Fresh(&a);
    const Json before = *t->SaveState();
    absl::Status s = t->LoadState(j);
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
    const std::string message(s.message());
    EXPECT_THAT(message, StartsWith(b.field + ": "));
    EXPECT_THAT(message, HasSubstr(b.why));
    EXPECT_EQ(a.count, 0);
    EXPECT_EQ(*t->SaveState(), before) << "a refused state changes nothing";
  }
}

// A state without queues is refused by name (the const operator[] on a missing key would abort).
TEST_F(MmioStateTest, MissingQueuesIsNamed) {
  Json j = InactiveState();
  j.erase("queues");
  Activations a;
  auto t = Fresh(&a);
  absl::Status s = t->LoadState(j);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), StartsWith("queues: "));
}

}  // namespace
}  // namespace edgevisor::virtio
