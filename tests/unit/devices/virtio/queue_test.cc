#include "src/devices/virtio/queue.h"

#include <gtest/gtest.h>

#include "tests/unit/devices/virtio/virtio_test_util.h"

namespace edgevisor::virtio {
namespace {

using namespace testing;  // NOLINT(build/namespaces)

class QueueTest : public ::testing::Test {
 protected:
  GuestMemory mem_ = TestMemory();
  QueueConfig cfg_{256, 8, true, kDescTable, kAvail, kUsed};
  void SetAvailIdx(uint16_t v) { ASSERT_TRUE(mem_.WriteObj<uint16_t>(kAvail + 2, v).ok()); }
  void SetAvailRing(uint16_t i, uint16_t head) {
    ASSERT_TRUE(mem_.WriteObj<uint16_t>(kAvail + 4 + 2 * i, head).ok());
  }
};

TEST_F(QueueTest, ValidateChecksSizeAlignmentAndBounds) {
  EXPECT_TRUE(Virtqueue(&mem_, cfg_, false, false).Validate().ok());
  QueueConfig c = cfg_;
  c.size = 6;
  EXPECT_FALSE(Virtqueue(&mem_, c, false, false).Validate().ok());
  c = cfg_;
  c.size = 512;
  EXPECT_FALSE(Virtqueue(&mem_, c, false, false).Validate().ok());
  c = cfg_;
  c.desc += 8;
  EXPECT_FALSE(Virtqueue(&mem_, c, false, false).Validate().ok());
  c = cfg_;
  c.used = kRamSize - 16;
  EXPECT_FALSE(Virtqueue(&mem_, c, false, false).Validate().ok());
}

TEST_F(QueueTest, PopsInOrderAndPublishesUsed) {
  Virtqueue q(&mem_, cfg_, false, false);
  SetAvailRing(0, 3);
  SetAvailRing(1, 5);
  SetAvailIdx(2);
  EXPECT_EQ(**q.PopHead(), 3);
  EXPECT_EQ(**q.PopHead(), 5);
  EXPECT_FALSE(q.PopHead()->has_value());
  ASSERT_TRUE(q.AddUsed(5, 100).ok());
  EXPECT_EQ(*mem_.ReadObj<uint16_t>(kUsed + 2), 1);
  EXPECT_EQ(mem_.ReadObj<UsedElem>(kUsed + 4)->id, 5u);
  EXPECT_EQ(mem_.ReadObj<UsedElem>(kUsed + 4)->len, 100u);
}

TEST_F(QueueTest, AvailIdxJumpPastQueueSizeIsError) {
  Virtqueue q(&mem_, cfg_, false, false);
  SetAvailIdx(9);
  EXPECT_FALSE(q.PopHead().ok());
}

TEST_F(QueueTest, AvailEntryOutOfRangeIsError) {
  Virtqueue q(&mem_, cfg_, false, false);
  SetAvailRing(0, 8);
  SetAvailIdx(1);
  EXPECT_FALSE(q.PopHead().ok());
}

TEST_F(QueueTest, AvailIdxWrapsAround) {
  Virtqueue q(&mem_, cfg_, false, false);
  for (int i = 0; i < 70000; i += 7) {  // drive last_avail through 65535 -> 0
    SetAvailIdx(static_cast<uint16_t>(i + 7));
    for (int k = 0; k < 7; ++k) ASSERT_TRUE(q.PopHead()->has_value());
  }
}

TEST_F(QueueTest, NoInterruptFlagSuppresses) {
  Virtqueue q(&mem_, cfg_, false, false);
  ASSERT_TRUE(mem_.WriteObj<uint16_t>(kAvail, kAvailFlagNoInterrupt).ok());
  ASSERT_TRUE(q.AddUsed(0, 1).ok());
  EXPECT_FALSE(q.ShouldInterrupt());
  ASSERT_TRUE(mem_.WriteObj<uint16_t>(kAvail, 0).ok());
  ASSERT_TRUE(q.AddUsed(1, 1).ok());
  EXPECT_TRUE(q.ShouldInterrupt());
  EXPECT_FALSE(q.ShouldInterrupt()) << "nothing new since the last decision";
}

TEST_F(QueueTest, EventIdxInterruptsOnlyWhenUsedEventPassed) {
  Virtqueue q(&mem_, cfg_, /*event_idx=*/true, false);
  const uint64_t used_event = kAvail + 4 + 2 * 8;
  ASSERT_TRUE(mem_.WriteObj<uint16_t>(used_event, 2).ok());  // interrupt after the 3rd entry
  ASSERT_TRUE(q.AddUsed(0, 1).ok());
  ASSERT_TRUE(q.AddUsed(1, 1).ok());
  EXPECT_FALSE(q.ShouldInterrupt());
  ASSERT_TRUE(q.AddUsed(2, 1).ok());
  EXPECT_TRUE(q.ShouldInterrupt());
}

TEST_F(QueueTest, SuppressSetsNoNotifyUntilArmed) {
  Virtqueue q(&mem_, cfg_, /*event_idx=*/false, false);
  q.SuppressNotifications();
  EXPECT_EQ(*mem_.ReadObj<uint16_t>(kUsed), kUsedFlagNoNotify);
  q.ArmNotification();
  EXPECT_EQ(*mem_.ReadObj<uint16_t>(kUsed), 0);
}

TEST_F(QueueTest, ArmWritesAvailEvent) {
  Virtqueue q(&mem_, cfg_, true, false);
  SetAvailIdx(3);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(q.PopHead().ok());
  q.ArmNotification();
  EXPECT_EQ(*mem_.ReadObj<uint16_t>(kUsed + 4 + 8 * 8), 3);
}

TEST_F(QueueTest, PopOrEnableNotificationPopsWithoutArming) {
  Virtqueue q(&mem_, cfg_, /*event_idx=*/false, false);
  q.SuppressNotifications();
  SetAvailRing(0, 4);
  SetAvailIdx(1);
  EXPECT_EQ(**q.PopOrEnableNotification(), 4);
  EXPECT_EQ(*mem_.ReadObj<uint16_t>(kUsed), kUsedFlagNoNotify);  // still draining: no notify
}

TEST_F(QueueTest, PopOrEnableNotificationArmsOnAnEmptyRing) {
  Virtqueue q(&mem_, cfg_, /*event_idx=*/false, false);
  q.SuppressNotifications();
  EXPECT_FALSE(q.PopOrEnableNotification()->has_value());
  EXPECT_EQ(*mem_.ReadObj<uint16_t>(kUsed), 0);  // the driver notifies for the next chain

  Virtqueue e(&mem_, cfg_, /*event_idx=*/true, false);
  SetAvailRing(0, 1);
  SetAvailIdx(1);
  EXPECT_EQ(**e.PopOrEnableNotification(), 1);
  EXPECT_FALSE(e.PopOrEnableNotification()->has_value());
  EXPECT_EQ(*mem_.ReadObj<uint16_t>(kUsed + 4 + 8 * 8), 1);  // avail_event: the next entry
}

TEST_F(QueueTest, PopOrEnableNotificationReportsACorruptRing) {
  Virtqueue q(&mem_, cfg_, false, false);
  SetAvailIdx(9);  // more than the queue size at once
  EXPECT_FALSE(q.PopOrEnableNotification().ok());
}

}  // namespace
}  // namespace edgevisor::virtio
