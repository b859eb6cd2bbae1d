#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <thread>
#include <vector>

#include "src/devices/legacy/acpi_pm.h"
#include "src/devices/legacy/boot_timer.h"
#include "src/devices/legacy/debug_exit.h"
#include "src/devices/legacy/i8042.h"
#include "src/devices/legacy/pl031.h"

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

TEST(AcpiPmTest, PowerOffOnlyForS5WithSleepEnable) {
  int off = 0, reset = 0;
  AcpiPm pm(
      5, 0x01, [&] { ++off; }, [&] { ++reset; });
  auto w = [&](uint64_t at, uint8_t v) { pm.Write(at, absl::MakeConstSpan(&v, 1)); };
  w(AcpiPm::kSleepControl, 5 << 2);  // SLP_TYP 5 without SLP_EN: nothing yet
  w(AcpiPm::kSleepControl, (3 << 2) | AcpiPm::kSleepEnable);  // S3: not supported, ignored
  w(AcpiPm::kSleepStatus, AcpiPm::kWakeStatus);               // clearing wake status
  EXPECT_EQ(off, 0);
  w(AcpiPm::kSleepControl, (5 << 2) | AcpiPm::kSleepEnable);  // what Linux writes for S5
  EXPECT_EQ(off, 1);
  EXPECT_EQ(reset, 0);
  const uint8_t wide[] = {(5 << 2) | AcpiPm::kSleepEnable, 0};
  pm.Write(AcpiPm::kSleepControl, wide);  // not the byte access the FADT declares
  EXPECT_EQ(off, 1);
}

TEST(AcpiPmTest, ResetOnlyWithTheResetValue) {
  int off = 0, reset = 0;
  AcpiPm pm(
      5, 0x01, [&] { ++off; }, [&] { ++reset; });
  auto w = [&](uint64_t at, uint8_t v) { pm.Write(at, absl::MakeConstSpan(&v, 1)); };
  w(AcpiPm::kReset, 0x06);
  EXPECT_EQ(reset, 0);
  w(AcpiPm::kReset, 0x01);
  EXPECT_EQ(reset, 1);
  EXPECT_EQ(off, 0);
  uint8_t r = 0xff;
  pm.Read(AcpiPm::kSleepStatus, absl::MakeSpan(&r, 1));
  EXPECT_EQ(r, 0) << "no wake status is ever pending";
}

uint32_t Rd32(BusDevice& d, uint64_t off) {
  uint8_t b[4] = {};
  d.Read(off, b);
  return uint32_t{b[0]} | uint32_t{b[1]} << 8 | uint32_t{b[2]} << 16 | uint32_t{b[3]} << 24;
}
void Wr32(BusDevice& d, uint64_t off, uint32_t v) {
  const uint8_t b[4] = {static_cast<uint8_t>(v), static_cast<uint8_t>(v >> 8),
                        static_cast<uint8_t>(v >> 16), static_cast<uint8_t>(v >> 24)};
  d.Write(off, b);
}

TEST(Pl031Test, CountsHostSecondsAndCanBeSet) {
  uint64_t host = 1'800'000'000;
  Pl031 rtc([&] { return host; }, nullptr, false);
  EXPECT_EQ(Rd32(rtc, Pl031::kDr), 1'800'000'000u);
  host += 5;
  EXPECT_EQ(Rd32(rtc, Pl031::kDr), 1'800'000'005u);
  Wr32(rtc, Pl031::kLr, 1000);  // the guest sets its clock
  host += 2;
  EXPECT_EQ(Rd32(rtc, Pl031::kDr), 1002u);
  EXPECT_EQ(Rd32(rtc, Pl031::kCr), 1u) << "always started";
}

TEST(Pl031Test, MatchSetsRawStatusUntilCleared) {
  uint64_t host = 100;
  Pl031 rtc([&] { return host; }, nullptr, false);
  Wr32(rtc, Pl031::kMr, 105);
  EXPECT_EQ(Rd32(rtc, Pl031::kMr), 105u);
  EXPECT_EQ(Rd32(rtc, Pl031::kRis), 0u);
  host = 106;
  EXPECT_EQ(Rd32(rtc, Pl031::kRis), 1u);
  EXPECT_EQ(Rd32(rtc, Pl031::kMis), 0u) << "masked";
  Wr32(rtc, Pl031::kImsc, 1);
  EXPECT_EQ(Rd32(rtc, Pl031::kMis), 1u);
  Wr32(rtc, Pl031::kMr, 200);
  EXPECT_EQ(Rd32(rtc, Pl031::kRis), 0u) << "a new match clears it";
}

TEST(Pl031Test, MatchRaisesTheLineUntilTheGuestClearsIt) {
  uint64_t host = 100;
  std::vector<bool> levels;
  Pl031 rtc([&] { return host; }, [&](bool l) { levels.push_back(l); }, false);
  Wr32(rtc, Pl031::kImsc, 1);
  Wr32(rtc, Pl031::kMr, 103);
  rtc.Poll();
  EXPECT_TRUE(levels.empty()) << "not yet";
  host = 103;
  rtc.Poll();
  EXPECT_EQ(levels, std::vector<bool>{true});
  EXPECT_EQ(Rd32(rtc, Pl031::kMis), 1u);
  host = 104;
  rtc.Poll();
  EXPECT_EQ(levels.size(), 1u) << "a level: no second edge while it is high";
  Wr32(rtc, Pl031::kIcr, 1);
  EXPECT_EQ(levels, (std::vector<bool>{true, false}));
  host = 200;
  rtc.Poll();
  EXPECT_EQ(levels.size(), 2u) << "one match, one interrupt: cleared stays clear";
}

TEST(Pl031Test, MaskedMatchSetsRisButNotTheLine) {
  uint64_t host = 100;
  std::vector<bool> levels;
  Pl031 rtc([&] { return host; }, [&](bool l) { levels.push_back(l); }, false);
  Wr32(rtc, Pl031::kMr, 101);
  host = 101;
  rtc.Poll();
  EXPECT_EQ(Rd32(rtc, Pl031::kRis), 1u);
  EXPECT_TRUE(levels.empty());
  Wr32(rtc, Pl031::kImsc, 1);  // unmasking a pending match raises it
  EXPECT_EQ(levels, std::vector<bool>{true});
  Wr32(rtc, Pl031::kImsc, 0);
  EXPECT_EQ(levels, (std::vector<bool>{true, false}));
}

TEST(Pl031Test, TheTimerRaisesTheMatchOnTheWallClock) {
  if (getenv("EDGEVISOR_QEMU_USER") != nullptr) {
    GTEST_SKIP() << "qemu-user hangs creating threads here; natively this runs in every x86 "
                    "build, and the arm64 rig's guest checks the alarm interrupt on real KVM";
  }
  std::atomic<bool> raised{false};
  Pl031 rtc([] { return static_cast<uint64_t>(time(nullptr)); }, [&](bool l) { raised = l; });
  Wr32(rtc, Pl031::kImsc, 1);
  const uint32_t now = Rd32(rtc, Pl031::kDr);
  Wr32(rtc, Pl031::kMr, now + 1);  // next second: nobody touches the device until then
  for (int i = 0; i < 300 && !raised; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(raised) << "the timer thread did not raise the match within 3 s";
}

TEST(Pl031Test, PrimeCellIdsIdentifyAPl031) {
  Pl031 rtc([] { return uint64_t{0}; }, nullptr, false);
  const uint32_t want[8] = {0x31, 0x10, 0x14, 0x00, 0x0d, 0xf0, 0x05, 0xb1};
  for (int i = 0; i < 8; ++i) EXPECT_EQ(Rd32(rtc, 0xfe0 + 4 * i), want[i]) << i;
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

TEST(BootTimerTest, FirstMarkHookRunsOnceWithTheMeasurement) {
  BootTimer t(ProcessClock::Now());
  int calls = 0;
  uint64_t seen = 0;
  t.OnFirstMark([&](const BootTime& b) {
    ++calls;
    seen = b.wall_us;
  });
  const uint8_t wrong[] = {122};
  t.Write(0, wrong);
  EXPECT_EQ(calls, 0);
  const uint8_t magic[] = {BootTimer::kMagic};
  t.Write(0, magic);
  t.Write(0, magic);
  EXPECT_EQ(calls, 1) << "a service manager is told once";
  ASSERT_TRUE(t.boot_time().has_value());
  EXPECT_EQ(seen, t.boot_time()->wall_us);
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
  EXPECT_EQ(status & I8042::kStatusOutputFull, 0) << "output buffer empty, so guests never wait";
}

uint8_t ReadPort(I8042& dev, uint64_t offset) {
  uint8_t v = 0xff;
  dev.Read(offset, absl::MakeSpan(&v, 1));
  return v;
}

TEST(I8042Test, CtrlAltDelQueuesScanCodesAndInterrupts) {
  int irqs = 0;
  I8042 dev([] {}, [&] { ++irqs; });
  ASSERT_TRUE(dev.SendCtrlAltDel());
  EXPECT_EQ(irqs, 1);
  std::vector<uint8_t> got;
  while (ReadPort(dev, 4) & I8042::kStatusOutputFull) got.push_back(ReadPort(dev, 0));
  EXPECT_EQ(got, (std::vector<uint8_t>{0x14, 0x11, 0xe0, 0x71}));
  EXPECT_EQ(irqs, 4) << "one interrupt per byte";
  EXPECT_EQ(ReadPort(dev, 0), 0) << "empty buffer reads 0";
}

TEST(I8042Test, FullBufferRefusesMoreKeys) {
  I8042 dev([] {});
  for (size_t i = 0; i < I8042::kBufferSize / 4; ++i) ASSERT_TRUE(dev.SendCtrlAltDel());
  EXPECT_FALSE(dev.SendCtrlAltDel()) << "a guest that never reads cannot grow the buffer";
}

TEST(I8042Test, CommandByteAndInterruptMask) {
  int irqs = 0;
  I8042 dev([] {}, [&] { ++irqs; });
  const uint8_t read_ctr[] = {I8042::kCmdReadCtr};
  dev.Write(4, read_ctr);
  EXPECT_EQ(ReadPort(dev, 0), I8042::kCtrKbdInterrupt | I8042::kCtrSystemFlag);
  const uint8_t write_ctr[] = {I8042::kCmdWriteCtr}, no_irq[] = {0x00};
  dev.Write(4, write_ctr);
  dev.Write(0, no_irq);
  irqs = 0;
  ASSERT_TRUE(dev.SendCtrlAltDel());
  EXPECT_EQ(irqs, 0) << "keyboard interrupt disabled in the command byte";
  EXPECT_TRUE(ReadPort(dev, 4) & I8042::kStatusOutputFull) << "polling still sees the keys";
}

TEST(I8042Test, KeyboardCommandsAreAcked) {
  I8042 dev([] {});
  const uint8_t set_leds[] = {0xed};
  dev.Write(0, set_leds);
  EXPECT_EQ(ReadPort(dev, 0), I8042::kKbdAck);
}

}  // namespace
}  // namespace edgevisor
