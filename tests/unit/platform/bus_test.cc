#include "src/platform/bus.h"

#include <gtest/gtest.h>

#include <vector>

namespace edgevisor {
namespace {

struct Recorder : BusDevice {
  std::vector<std::pair<uint64_t, size_t>> reads, writes;
  void Read(uint64_t off, absl::Span<uint8_t> d) override {
    reads.push_back({off, d.size()});
    std::fill(d.begin(), d.end(), 0x5a);
  }
  void Write(uint64_t off, absl::Span<const uint8_t> d) override {
    writes.push_back({off, d.size()});
  }
};

TEST(BusTest, DispatchesByRangeWithOffset) {
  Bus bus("test");
  auto a = std::make_shared<Recorder>();
  auto b = std::make_shared<Recorder>();
  ASSERT_TRUE(bus.Insert(a, 0x100, 0x10, "a").ok());
  ASSERT_TRUE(bus.Insert(b, 0x110, 0x10, "b").ok());
  uint8_t buf[4] = {};
  EXPECT_TRUE(bus.Read(0x104, buf));
  EXPECT_EQ(buf[0], 0x5a);
  EXPECT_TRUE(bus.Write(0x110, buf));
  ASSERT_EQ(a->reads.size(), 1u);
  EXPECT_EQ(a->reads[0].first, 4u);
  ASSERT_EQ(b->writes.size(), 1u);
  EXPECT_EQ(b->writes[0].first, 0u);
}

TEST(BusTest, UnclaimedAndStraddlingAccessesFail) {
  Bus bus("test");
  auto a = std::make_shared<Recorder>();
  ASSERT_TRUE(bus.Insert(a, 0x100, 0x10, "a").ok());
  uint8_t buf[4] = {};
  EXPECT_FALSE(bus.Read(0xff, absl::MakeSpan(buf, 1)));
  EXPECT_FALSE(bus.Read(0x110, absl::MakeSpan(buf, 1)));
  EXPECT_FALSE(bus.Write(0x10e, buf)) << "an access crossing the device end is not dispatched";
  EXPECT_TRUE(a->writes.empty());
}

TEST(BusTest, RejectsOverlapsAndBadRanges) {
  Bus bus("test");
  auto a = std::make_shared<Recorder>();
  ASSERT_TRUE(bus.Insert(a, 0x100, 0x10, "a").ok());
  EXPECT_FALSE(bus.Insert(a, 0x10f, 1, "b").ok());
  EXPECT_FALSE(bus.Insert(a, 0xf0, 0x11, "c").ok());
  EXPECT_FALSE(bus.Insert(a, 0x0, 0, "d").ok());
  EXPECT_FALSE(bus.Insert(a, ~0ull - 1, 4, "e").ok());
  EXPECT_TRUE(bus.Insert(a, 0xf0, 0x10, "f").ok());
}

}  // namespace
}  // namespace edgevisor
