// Guest RAM for loader tests, laid out as the architecture lays it out for a real VM.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>

#include "src/platform/guest_memory.h"
#include "src/vmm/arch/arch.h"

namespace edgevisor::testing {

inline GuestMemory TestRam(uint64_t mib) {
  auto m = GuestMemory::Create(arch::RamLayout(mib << 20));
  EXPECT_TRUE(m.ok()) << m.status();
  return std::move(*m);
}

}  // namespace edgevisor::testing
