// Builds synthetic bzImages for tests: a setup part with a protocol-2.15 setup header, then the
// "protected-mode kernel" bytes.
#pragma once

#include <cstdint>
#include <cstring>
#include <vector>

namespace edgevisor::testing {

struct BzParams {
  uint8_t setup_sects = 4;
  uint16_t version = 0x020f;
  uint8_t jump_len = 0x6a;  // header ends at 0x202 + this
  uint8_t loadflags = 0x01;
  uint16_t xloadflags = 0x03;
  uint32_t kernel_bytes = 8192;
  uint32_t syssize = 0;  // 0: kernel_bytes / 16
  uint32_t initrd_addr_max = 0x7fffffff;
  uint32_t kernel_alignment = 0x200000;
  uint32_t cmdline_size = 2047;
  uint64_t pref_address = 0x1000000;
  uint32_t init_size = 0x100000;
};

template <typename T>
void PutAt(std::vector<uint8_t>& v, size_t off, T x) {
  std::memcpy(v.data() + off, &x, sizeof(T));
}

inline std::vector<uint8_t> BuildBzImage(const BzParams& p) {
  const size_t setup = ((p.setup_sects ? p.setup_sects : 4) + 1) * 512u;  // 0 means 4
  std::vector<uint8_t> v(setup + p.kernel_bytes, 0);
  v[0x1f1] = p.setup_sects;
  PutAt<uint32_t>(v, 0x1f4, p.syssize ? p.syssize : p.kernel_bytes / 16);
  PutAt<uint16_t>(v, 0x1fe, 0xaa55);
  v[0x200] = 0xeb;  // jmp rel8
  v[0x201] = p.jump_len;
  PutAt<uint32_t>(v, 0x202, 0x53726448);
  PutAt<uint16_t>(v, 0x206, p.version);
  v[0x211] = p.loadflags;
  PutAt<uint32_t>(v, 0x22c, p.initrd_addr_max);
  PutAt<uint32_t>(v, 0x230, p.kernel_alignment);
  v[0x234] = 1;  // relocatable
  PutAt<uint16_t>(v, 0x236, p.xloadflags);
  PutAt<uint32_t>(v, 0x238, p.cmdline_size);
  PutAt<uint64_t>(v, 0x258, p.pref_address);
  PutAt<uint32_t>(v, 0x260, p.init_size);
  for (uint32_t i = 0; i < p.kernel_bytes; ++i) v[setup + i] = static_cast<uint8_t>(i * 7 + 1);
  return v;
}

}  // namespace edgevisor::testing
