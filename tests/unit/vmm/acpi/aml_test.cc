// The AML encoder and table framing, byte for byte against the ACPI specification's encodings.
#include "src/vmm/acpi/aml.h"

#include <gtest/gtest.h>

#include "src/vmm/acpi/sdt.h"

namespace edgevisor::acpi {
namespace {

using aml::Bytes;

TEST(AmlTest, PkgLengthCountsItselfAndGrowsAtTheSpecBoundaries) {
  EXPECT_EQ(aml::PkgLength(0), Bytes({0x01}));
  EXPECT_EQ(aml::PkgLength(62), Bytes({0x3f})) << "63 is the largest one-byte length";
  // 63 body bytes + 2 length bytes = 65 = 0x41: lead 0x40 | low nibble 1, then 0x41 >> 4.
  EXPECT_EQ(aml::PkgLength(63), Bytes({0x41, 0x04}));
  // 4093 + 2 = 4095 still fits two bytes (12 bits); 4094 + 3 = 4097 needs three.
  EXPECT_EQ(aml::PkgLength(4093), Bytes({0x4f, 0xff}));
  EXPECT_EQ(aml::PkgLength(4094), Bytes({0x81, 0x00, 0x01}));
}

TEST(AmlTest, IntegersUseTheShortestEncoding) {
  EXPECT_EQ(aml::Integer(0), Bytes({0x00}));
  EXPECT_EQ(aml::Integer(1), Bytes({0x01}));
  EXPECT_EQ(aml::Integer(5), Bytes({0x0a, 0x05}));
  EXPECT_EQ(aml::Integer(0x3f8), Bytes({0x0b, 0xf8, 0x03}));
  EXPECT_EQ(aml::Integer(0xd0001000), Bytes({0x0c, 0x00, 0x10, 0x00, 0xd0}));
  EXPECT_EQ(aml::Integer(0x100000000), Bytes({0x0e, 0, 0, 0, 0, 1, 0, 0, 0}));
}

TEST(AmlTest, EisaIdIsCompressed) {
  // EISAID("PNP0501") is 0x0105D041 (as every BIOS DSDT spells it).
  EXPECT_EQ(aml::EisaId("PNP0501"), Bytes({0x0c, 0x41, 0xd0, 0x05, 0x01}));
}

TEST(AmlTest, NameStringsPadSegmentsAndPrefixPaths) {
  EXPECT_EQ(aml::NameString("_SB"), Bytes({'_', 'S', 'B', '_'}));
  EXPECT_EQ(aml::NameString("\\_S5_"), Bytes({'\\', '_', 'S', '5', '_'}));
  EXPECT_EQ(aml::NameString("\\_SB.COM1"),
            Bytes({'\\', 0x2e, '_', 'S', 'B', '_', 'C', 'O', 'M', '1'}));
}

TEST(AmlTest, ResourceTemplateEndsWithAnEndTag) {
  const Bytes rt =
      aml::ResourceTemplate({aml::Memory32Fixed(0xd0001000, 0x1000), aml::Interrupt(5)});
  // BufferOp, PkgLength, BufferSize (byte 12 + 9 + 2 = 23), descriptors, End Tag.
  ASSERT_EQ(rt.size(), 1u + 1u + 2u + 12u + 9u + 2u);
  EXPECT_EQ(rt[0], 0x11);
  EXPECT_EQ(rt[2], 0x0a);
  EXPECT_EQ(rt[3], 23);
  EXPECT_EQ(rt[4], 0x86) << "Memory32Fixed";
  EXPECT_EQ(rt[16], 0x89) << "Extended Interrupt";
  EXPECT_EQ(rt[19], 0x03) << "consumer, edge, active high";
  EXPECT_EQ(rt[21], 5);
  EXPECT_EQ(rt[rt.size() - 2], 0x79);
}

TEST(SdtTest, FinishSetsLengthAndChecksum) {
  Sdt t("TEST", 1);
  t.U32(0xdeadbeef).U8(7);
  const Bytes b = t.Finish();
  ASSERT_EQ(b.size(), kSdtHeaderSize + 5);
  EXPECT_EQ(b[4], kSdtHeaderSize + 5);
  uint8_t sum = 0;
  for (uint8_t x : b) sum = static_cast<uint8_t>(sum + x);
  EXPECT_EQ(sum, 0);
}

TEST(SdtTest, RsdpHasBothChecksums) {
  const Bytes r = Rsdp(0xe0040);
  ASSERT_EQ(r.size(), kRsdpSize);
  uint8_t first = 0, all = 0;
  for (size_t i = 0; i < r.size(); ++i) {
    if (i < 20) first = static_cast<uint8_t>(first + r[i]);
    all = static_cast<uint8_t>(all + r[i]);
  }
  EXPECT_EQ(first, 0);
  EXPECT_EQ(all, 0);
  EXPECT_EQ(r[15], 2) << "revision 2: the XSDT address is valid";
  EXPECT_EQ(r[24], 0x40);
  EXPECT_EQ(r[25], 0x00);
  EXPECT_EQ(r[26], 0x0e);
}

}  // namespace
}  // namespace edgevisor::acpi
