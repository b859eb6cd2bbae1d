#include "src/devices/block/request.h"

#include <gtest/gtest.h>

#include "tests/unit/devices/virtio/virtio_test_util.h"

namespace edgevisor::block {
namespace {

using namespace virtio::testing;  // NOLINT(build/namespaces)
using namespace virtio_blk;       // NOLINT(build/namespaces)
using virtio::kDescFlagNext;
using virtio::kDescFlagWrite;

constexpr uint64_t kHdr = kData;
constexpr uint64_t kBuf = kData + 0x1000;
constexpr uint64_t kStatus = kData + 0x8000;

class RequestTest : public ::testing::Test {
 protected:
  GuestMemory mem_ = TestMemory();
  DiskLimits limits_{.capacity_sectors = 1024};

  void Header(uint32_t type, uint64_t sector) {
    ASSERT_TRUE(mem_.WriteObj(kHdr, ReqHeader{type, 0, sector}).ok());
  }
  // header | data (direction per `data_writable`) | status
  absl::StatusOr<BlockRequest> Parse3(uint32_t data_len, bool data_writable) {
    virtio::DescriptorChain c;
    c.descs = {{kHdr, 16, false}, {kBuf, data_len, data_writable}, {kStatus, 1, true}};
    return ParseBlockRequest(mem_, c, limits_);
  }
  absl::StatusOr<BlockRequest> Parse(std::vector<virtio::ChainDesc> descs) {
    virtio::DescriptorChain c;
    c.descs = std::move(descs);
    return ParseBlockRequest(mem_, c, limits_);
  }
  static uint8_t Immediate(const absl::StatusOr<BlockRequest>& r) {
    EXPECT_TRUE(r.ok()) << r.status();
    EXPECT_TRUE(r->immediate);
    return r->immediate_status;
  }
};

TEST_F(RequestTest, ReadRequest) {
  Header(kTypeIn, 8);
  auto r = Parse3(4096, true);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->immediate);
  EXPECT_EQ(r->offset, 8 * 512u);
  EXPECT_EQ(r->data_len, 4096u);
  EXPECT_EQ(r->used_len, 4097u);
  EXPECT_EQ(r->status, mem_.Translate(kStatus, 1)->data());
}

TEST_F(RequestTest, WriteRequest) {
  Header(kTypeOut, 0);
  auto r = Parse3(1024, false);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->immediate);
  EXPECT_EQ(r->used_len, 1u);
}

TEST_F(RequestTest, HeaderSplitAcrossDescriptors) {
  Header(kTypeIn, 2);
  auto r = Parse({{kHdr, 5, false}, {kHdr + 5, 11, false}, {kBuf, 512, true}, {kStatus, 1, true}});
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->immediate);
  EXPECT_EQ(r->offset, 1024u);
}

TEST_F(RequestTest, StatusSharingTheDataDescriptor) {
  Header(kTypeIn, 0);
  auto r = Parse({{kHdr, 16, false}, {kBuf, 513, true}});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->data_len, 512u);
  EXPECT_EQ(r->status, mem_.Translate(kBuf + 512, 1)->data());
}

TEST_F(RequestTest, NoWritableStatusIsFatal) {
  Header(kTypeIn, 0);
  EXPECT_FALSE(Parse({{kHdr, 16, false}, {kBuf, 512, false}}).ok());
}

TEST_F(RequestTest, ShortHeaderIsIoErr) {
  EXPECT_EQ(Immediate(Parse({{kHdr, 8, false}, {kStatus, 1, true}})), kStatusIoErr);
}

TEST_F(RequestTest, ReadPastCapacityIsIoErr) {
  Header(kTypeIn, 1024);
  EXPECT_EQ(Immediate(Parse3(512, true)), kStatusIoErr);
}

TEST_F(RequestTest, ReadStraddlingCapacityIsIoErr) {
  Header(kTypeIn, 1023);
  EXPECT_EQ(Immediate(Parse3(1024, true)), kStatusIoErr);
}

TEST_F(RequestTest, HugeSectorDoesNotOverflow) {
  Header(kTypeIn, ~0ull - 1);
  EXPECT_EQ(Immediate(Parse3(1024, true)), kStatusIoErr);
}

TEST_F(RequestTest, UnalignedLengthIsIoErr) {
  Header(kTypeIn, 0);
  EXPECT_EQ(Immediate(Parse3(100, true)), kStatusIoErr);
}

TEST_F(RequestTest, ReadIntoReadableBufferIsIoErr) {
  Header(kTypeIn, 0);
  EXPECT_EQ(Immediate(Parse3(512, false)), kStatusIoErr);
}

TEST_F(RequestTest, WriteFromWritableBufferIsIoErr) {
  Header(kTypeOut, 0);
  EXPECT_EQ(Immediate(Parse3(512, true)), kStatusIoErr);
}

TEST_F(RequestTest, WriteToReadOnlyDiskIsIoErr) {
  limits_.read_only = true;
  Header(kTypeOut, 0);
  EXPECT_EQ(Immediate(Parse3(512, false)), kStatusIoErr);
}

TEST_F(RequestTest, TooManySegmentsIsIoErr) {
  limits_.seg_max = 2;
  Header(kTypeIn, 0);
  EXPECT_EQ(Immediate(Parse({{kHdr, 16, false},
                             {kBuf, 512, true},
                             {kBuf + 512, 512, true},
                             {kBuf + 1024, 512, true},
                             {kStatus, 1, true}})),
            kStatusIoErr);
}

TEST_F(RequestTest, SegmentOverSizeMaxIsIoErr) {
  limits_.size_max = 1024;
  Header(kTypeIn, 0);
  EXPECT_EQ(Immediate(Parse3(2048, true)), kStatusIoErr);
}

TEST_F(RequestTest, UnknownTypeIsUnsupp) {
  Header(0x99, 0);
  EXPECT_EQ(Immediate(Parse({{kHdr, 16, false}, {kStatus, 1, true}})), kStatusUnsupp);
}

TEST_F(RequestTest, FlushNeedsNoData) {
  Header(kTypeFlush, 0);
  auto r = Parse({{kHdr, 16, false}, {kStatus, 1, true}});
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->immediate);
}

TEST_F(RequestTest, GetIdFillsSerial) {
  Header(kTypeGetId, 0);
  auto r = Parse3(20, true);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->used_len, 21u);
  FillDeviceId(*r, "rootfs");
  auto id = *mem_.Translate(kBuf, 20);
  EXPECT_EQ(std::string(reinterpret_cast<char*>(id.data())), "rootfs");
  EXPECT_EQ(id[19], 0);
}

TEST_F(RequestTest, DiscardRanges) {
  Header(kTypeDiscard, 0);
  ASSERT_TRUE(mem_.WriteObj(kBuf, DiscardSegment{8, 16, 0}).ok());
  auto r = Parse({{kHdr, 16, false}, {kBuf, 16, false}, {kStatus, 1, true}});
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->ranges.size(), 1u);
  EXPECT_EQ(r->ranges[0].offset, 4096u);
  EXPECT_EQ(r->ranges[0].len, 8192u);
}

TEST_F(RequestTest, DiscardWithUnmapFlagIsUnsupp) {
  Header(kTypeDiscard, 0);
  ASSERT_TRUE(mem_.WriteObj(kBuf, DiscardSegment{8, 16, kWriteZeroesFlagUnmap}).ok());
  EXPECT_EQ(Immediate(Parse({{kHdr, 16, false}, {kBuf, 16, false}, {kStatus, 1, true}})),
            kStatusUnsupp);
}

TEST_F(RequestTest, WriteZeroesRangePastCapacityIsIoErr) {
  Header(kTypeWriteZeroes, 0);
  ASSERT_TRUE(mem_.WriteObj(kBuf, DiscardSegment{1000, 100, 0}).ok());
  EXPECT_EQ(Immediate(Parse({{kHdr, 16, false}, {kBuf, 16, false}, {kStatus, 1, true}})),
            kStatusIoErr);
}

TEST_F(RequestTest, WriteZeroesPartialSegmentIsIoErr) {
  Header(kTypeWriteZeroes, 0);
  EXPECT_EQ(Immediate(Parse({{kHdr, 16, false}, {kBuf, 12, false}, {kStatus, 1, true}})),
            kStatusIoErr);
}

TEST_F(RequestTest, TooManyDiscardSegmentsIsIoErr) {
  limits_.max_discard_seg = 1;
  Header(kTypeDiscard, 0);
  EXPECT_EQ(Immediate(Parse({{kHdr, 16, false}, {kBuf, 32, false}, {kStatus, 1, true}})),
            kStatusIoErr);
}

}  // namespace
}  // namespace edgevisor::block
