#include "src/devices/virtio/descriptor_chain.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/unit/devices/virtio/virtio_test_util.h"

namespace edgevisor::virtio {
namespace {

using ::testing::HasSubstr;
using namespace testing;  // NOLINT(build/namespaces)

class ChainTest : public ::testing::Test {
 protected:
  GuestMemory mem_ = TestMemory();
  ChainLimits limits_{kDescTable, 16, true};
  std::string Err(uint16_t head = 0) {
    auto r = ReadDescriptorChain(mem_, limits_, head);
    return r.ok() ? "OK" : std::string(r.status().message());
  }
};

TEST_F(ChainTest, WalksReadableThenWritable) {
  PutDesc(mem_, kDescTable, 0, kData, 16, kDescFlagNext, 3);
  PutDesc(mem_, kDescTable, 3, kData + 0x100, 512, kDescFlagNext | kDescFlagWrite, 7);
  PutDesc(mem_, kDescTable, 7, kData + 0x400, 1, kDescFlagWrite, 0);
  auto c = ReadDescriptorChain(mem_, limits_, 0);
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->descs.size(), 3u);
  EXPECT_FALSE(c->descs[0].writable);
  EXPECT_TRUE(c->descs[2].writable);
  EXPECT_EQ(c->readable_bytes, 16u);
  EXPECT_EQ(c->writable_bytes, 513u);
}

TEST_F(ChainTest, FollowsIndirectTable) {
  PutDesc(mem_, kDescTable, 2, kIndirect, 3 * sizeof(Desc), kDescFlagIndirect, 0);
  PutDesc(mem_, kIndirect, 0, kData, 16, kDescFlagNext, 1);
  PutDesc(mem_, kIndirect, 1, kData + 0x100, 512, kDescFlagNext, 2);
  PutDesc(mem_, kIndirect, 2, kData + 0x400, 1, kDescFlagWrite, 0);
  auto c = ReadDescriptorChain(mem_, limits_, 2);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->descs.size(), 3u);
  EXPECT_EQ(c->head, 2);
}

TEST_F(ChainTest, RejectsBufferOutsideRam) {
  PutDesc(mem_, kDescTable, 0, 0x200000000ull, 16, 0, 0);
  EXPECT_THAT(Err(), HasSubstr("outside guest RAM"));
}

TEST_F(ChainTest, RejectsBufferStraddlingRamEnd) {
  PutDesc(mem_, kDescTable, 0, kRamSize - 8, 16, 0, 0);
  EXPECT_THAT(Err(), HasSubstr("outside guest RAM"));
}

TEST_F(ChainTest, RejectsHugeLength) {
  PutDesc(mem_, kDescTable, 0, kData, 0x7fffffff, 0, 0);
  EXPECT_THAT(Err(), HasSubstr("outside guest RAM"));
}

TEST_F(ChainTest, RejectsAddressPlusLengthOverflow) {
  PutDesc(mem_, kDescTable, 0, ~0ull - 4, 16, 0, 0);
  EXPECT_THAT(Err(), HasSubstr("outside guest RAM"));
}

TEST_F(ChainTest, RejectsSelfLoop) {
  PutDesc(mem_, kDescTable, 0, kData, 16, kDescFlagNext, 0);
  EXPECT_THAT(Err(), HasSubstr("loops"));
}

TEST_F(ChainTest, RejectsLongLoop) {
  for (uint16_t i = 0; i < 16; ++i)
    PutDesc(mem_, kDescTable, i, kData, 16, kDescFlagNext, (i + 1) % 16);
  EXPECT_THAT(Err(), HasSubstr("loops"));
}

TEST_F(ChainTest, RejectsChainLongerThanQueue) {
  limits_.queue_size = 4;
  for (uint16_t i = 0; i < 4; ++i) PutDesc(mem_, kDescTable, i, kData, 16, kDescFlagNext, i + 1);
  EXPECT_THAT(Err(), HasSubstr("outside the queue"));
}

TEST_F(ChainTest, RejectsNextOutOfRange) {
  PutDesc(mem_, kDescTable, 0, kData, 16, kDescFlagNext, 200);
  EXPECT_THAT(Err(), HasSubstr("next index 200"));
}

TEST_F(ChainTest, RejectsHeadOutOfRange) { EXPECT_THAT(Err(16), HasSubstr("head index 16")); }

TEST_F(ChainTest, RejectsReadableAfterWritable) {
  PutDesc(mem_, kDescTable, 0, kData, 16, kDescFlagNext | kDescFlagWrite, 1);
  PutDesc(mem_, kDescTable, 1, kData, 16, 0, 0);
  EXPECT_THAT(Err(), HasSubstr("device-readable descriptor after"));
}

TEST_F(ChainTest, RejectsDescriptorTableOutsideRam) {
  limits_.desc_table = kRamSize - 8;
  EXPECT_THAT(Err(), HasSubstr("descriptor table"));
}

TEST_F(ChainTest, RejectsIndirectWithoutFeature) {
  limits_.indirect_allowed = false;
  PutDesc(mem_, kDescTable, 0, kIndirect, 16, kDescFlagIndirect, 0);
  EXPECT_THAT(Err(), HasSubstr("without the feature"));
}

TEST_F(ChainTest, RejectsIndirectWithNext) {
  PutDesc(mem_, kDescTable, 0, kIndirect, 16, kDescFlagIndirect | kDescFlagNext, 1);
  EXPECT_THAT(Err(), HasSubstr("NEXT"));
}

TEST_F(ChainTest, RejectsIndirectBadLength) {
  PutDesc(mem_, kDescTable, 0, kIndirect, 20, kDescFlagIndirect, 0);
  EXPECT_THAT(Err(), HasSubstr("multiple of 16"));
}

TEST_F(ChainTest, RejectsIndirectZeroLength) {
  PutDesc(mem_, kDescTable, 0, kIndirect, 0, kDescFlagIndirect, 0);
  EXPECT_THAT(Err(), HasSubstr("multiple of 16"));
}

TEST_F(ChainTest, RejectsNestedIndirect) {
  PutDesc(mem_, kDescTable, 0, kIndirect, 16, kDescFlagIndirect, 0);
  PutDesc(mem_, kIndirect, 0, kIndirect + 0x100, 16, kDescFlagIndirect, 0);
  EXPECT_THAT(Err(), HasSubstr("nested"));
}

TEST_F(ChainTest, RejectsIndirectTableOutsideRam) {
  PutDesc(mem_, kDescTable, 0, kRamSize - 16, 32, kDescFlagIndirect, 0);
  EXPECT_THAT(Err(), HasSubstr("indirect table is outside"));
}

TEST_F(ChainTest, RejectsIndirectLoop) {
  PutDesc(mem_, kDescTable, 0, kIndirect, 2 * sizeof(Desc), kDescFlagIndirect, 0);
  PutDesc(mem_, kIndirect, 0, kData, 16, kDescFlagNext, 1);
  PutDesc(mem_, kIndirect, 1, kData, 16, kDescFlagNext, 0);
  EXPECT_THAT(Err(), HasSubstr("indirect chain loops"));
}

TEST_F(ChainTest, RejectsIndirectNextOutOfTable) {
  PutDesc(mem_, kDescTable, 0, kIndirect, 2 * sizeof(Desc), kDescFlagIndirect, 0);
  PutDesc(mem_, kIndirect, 0, kData, 16, kDescFlagNext, 5);
  EXPECT_THAT(Err(), HasSubstr("outside the table"));
}

}  // namespace
}  // namespace edgevisor::virtio
