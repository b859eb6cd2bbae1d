// Builds arm64 Image files for loader tests: the 64-byte header, then `body` bytes.
#pragma once

#include <cstdint>
#include <cstring>
#include <vector>

namespace edgevisor::testing {

struct Arm64ImageSpec {
  uint64_t text_offset = 0;
  uint64_t image_size = 0x10000;  // 0: leave the field 0 (pre-3.17 kernel)
  uint64_t flags = 0x2;           // little-endian, 4 KiB pages
  uint32_t magic = 0x644d5241;
  size_t body = 4096 - 64;
};

inline std::vector<uint8_t> BuildArm64Image(const Arm64ImageSpec& s) {
  std::vector<uint8_t> f(64 + s.body, 0);
  auto put64 = [&](size_t off, uint64_t v) { std::memcpy(f.data() + off, &v, 8); };
  f[0] = 0x4d;  // "MZ": the EFI stub's first bytes, as a real Image has
  f[1] = 0x5a;
  put64(0x08, s.text_offset);
  put64(0x10, s.image_size);
  put64(0x18, s.flags);
  std::memcpy(f.data() + 0x38, &s.magic, 4);
  for (size_t i = 64; i < f.size(); ++i) f[i] = static_cast<uint8_t>(i);
  return f;
}

}  // namespace edgevisor::testing
