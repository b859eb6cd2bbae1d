#include "src/vmm/loader/arm64_image.h"

#include "absl/strings/str_format.h"
#include "src/vmm/loader/read.h"

namespace edgevisor {
namespace {

constexpr uint64_t kFlagBigEndian = 1 << 0;
constexpr uint64_t kMaxTextOffset = kArm64ImageAlign;  // it is an offset inside the 2 MiB unit
constexpr uint64_t kMaxImageSize = uint64_t{1} << 32;  // no arm64 kernel needs 4 GiB

}  // namespace

absl::StatusOr<Arm64Image> ParseArm64Image(absl::Span<const uint8_t> image) {
  if (image.size() < kArm64ImageHeaderSize) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%d bytes is too short for an arm64 Image (the header alone is 64)", image.size()));
  }
  if (ReadField<uint32_t>(image, 0x38) != kArm64ImageMagic) {
    return absl::InvalidArgumentError(
        "not an arm64 Image: no \"ARM\\x64\" magic at offset 0x38 (a compressed vmlinuz or an "
        "ELF vmlinux needs unpacking to the raw Image first)");
  }
  Arm64Image img;
  img.text_offset = ReadField<uint64_t>(image, 0x08);
  img.image_size = ReadField<uint64_t>(image, 0x10);
  img.flags = ReadField<uint64_t>(image, 0x18);
  img.file = image;
  if (img.image_size == 0) {
    // Pre-3.17 kernel: no size, fixed offset.
    img.text_offset = kArm64LegacyTextOffset;
    img.image_size = image.size();
  }
  if (img.flags & kFlagBigEndian) {
    return absl::InvalidArgumentError("the Image is a big-endian kernel; only little-endian runs");
  }
  if (img.text_offset >= kMaxTextOffset || img.text_offset % 4096 != 0) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "text_offset 0x%x is not a page-aligned offset below 2 MiB", img.text_offset));
  }
  if (img.image_size > kMaxImageSize) {
    return absl::InvalidArgumentError(
        absl::StrFormat("image_size 0x%x is beyond any kernel's size", img.image_size));
  }
  if (img.image_size < image.size()) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "image_size 0x%x is smaller than the file (0x%x bytes)", img.image_size, image.size()));
  }
  return img;
}

}  // namespace edgevisor
