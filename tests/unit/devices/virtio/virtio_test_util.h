// Builds descriptor tables and rings in a small guest memory for virtio unit tests.
#pragma once

#include <gtest/gtest.h>

#include "src/devices/virtio/virtio_spec.h"
#include "src/vmm/guest_memory.h"

namespace edgevisor::virtio::testing {

inline constexpr uint64_t kRamSize = 1 << 20;
inline constexpr uint64_t kDescTable = 0x1000;
inline constexpr uint64_t kAvail = 0x3000;
inline constexpr uint64_t kUsed = 0x4000;
inline constexpr uint64_t kIndirect = 0x6000;
inline constexpr uint64_t kData = 0x10000;

inline GuestMemory TestMemory() {
  auto m = GuestMemory::Create({{0, kRamSize}});
  EXPECT_TRUE(m.ok());
  return std::move(*m);
}

inline void PutDesc(const GuestMemory& mem, uint64_t table, uint16_t i, uint64_t addr, uint32_t len,
                    uint16_t flags, uint16_t next) {
  ASSERT_TRUE(mem.WriteObj(table + i * sizeof(Desc), Desc{addr, len, flags, next}).ok());
}

}  // namespace edgevisor::virtio::testing
