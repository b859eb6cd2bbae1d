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

// Dirty-page tracking (Diff snapshots): off by default; once on, every page a translation covers
// is marked, in its own region's bitmap, and taking the bits clears them.
TEST(GuestMemoryTest, DirtyPagesAreTheTranslatedOnes) {
  GuestMemory m = TwoRegions();
  EXPECT_FALSE(m.tracking_dirty());
  ASSERT_TRUE(m.Write(0x1000, std::vector<uint8_t>(4, 1)).ok());
  EXPECT_TRUE(m.TakeDirty(0).empty()) << "not tracking yet";
  m.TrackDirty();
  EXPECT_TRUE(m.tracking_dirty());
  constexpr uint64_t kPage = GuestMemory::kDirtyPageSize;
  // Three pages of region 0: one byte at the end of page 1, and a range over pages 5 and 6.
  ASSERT_TRUE(m.Write(2 * kPage - 1, std::vector<uint8_t>(1, 7)).ok());
  ASSERT_TRUE(m.Translate(5 * kPage + 100, kPage).ok());
  ASSERT_TRUE(m.Translate(9 * kPage, 0).ok()) << "an empty range marks nothing";
  // Region 1 (at 16 MiB): its page 70, in its bitmap's second word.
  ASSERT_TRUE(m.Write(m.regions()[1].gpa + 70 * kPage, std::vector<uint8_t>(8, 1)).ok());
  std::vector<uint64_t> r0 = m.TakeDirty(0);
  ASSERT_EQ(r0.size(), (m.regions()[0].size / kPage + 63) / 64);
  EXPECT_EQ(r0[0], (uint64_t{1} << 1) | (uint64_t{1} << 5) | (uint64_t{1} << 6));
  for (size_t w = 1; w < r0.size(); ++w) EXPECT_EQ(r0[w], 0u) << w;
  std::vector<uint64_t> r1 = m.TakeDirty(1);
  ASSERT_GE(r1.size(), 2u);
  EXPECT_EQ(r1[0], 0u);
  EXPECT_EQ(r1[1], uint64_t{1} << 6);
  for (uint64_t w : m.TakeDirty(0)) EXPECT_EQ(w, 0u) << "taking clears";
  EXPECT_FALSE(m.Translate(m.regions()[1].gpa + m.regions()[1].size, 1).ok());
  for (uint64_t w : m.TakeDirty(1)) EXPECT_EQ(w, 0u) << "a failed translation marks nothing";
  EXPECT_TRUE(m.TakeDirty(2).empty()) << "no such region";
}

TEST(GuestMemoryTest, TrackingSurvivesAMove) {
  GuestMemory a = TwoRegions();
  a.TrackDirty();
  GuestMemory b = std::move(a);
  ASSERT_TRUE(b.tracking_dirty());
  ASSERT_TRUE(b.Write(0, std::vector<uint8_t>(1, 1)).ok());
  EXPECT_EQ(b.TakeDirty(0)[0], 1u);
}

}  // namespace
}  // namespace edgevisor
