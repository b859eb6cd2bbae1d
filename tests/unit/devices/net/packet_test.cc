#include "src/devices/net/packet.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <linux/if_tun.h>

#include <cstring>

#include "src/devices/virtio/virtio_spec.h"

namespace edgevisor::net {
namespace {

using ::testing::HasSubstr;
using namespace virtio_net;  // NOLINT(build/namespaces)
using virtio::Bit;

constexpr uint64_t kAllHost =
    Bit(kFeatureCsum) | Bit(kFeatureHostTso4) | Bit(kFeatureHostTso6) | Bit(kFeatureHostUfo);

std::string Err(const NetHdr& h, uint64_t len, uint64_t features = kAllHost) {
  absl::Status s = ValidateTxHeader(h, len, features);
  return s.ok() ? "OK" : std::string(s.message());
}

TEST(TxHeaderTest, PlainFrameIsFine) { EXPECT_EQ(Err(NetHdr{}, 60, 0), "OK"); }

TEST(TxHeaderTest, ZeroLengthFrameDropped) {
  EXPECT_THAT(Err(NetHdr{}, 0), HasSubstr("too short"));
}

TEST(TxHeaderTest, RuntFrameDropped) { EXPECT_THAT(Err(NetHdr{}, 13), HasSubstr("too short")); }

TEST(TxHeaderTest, OversizedFrameDropped) {
  EXPECT_THAT(Err(NetHdr{}, kMaxFrame + 1), HasSubstr("too long"));
}

TEST(TxHeaderTest, UnknownFlagsDropped) {
  NetHdr h{};
  h.flags = 0x80;
  EXPECT_THAT(Err(h, 60), HasSubstr("flags"));
}

TEST(TxHeaderTest, NeedsCsumWithoutFeatureDropped) {
  NetHdr h{};
  h.flags = kHdrFlagNeedsCsum;
  h.csum_start = 34;
  h.csum_offset = 6;
  EXPECT_THAT(Err(h, 60, 0), HasSubstr("VIRTIO_NET_F_CSUM"));
  EXPECT_EQ(Err(h, 60), "OK");
}

TEST(TxHeaderTest, ChecksumFieldOutsideFrameDropped) {
  NetHdr h{};
  h.flags = kHdrFlagNeedsCsum;
  h.csum_start = 0xfff0;
  h.csum_offset = 0x20;
  EXPECT_THAT(Err(h, 60), HasSubstr("outside the frame"));
}

TEST(TxHeaderTest, BadGsoTypeDropped) {
  NetHdr h{};
  h.gso_type = 2;  // not a valid type
  EXPECT_THAT(Err(h, 60), HasSubstr("unknown gso_type"));
}

TEST(TxHeaderTest, GsoNotNegotiatedDropped) {
  NetHdr h{};
  h.flags = kHdrFlagNeedsCsum;
  h.gso_type = kGsoTcpV4;
  h.gso_size = 1448;
  h.hdr_len = 54;
  EXPECT_THAT(Err(h, 3000, Bit(kFeatureCsum)), HasSubstr("not negotiated"));
  EXPECT_EQ(Err(h, 3000), "OK");
}

TEST(TxHeaderTest, GsoWithoutChecksumDropped) {
  NetHdr h{};
  h.gso_type = kGsoTcpV6;
  h.gso_size = 1448;
  EXPECT_THAT(Err(h, 3000), HasSubstr("NEEDS_CSUM"));
}

TEST(TxHeaderTest, GsoWithZeroSegmentSizeDropped) {
  NetHdr h{};
  h.flags = kHdrFlagNeedsCsum;
  h.gso_type = kGsoUdp;
  h.gso_size = 0;
  EXPECT_THAT(Err(h, 3000), HasSubstr("gso_size 0"));
}

TEST(TxHeaderTest, EcnWithoutFeatureDropped) {
  NetHdr h{};
  h.flags = kHdrFlagNeedsCsum;
  h.gso_type = kGsoTcpV4 | kGsoEcn;
  h.gso_size = 1448;
  EXPECT_THAT(Err(h, 3000), HasSubstr("ECN"));
}

TEST(TxHeaderTest, HeaderSplitOddlyAcrossBuffers) {
  NetHdr h{};
  h.flags = kHdrFlagNeedsCsum;
  h.csum_start = 0x1234;
  h.gso_size = 0xabcd;
  auto* b = reinterpret_cast<uint8_t*>(&h);
  uint8_t a1[1], a2[0], a3[7], a4[100];
  std::memcpy(a1, b, 1);
  std::memcpy(a3, b + 1, 7);
  std::memcpy(a4, b + 8, 4);
  std::vector<iovec> iov = {{a1, 1}, {a2, 0}, {a3, 7}, {a4, 100}};
  NetHdr got{};
  ASSERT_TRUE(GatherTxHeader(iov, &got));
  EXPECT_EQ(std::memcmp(&got, &h, sizeof(h)), 0);
}

TEST(TxHeaderTest, HeaderLongerThanBuffersFails) {
  uint8_t a[11] = {};
  NetHdr got{};
  EXPECT_FALSE(GatherTxHeader({{a, 11}}, &got));
  EXPECT_FALSE(GatherTxHeader({}, &got));
}

TEST(TapOffloadTest, NothingWithoutGuestCsum) {
  EXPECT_EQ(TapOffloadFlags(Bit(kFeatureGuestTso4) | Bit(kFeatureGuestUfo)), 0u);
}

TEST(TapOffloadTest, CsumAlone) { EXPECT_EQ(TapOffloadFlags(Bit(kFeatureGuestCsum)), TUN_F_CSUM); }

TEST(TapOffloadTest, TsoAndUfo) {
  EXPECT_EQ(TapOffloadFlags(Bit(kFeatureGuestCsum) | Bit(kFeatureGuestTso4) |
                            Bit(kFeatureGuestTso6) | Bit(kFeatureGuestUfo)),
            unsigned{TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_UFO});
}

TEST(TapOffloadTest, EcnOnlyWithTso) {
  EXPECT_EQ(TapOffloadFlags(Bit(kFeatureGuestCsum) | Bit(kFeatureGuestEcn)), TUN_F_CSUM);
  EXPECT_EQ(
      TapOffloadFlags(Bit(kFeatureGuestCsum) | Bit(kFeatureGuestEcn) | Bit(kFeatureGuestTso4)),
      unsigned{TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO_ECN});
}

TEST(TapOffloadTest, HostFeaturesDoNotAffectReceive) {
  EXPECT_EQ(TapOffloadFlags(Bit(kFeatureCsum) | Bit(kFeatureHostTso4)), 0u);
}

}  // namespace
}  // namespace edgevisor::net
