// The arm64 Image header parser: every field checked against the file (booting.rst).
#include "src/vmm/loader/arm64_image.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/unit/arm64_image_builder.h"

namespace edgevisor {
namespace {

using testing::Arm64ImageSpec;
using testing::BuildArm64Image;
using ::testing::HasSubstr;

std::string Err(const std::vector<uint8_t>& f) {
  auto r = ParseArm64Image(f);
  EXPECT_FALSE(r.ok());
  return std::string(r.status().message());
}

TEST(Arm64ImageTest, ParsesAModernHeader) {
  const auto f = BuildArm64Image({.text_offset = 0, .image_size = 0x20000});
  auto img = ParseArm64Image(f);
  ASSERT_TRUE(img.ok()) << img.status();
  EXPECT_EQ(img->text_offset, 0u);
  EXPECT_EQ(img->image_size, 0x20000u);
  EXPECT_EQ(img->file.size(), f.size());
}

TEST(Arm64ImageTest, LegacyHeaderMeansTextOffset0x80000) {
  auto img = ParseArm64Image(BuildArm64Image({.text_offset = 0, .image_size = 0}));
  ASSERT_TRUE(img.ok()) << img.status();
  EXPECT_EQ(img->text_offset, kArm64LegacyTextOffset);
  EXPECT_EQ(img->image_size, 4096u) << "the file's own size";
}

TEST(Arm64ImageTest, RejectsWhatIsNotAnImage) {
  EXPECT_THAT(Err(std::vector<uint8_t>(63, 0)), HasSubstr("too short"));
  EXPECT_THAT(Err(BuildArm64Image({.magic = 0x464c457f})), HasSubstr("no \"ARM\\x64\" magic"));
  EXPECT_THAT(Err(BuildArm64Image({.flags = 0x3})), HasSubstr("big-endian"));
}

TEST(Arm64ImageTest, RejectsOffsetsAndSizesThatCannotBe) {
  EXPECT_THAT(Err(BuildArm64Image({.text_offset = 0x200000})), HasSubstr("text_offset"));
  EXPECT_THAT(Err(BuildArm64Image({.text_offset = 0x80001})), HasSubstr("text_offset"));
  EXPECT_THAT(Err(BuildArm64Image({.image_size = 0x100})), HasSubstr("smaller than the file"));
  EXPECT_THAT(Err(BuildArm64Image({.image_size = uint64_t{1} << 40})),
              HasSubstr("beyond any kernel"));
}

}  // namespace
}  // namespace edgevisor
