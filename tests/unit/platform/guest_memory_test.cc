#include "src/platform/guest_memory.h"

#include <gtest/gtest.h>

namespace edgevisor {
namespace {

constexpr uint64_t kMiB = 1 << 20;

GuestMemory TwoRegions() {
  auto m = GuestMemory::Create({{0, 2 * kMiB}, {16 * kMiB, 1 * kMiB}});
  EXPECT_TRUE(m.ok()) << m.status();
  return std::move(*m);
}

TEST(GuestMemoryTest, TranslatesInsideRegions) {
  GuestMemory m = TwoRegions();
  auto a = m.Translate(0, 2 * kMiB);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->data(), m.regions()[0].hva);
  auto b = m.Translate(16 * kMiB + 100, 10);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->data(), m.regions()[1].hva + 100);
  EXPECT_EQ(m.total_size(), 3 * kMiB);
}

TEST(GuestMemoryTest, RejectsRangePastRegionEnd) {
  GuestMemory m = TwoRegions();
  EXPECT_FALSE(m.Translate(2 * kMiB - 4, 8).ok());
  EXPECT_TRUE(m.Translate(2 * kMiB - 4, 4).ok());
}

TEST(GuestMemoryTest, RejectsHole) {
  GuestMemory m = TwoRegions();
  EXPECT_FALSE(m.Translate(4 * kMiB, 1).ok());
  EXPECT_EQ(m.Translate(4 * kMiB, 1).status().code(), absl::StatusCode::kOutOfRange);
}

TEST(GuestMemoryTest, RejectsRangeSpanningTwoRegions) {
  auto m = GuestMemory::Create({{0, kMiB}, {kMiB, kMiB}});
  ASSERT_TRUE(m.ok());
  EXPECT_FALSE(m->Translate(kMiB - 8, 16).ok()) << "host mappings are not contiguous";
}

TEST(GuestMemoryTest, RejectsOverflowingLength) {
  GuestMemory m = TwoRegions();
  EXPECT_FALSE(m.Translate(16, ~0ull).ok());
  EXPECT_FALSE(m.Translate(~0ull - 1, 4).ok());
  EXPECT_FALSE(m.Translate(16 * kMiB + 8, ~0ull - 4).ok());
}

TEST(GuestMemoryTest, ZeroLengthAtRegionEndIsValid) {
  GuestMemory m = TwoRegions();
  EXPECT_TRUE(m.Translate(2 * kMiB, 0).ok());
  EXPECT_FALSE(m.Translate(3 * kMiB, 0).ok());
}

TEST(GuestMemoryTest, ReadWriteRoundTrip) {
  GuestMemory m = TwoRegions();
  ASSERT_TRUE(m.WriteObj<uint64_t>(0x1000, 0x1122334455667788ull).ok());
  auto v = m.ReadObj<uint64_t>(0x1000);
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, 0x1122334455667788ull);
  EXPECT_FALSE(m.WriteObj<uint64_t>(2 * kMiB - 4, 1).ok());
  EXPECT_FALSE(m.ReadObj<uint64_t>(2 * kMiB - 4).ok());
}

TEST(GuestMemoryTest, RejectsBadLayouts) {
  EXPECT_FALSE(GuestMemory::Create({{0, 0}}).ok());
  EXPECT_FALSE(GuestMemory::Create({{0, 100}}).ok());
  EXPECT_FALSE(GuestMemory::Create({{0, 2 * kMiB}, {kMiB, kMiB}}).ok());
  EXPECT_FALSE(GuestMemory::Create({{~0ull & ~0xfffull, 0x2000}}).ok());
}

TEST(GuestMemoryTest, MoveTransfersOwnership) {
  GuestMemory a = TwoRegions();
  uint8_t* hva = a.regions()[0].hva;
  GuestMemory b = std::move(a);
  EXPECT_TRUE(a.regions().empty());  // NOLINT(bugprone-use-after-move): checking the moved-from
  EXPECT_EQ(b.regions()[0].hva, hva);
  EXPECT_FALSE(a.Translate(0, 1).ok());
}

}  // namespace
}  // namespace edgevisor
