// The arm64 Linux kernel Image format (Documentation/arch/arm64/booting.rst): a 64-byte header
// at the start of the file, then the kernel, entered at its first byte with the MMU off and
// x0 = the device tree's physical address. The header says how far from a 2 MiB-aligned base
// the image must sit (text_offset) and how much memory it needs from there (image_size).
//
// The image is user input: every field is checked against the file. Unit-tested
// (tests/unit/vmm/loader/arm64_image_test.cc) and fuzzed (tests/fuzz/arm64_image_fuzz.cc).
#pragma once

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace edgevisor {

inline constexpr uint32_t kArm64ImageMagic = 0x644d5241;  // "ARM\x64" at offset 0x38
inline constexpr size_t kArm64ImageHeaderSize = 64;
inline constexpr uint64_t kArm64ImageAlign = 2 << 20;
// Kernels before 3.17 leave image_size 0 and expect text_offset 0x80000.
inline constexpr uint64_t kArm64LegacyTextOffset = 0x80000;

struct Arm64Image {
  uint64_t text_offset = 0;  // from a 2 MiB-aligned base
  uint64_t image_size = 0;   // memory the kernel needs from its load address (>= file size)
  uint64_t flags = 0;
  absl::Span<const uint8_t> file;
};

// Checks the magic, little-endian kernel, offsets and sizes against the file.
absl::StatusOr<Arm64Image> ParseArm64Image(absl::Span<const uint8_t> image);

}  // namespace edgevisor
