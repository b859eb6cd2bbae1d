#include <gtest/gtest.h>

#include "src/devices/legacy/boot_timer.h"
#include "src/devices/legacy/debug_exit.h"
#include "src/devices/legacy/i8042.h"

namespace edgevisor {
namespace {

TEST(DebugExitTest, ExitCodeIsValueShiftedOrOne) {
  int code = -1;
  DebugExit dev([&](int c) { code = c; });
  const uint8_t v0[] = {0};
  dev.Write(0, v0);
  EXPECT_EQ(code, 1);
  const uint8_t v3[] = {3};
  dev.Write(0, v3);
  EXPECT_EQ(code, 7);
  const uint8_t wide[] = {0x10, 0x01};  // 16-bit write of 0x110
  dev.Write(0, wide);
  EXPECT_EQ(code, (0x110 << 1) | 1);
}

TEST(BootTimerTest, OnlyMagicAtOffsetZeroRecords) {
  BootTimer t(ProcessClock::Now());
  const uint8_t wrong[] = {122};
  t.Write(0, wrong);
  const uint8_t magic[] = {BootTimer::kMagic};
  t.Write(1, magic);
  EXPECT_FALSE(t.boot_time().has_value());
  t.Write(0, magic);
  ASSERT_TRUE(t.boot_time().has_value());
  const uint64_t first = t.boot_time()->wall_us;
  t.Write(0, magic);
  EXPECT_EQ(t.boot_time()->wall_us, first) << "the first measurement is kept";
}

TEST(I8042Test, ResetCommandOnly) {
  int resets = 0;
  I8042 dev([&] { ++resets; });
  const uint8_t other[] = {0xd1};
  dev.Write(4, other);
  const uint8_t reset[] = {I8042::kCmdReset};
  dev.Write(0, reset);  // data port: not a command
  EXPECT_EQ(resets, 0);
  dev.Write(4, reset);
  EXPECT_EQ(resets, 1);
  uint8_t status = 0xff;
  dev.Read(4, absl::MakeSpan(&status, 1));
  EXPECT_EQ(status, 0) << "input buffer empty, so guests never wait";
}

}  // namespace
}  // namespace edgevisor
