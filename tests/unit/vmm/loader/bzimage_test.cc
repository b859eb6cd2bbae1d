#include "src/vmm/loader/bzimage.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/unit/bzimage_builder.h"

namespace edgevisor {
namespace {

using testing::BuildBzImage;
using testing::BzParams;
using ::testing::HasSubstr;

std::string Error(const std::vector<uint8_t>& image) {
  auto bz = ParseBzImage(image);
  EXPECT_FALSE(bz.ok());
  return bz.ok() ? "" : std::string(bz.status().message());
}

TEST(BzImageTest, ParsesTheSetupHeader) {
  auto image = BuildBzImage({});
  ASSERT_TRUE(LooksLikeBzImage(image));
  auto bz = ParseBzImage(image);
  ASSERT_TRUE(bz.ok()) << bz.status();
  EXPECT_EQ(bz->protocol, 0x020f);
  EXPECT_EQ(bz->setup_bytes, 5u * 512);
  EXPECT_EQ(bz->kernel.size(), 8192u);
  EXPECT_EQ(bz->kernel[0], 1) << "the kernel starts right after the setup sectors";
  EXPECT_EQ(bz->pref_address, 0x1000000u);
  EXPECT_EQ(bz->kernel_alignment, 0x200000u);
  EXPECT_EQ(bz->cmdline_size, 2047u);
  EXPECT_EQ(bz->header.size(), 0x202u + 0x6a - 0x1f1);
}

TEST(BzImageTest, SetupSectsZeroMeansFour) {
  BzParams p;
  p.setup_sects = 0;
  auto bz = ParseBzImage(BuildBzImage(p));
  ASSERT_TRUE(bz.ok()) << bz.status();
  EXPECT_EQ(bz->setup_bytes, 5u * 512);
}

TEST(BzImageTest, TrailingSignatureIsLoadedToo) {
  auto image = BuildBzImage({});
  image.resize(image.size() + 1472, 0x5a);  // as in Debian's signed kernels
  auto bz = ParseBzImage(image);
  ASSERT_TRUE(bz.ok()) << bz.status();
  EXPECT_EQ(bz->kernel.size(), 8192u + 1472);
}

TEST(BzImageTest, RejectsWhatIsNotABzImage) {
  EXPECT_FALSE(LooksLikeBzImage(std::vector<uint8_t>(100)));
  EXPECT_THAT(Error(std::vector<uint8_t>(4096)), HasSubstr("not a bzImage"));
  auto elf = BuildBzImage({});
  elf[0x1fe] = 0;
  EXPECT_THAT(Error(elf), HasSubstr("not a bzImage"));
}

TEST(BzImageTest, RejectsBadHeaders) {
  BzParams p;
  p.version = 0x020b;
  EXPECT_THAT(Error(BuildBzImage(p)), HasSubstr("older than 2.12"));
  p = {};
  p.jump_len = 0x20;
  EXPECT_THAT(Error(BuildBzImage(p)), HasSubstr("setup header ends"));
  p = {};
  p.loadflags = 0;
  EXPECT_THAT(Error(BuildBzImage(p)), HasSubstr("loaded-high"));
  p = {};
  p.xloadflags = 0;
  EXPECT_THAT(Error(BuildBzImage(p)), HasSubstr("64-bit entry"));
  p = {};
  p.syssize = 100000;
  EXPECT_THAT(Error(BuildBzImage(p)), HasSubstr("syssize"));
  p = {};
  p.kernel_alignment = 0x3000;
  EXPECT_THAT(Error(BuildBzImage(p)), HasSubstr("kernel_alignment"));
  p = {};
  p.init_size = 16;
  EXPECT_THAT(Error(BuildBzImage(p)), HasSubstr("init_size"));
}

TEST(BzImageTest, RejectsTruncatedFiles) {
  auto image = BuildBzImage({});
  image.resize(5 * 512);  // setup only: no kernel
  EXPECT_THAT(Error(image), HasSubstr("outside the"));
  image.resize(0x250);  // inside the header
  EXPECT_THAT(Error(image), HasSubstr("setup header ends"));
  BzParams p;
  p.setup_sects = 200;  // setup larger than the file
  auto big = BuildBzImage(p);
  big.resize(4096);
  EXPECT_THAT(Error(big), HasSubstr("setup_sects"));
}

}  // namespace
}  // namespace edgevisor
