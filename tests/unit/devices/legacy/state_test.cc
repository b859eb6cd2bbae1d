// Snapshot state of the legacy devices (Uart16550, I8042 and Pl031 SaveState/LoadState): a saved
// device loads into a fresh one that then reads back the same registers and bytes, and a malformed
// state is refused, naming the field, without changing the device.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "src/devices/legacy/i8042.h"
#include "src/devices/legacy/pl031.h"
#include "src/devices/legacy/uart_16550.h"

namespace edgevisor {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;
using Json = nlohmann::json;

// One malformed field: MUTATE spoils a saved state; the error must begin with FIELD and say WHY.
struct BadField {
  std::string name;
  std::function<void(Json&)> mutate;
  std::string field;
  std::string why;
};

template <typename Device>
void ExpectRefused(const Json& good, const std::vector<BadField>& cases,
                   const std::function<std::unique_ptr<Device>()>& make) {
  for (const BadField& b : cases) {
    SCOPED_TRACE(b.name);
    Json j = good;
    b.mutate(j);
    std::unique_ptr<Device> d = make();
    const Json before = d->SaveState();
    absl::Status s = d->LoadState(j);
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
    const std::string message(s.message());
    EXPECT_THAT(message, StartsWith(b.field + ": "));
    EXPECT_THAT(message, HasSubstr(b.why));
    EXPECT_EQ(d->SaveState(), before) << "a refused state changes nothing";
  }
}

// --- 16550A UART ---------------------------------------------------------------------------

constexpr uint64_t kRbr = 0, kIer = 1, kIirFcr = 2, kLcr = 3, kMcr = 4, kLsr = 5, kScr = 7;

struct Uart {
  std::vector<bool> irq;
  Uart16550 dev{-1, [this](bool level) { irq.push_back(level); }};
  uint8_t In(uint64_t reg) {
    uint8_t v = 0;
    dev.Read(reg, absl::MakeSpan(&v, 1));
    return v;
  }
  void Out(uint64_t reg, uint8_t v) { dev.Write(reg, absl::MakeConstSpan(&v, 1)); }
};

// A UART that a driver has set up: divisor 1 (115200 baud), 8N1, FIFO on, RX interrupt on,
// scratch 0x5a, modem control DTR|RTS|OUT2, and three bytes of host input waiting.
Json ConfiguredUartState() {
  Uart u;
  u.Out(kLcr, 0x80);  // DLAB
  u.Out(kRbr, 0x01);  // DLL
  u.Out(kIer, 0x00);  // DLM
  u.Out(kLcr, 0x03);
  u.Out(kIirFcr, 0x01);
  u.Out(kIer, 0x01);
  u.Out(kMcr, 0x0b);
  u.Out(kScr, 0x5a);
  const uint8_t input[] = {'a', 'b', 'c'};
  EXPECT_EQ(u.dev.EnqueueInput(input), 3u);
  return u.dev.SaveState();
}

TEST(UartStateTest, LoadsIntoAFreshDevice) {
  const Json saved = ConfiguredUartState();
  Uart u;
  ASSERT_TRUE(u.dev.LoadState(saved).ok()) << u.dev.LoadState(saved);
  ASSERT_FALSE(u.irq.empty());
  EXPECT_TRUE(u.irq.back()) << "RX interrupt enabled with input waiting: the line is raised";
  EXPECT_EQ(u.dev.SaveState(), saved);
  EXPECT_EQ(u.In(kScr), 0x5a);
  EXPECT_EQ(u.In(kLcr), 0x03);
  EXPECT_EQ(u.In(kIer), 0x01);
  EXPECT_EQ(u.In(kMcr), 0x0b);
  EXPECT_EQ(u.In(kIirFcr), 0xc0 | 0x04) << "FIFO enabled, RX data available";
  EXPECT_EQ(u.In(kLsr) & 0x01, 0x01);
  EXPECT_EQ(u.dev.InputSpace(), Uart16550::kRxFifoSize - 3);
  EXPECT_EQ(u.In(kRbr), 'a');
  EXPECT_EQ(u.In(kRbr), 'b');
  EXPECT_EQ(u.In(kRbr), 'c');
  EXPECT_EQ(u.In(kLsr) & 0x01, 0x00);
  EXPECT_FALSE(u.irq.back());
  u.Out(kLcr, 0x83);
  EXPECT_EQ(u.In(kRbr), 0x01) << "DLL";
  EXPECT_EQ(u.In(kIer), 0x00) << "DLM";
}

TEST(UartStateTest, LoadingAQuietStateLowersTheLine) {
  Uart u;
  u.Out(kIer, 0x01);
  const uint8_t input[] = {'x'};
  u.dev.EnqueueInput(input);
  ASSERT_TRUE(u.irq.back());
  Uart fresh;
  ASSERT_TRUE(u.dev.LoadState(fresh.dev.SaveState()).ok());
  EXPECT_FALSE(u.irq.back());
  EXPECT_EQ(u.In(kLsr) & 0x01, 0x00);
}

TEST(UartStateTest, MalformedFieldsAreNamed) {
  const std::vector<BadField> cases = {
      {"not an object", [](Json& j) { j = Json::array(); }, "body", "must be a JSON object"},
      {"rx longer than 64", [](Json& j) { j["rx"] = std::vector<int>(65, 'x'); }, "rx",
       "must be an array of at most 64 bytes"},
      {"rx not an array", [](Json& j) { j["rx"] = "abc"; }, "rx",
       "must be an array of at most 64 bytes"},
      {"rx byte 256", [](Json& j) { j["rx"][1] = 256; }, "rx", "must hold numbers from 0 to 255"},
      {"rx byte negative", [](Json& j) { j["rx"][0] = -1; }, "rx",
       "must hold numbers from 0 to 255"},
      {"lcr 256", [](Json& j) { j["lcr"] = 256u; }, "lcr", "256 is outside [0, 255]"},
      {"scr 256", [](Json& j) { j["scr"] = 256u; }, "scr", "256 is outside [0, 255]"},
      {"dlm negative", [](Json& j) { j["dlm"] = -1; }, "dlm", "must be a non-negative integer"},
      {"ier a string", [](Json& j) { j["ier"] = "1"; }, "ier", "must be a non-negative integer"},
      {"unknown field", [](Json& j) { j["lsr"] = 0u; }, "lsr", "unknown field"},
      {"missing scr", [](Json& j) { j.erase("scr"); }, "scr", "missing required field"},
      {"missing rx", [](Json& j) { j.erase("rx"); }, "rx", "missing required field"},
      {"missing thre_pending", [](Json& j) { j.erase("thre_pending"); }, "thre_pending",
       "missing required field"},
      {"fifo_enabled not a bool", [](Json& j) { j["fifo_enabled"] = 1u; }, "fifo_enabled",
       "must be true or false"},
  };
  ExpectRefused<Uart16550>(ConfiguredUartState(), cases, [] {
    auto d = std::make_unique<Uart16550>(-1, nullptr);
    const uint8_t b = 0x77;
    d->Write(kScr, absl::MakeConstSpan(&b, 1));
    return d;
  });
}

// --- i8042 ---------------------------------------------------------------------------------

struct Kbd {
  int resets = 0, pulses = 0;
  I8042 dev{[this] { ++resets; }, [this] { ++pulses; }};
  uint8_t In(uint64_t offset) {
    uint8_t v = 0;
    dev.Read(offset, absl::MakeSpan(&v, 1));
    return v;
  }
  void Out(uint64_t offset, uint8_t v) { dev.Write(offset, absl::MakeConstSpan(&v, 1)); }
};

// A controller with output port 0x03, the command byte and Ctrl+Alt+Del waiting in its output
// buffer, and a "write command byte" (0x60) waiting for its data byte.
Json BusyI8042State() {
  Kbd k;
  k.Out(I8042::kCommandOffset, I8042::kCmdWriteOutPort);
  k.Out(I8042::kDataOffset, 0x03);
  k.Out(I8042::kCommandOffset, I8042::kCmdReadCtr);
  EXPECT_TRUE(k.dev.SendCtrlAltDel());
  k.Out(I8042::kCommandOffset, I8042::kCmdWriteCtr);
  return k.dev.SaveState();
}

TEST(I8042StateTest, LoadsIntoAFreshDevice) {
  const Json saved = BusyI8042State();
  Kbd k;
  ASSERT_TRUE(k.dev.LoadState(saved).ok()) << k.dev.LoadState(saved);
  EXPECT_EQ(k.dev.SaveState(), saved);
  EXPECT_EQ(k.In(I8042::kCommandOffset), I8042::kStatusKbdUnlocked | I8042::kStatusSystemFlag |
                                             I8042::kStatusLastWasCommand |
                                             I8042::kStatusOutputFull);
  const uint8_t want[] = {I8042::kCtrKbdInterrupt | I8042::kCtrSystemFlag, 0x14, 0x11, 0xe0, 0x71};
  for (uint8_t b : want) EXPECT_EQ(k.In(I8042::kDataOffset), b);
  EXPECT_EQ(k.In(I8042::kCommandOffset) & I8042::kStatusOutputFull, 0);
  // The pending 0x60 takes the next data byte as the command byte.
  k.Out(I8042::kDataOffset, I8042::kCtrSystemFlag);
  k.Out(I8042::kCommandOffset, I8042::kCmdReadCtr);
  EXPECT_EQ(k.In(I8042::kDataOffset), I8042::kCtrSystemFlag);
  k.Out(I8042::kCommandOffset, I8042::kCmdReadOutPort);
  EXPECT_EQ(k.In(I8042::kDataOffset), 0x03);
  EXPECT_EQ(k.resets, 0);
}

TEST(I8042StateTest, MalformedFieldsAreNamed) {
  const std::vector<BadField> cases = {
      {"not an object", [](Json& j) { j = 5; }, "body", "must be a JSON object"},
      {"out longer than 16", [](Json& j) { j["out"] = std::vector<int>(17, 0xfa); }, "out",
       "must be an array of at most 16 bytes"},
      {"out byte 256", [](Json& j) { j["out"][0] = 256; }, "out",
       "must hold numbers from 0 to 255"},
      {"ctr 256", [](Json& j) { j["ctr"] = 256u; }, "ctr", "256 is outside [0, 255]"},
      {"out_port 256", [](Json& j) { j["out_port"] = 256u; }, "out_port",
       "256 is outside [0, 255]"},
      {"pending_cmd 256", [](Json& j) { j["pending_cmd"] = 256u; }, "pending_cmd",
       "256 is outside [0, 255]"},
      {"unknown field", [](Json& j) { j["status"] = 0u; }, "status", "unknown field"},
      {"missing pending_cmd", [](Json& j) { j.erase("pending_cmd"); }, "pending_cmd",
       "missing required field"},
      {"missing out", [](Json& j) { j.erase("out"); }, "out", "missing required field"},
      {"last_was_command not a bool", [](Json& j) { j["last_was_command"] = "yes"; },
       "last_was_command", "must be true or false"},
  };
  ExpectRefused<I8042>(BusyI8042State(), cases, [] {
    auto d = std::make_unique<I8042>([] {});
    d->SendCtrlAltDel();
    return d;
  });
}

// --- PL031 RTC --------------------------------------------------------------------------------

struct Rtc {
  uint64_t host = 1'000;  // the host's wall clock, seconds
  std::vector<bool> irq;
  Pl031 dev{[this] { return host; }, [this](bool level) { irq.push_back(level); }, false};
  uint32_t In(uint64_t reg) {
    uint8_t b[4] = {};
    dev.Read(reg, absl::MakeSpan(b, 4));
    return b[0] | (b[1] << 8) | (b[2] << 16) | (static_cast<uint32_t>(b[3]) << 24);
  }
  void Out(uint64_t reg, uint32_t v) {
    const uint8_t b[4] = {static_cast<uint8_t>(v), static_cast<uint8_t>(v >> 8),
                          static_cast<uint8_t>(v >> 16), static_cast<uint8_t>(v >> 24)};
    dev.Write(reg, absl::MakeConstSpan(b, 4));
  }
};

// The guest set its clock to 5000 at host second 1000 and armed an alarm for 5010.
Json ArmedRtcState() {
  Rtc r;
  r.Out(Pl031::kLr, 5000);
  r.Out(Pl031::kMr, 5010);
  r.Out(Pl031::kImsc, 1);
  EXPECT_EQ(r.In(Pl031::kRis), 0u);
  return r.dev.SaveState();
}

// Restored 5 s later: the count went on with the wall clock, the alarm is still armed and fires
// at its second.
TEST(Pl031StateTest, LoadsIntoAFreshDeviceAndTheAlarmStillFires) {
  Rtc r;
  r.host = 1'005;
  ASSERT_TRUE(r.dev.LoadState(ArmedRtcState()).ok());
  EXPECT_EQ(r.In(Pl031::kDr), 5005u);
  EXPECT_EQ(r.In(Pl031::kMr), 5010u);
  EXPECT_EQ(r.In(Pl031::kImsc), 1u);
  EXPECT_EQ(r.In(Pl031::kRis), 0u);
  EXPECT_TRUE(r.irq.empty());
  r.host = 1'010;
  r.dev.Poll();
  EXPECT_EQ(r.In(Pl031::kRis), 1u);
  EXPECT_EQ(r.irq, std::vector<bool>{true});
}

// Restored after the alarm's second: it fires on load, and the line goes up.
TEST(Pl031StateTest, AnAlarmDueWhileAwayFiresOnLoad) {
  Rtc r;
  r.host = 2'000;
  ASSERT_TRUE(r.dev.LoadState(ArmedRtcState()).ok());
  EXPECT_EQ(r.In(Pl031::kDr), 6000u);
  EXPECT_EQ(r.In(Pl031::kRis), 1u);
  EXPECT_EQ(r.In(Pl031::kMis), 1u);
  EXPECT_EQ(r.irq, std::vector<bool>{true});
}

TEST(Pl031StateTest, MalformedFieldsAreNamed) {
  const std::vector<BadField> cases = {
      {"unknown key", [](Json& j) { j["lr"] = 1; }, "lr", "unknown field"},
      {"offset not a number", [](Json& j) { j["offset"] = "4000"; }, "offset",
       "must be an integer"},
      {"match over 32 bits", [](Json& j) { j["match"] = uint64_t{1} << 32; }, "match",
       "is outside [0, 4294967295]"},
      {"imsc 2", [](Json& j) { j["imsc"] = 2u; }, "imsc", "2 is outside [0, 1]"},
      {"armed a number", [](Json& j) { j["armed"] = 1; }, "armed", "must be true or false"},
      {"missing ris", [](Json& j) { j.erase("ris"); }, "ris", "missing required field"},
  };
  ExpectRefused<Pl031>(ArmedRtcState(), cases, [] {
    return std::make_unique<Pl031>([] { return uint64_t{1'000}; }, nullptr, false);
  });
}

}  // namespace
}  // namespace edgevisor
