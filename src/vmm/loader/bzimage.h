// The x86 Linux boot protocol's bzImage format (Documentation/arch/x86/boot.rst): a real-mode
// setup part of (setup_sects + 1) * 512 bytes, whose setup header starts at 0x1f1, followed by
// the protected-mode kernel. We enter the kernel at its 64-bit entry point (protocol 2.12+ with
// XLF_KERNEL_64), so the setup code never runs.
//
// The image is user input: every field is checked against the file's real size. Unit-tested
// (tests/unit/vmm/loader/bzimage_test.cc) and fuzzed (tests/fuzz/bzimage_fuzz.cc).
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace edgevisor {

inline constexpr uint32_t kSetupHeaderOffset = 0x1f1;
inline constexpr uint16_t kBootFlag = 0xaa55;
inline constexpr uint32_t kHdrSMagic = 0x53726448;    // "HdrS"
inline constexpr uint16_t kMinBootProtocol = 0x020c;  // 2.12: xloadflags, 64-bit entry
inline constexpr uint16_t kXlfKernel64 = 1 << 0;
inline constexpr uint8_t kLoadedHigh = 1 << 0;

struct BzImage {
  uint16_t protocol = 0;             // e.g. 0x020f
  uint32_t setup_bytes = 0;          // (setup_sects + 1) * 512
  std::vector<uint8_t> header;       // the setup header as in the file: 0x1f1 .. its end
  absl::Span<const uint8_t> kernel;  // the protected-mode kernel (the rest of the file)
  bool relocatable = false;
  uint64_t pref_address = 0;  // where the kernel wants to run (2.10+)
  uint32_t kernel_alignment = 0;
  uint32_t init_size = 0;        // memory the kernel needs from its load address
  uint32_t initrd_addr_max = 0;  // highest address the initrd may end at, inclusive
  uint32_t cmdline_size = 0;     // longest command line, without the NUL
  uint16_t xloadflags = 0;
};

// Recognises a bzImage: the 0xaa55 boot flag at 0x1fe and "HdrS" at 0x202.
bool LooksLikeBzImage(absl::Span<const uint8_t> image);

// Parses and checks the header: protocol >= 2.12, a 64-bit entry point, a loaded-high kernel,
// setup and kernel sizes inside the file, a sane alignment and init size.
absl::StatusOr<BzImage> ParseBzImage(absl::Span<const uint8_t> image);

}  // namespace edgevisor
