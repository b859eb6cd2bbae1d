// Per-vCPU CPUID topology: what Linux reads to number CPUs and cores, consistent with the MADT.
#include "src/vmm/arch/x86_64/cpuid.h"

#include <gtest/gtest.h>

namespace edgevisor::x86 {
namespace {

kvm_cpuid_entry2 Leaf(uint32_t function, uint32_t index = 0) {
  kvm_cpuid_entry2 e{};
  e.function = function;
  e.index = index;
  e.eax = e.ebx = e.ecx = e.edx = 0xdeadbeef;
  return e;
}

const kvm_cpuid_entry2& Get(const std::vector<kvm_cpuid_entry2>& v, uint32_t f, uint32_t i = 0) {
  for (const auto& e : v) {
    if (e.function == f && e.index == i) return e;
  }
  ADD_FAILURE() << "no leaf " << f;
  return v.front();
}

std::vector<kvm_cpuid_entry2> Fixed(int index, int count) {
  std::vector<kvm_cpuid_entry2> v = {Leaf(1),          Leaf(0xb, 0),  Leaf(0xb, 1),
                                     Leaf(0xb, 2),     Leaf(0x1f, 1), Leaf(0x80000008),
                                     Leaf(0x8000001e), Leaf(4, 0)};
  v.back().eax = 0x121;  // level 1 data cache
  FixupCpuid(v, index, count);
  return v;
}

TEST(CpuidTest, Leaf1CarriesTheApicIdAndCount) {
  const auto v = Fixed(3, 4);
  EXPECT_EQ(Get(v, 1).ebx >> 24, 3u) << "initial APIC ID = vCPU index = MADT APIC ID";
  EXPECT_EQ((Get(v, 1).ebx >> 16) & 0xff, 4u);
  EXPECT_TRUE(Get(v, 1).edx & (1u << 28)) << "HTT";
  EXPECT_TRUE(Get(v, 1).ecx & (1u << 31)) << "hypervisor present";
  EXPECT_FALSE(Fixed(0, 1)[0].edx & (1u << 28)) << "no HTT for one vCPU";
}

TEST(CpuidTest, ExtendedTopologyIsOneThreadPerCoreAllCoresInOneSocket) {
  const auto v = Fixed(2, 3);
  const auto& smt = Get(v, 0xb, 0);
  EXPECT_EQ(smt.eax, 0u);
  EXPECT_EQ(smt.ebx, 1u);
  EXPECT_EQ(smt.ecx, 0x100u) << "level 0, type SMT";
  const auto& core = Get(v, 0xb, 1);
  EXPECT_EQ(core.eax, 2u) << "3 cores need 2 ID bits";
  EXPECT_EQ(core.ebx, 3u);
  EXPECT_EQ(core.ecx, 0x201u) << "level 1, type core";
  EXPECT_EQ(Get(v, 0xb, 2).ecx, 2u) << "level 2 is invalid: the end";
  EXPECT_EQ(Get(v, 0xb, 2).ebx, 0u);
  for (const auto& e : v) {
    if (e.function == 0xb || e.function == 0x1f) {
      EXPECT_EQ(e.edx, 2u) << "x2APIC ID";
    }
  }
}

TEST(CpuidTest, AmdCoreCountAndIds) {
  const auto v = Fixed(1, 2);
  EXPECT_EQ(Get(v, 0x80000008).ecx & 0xff, 1u) << "NC = cores - 1";
  EXPECT_EQ((Get(v, 0x80000008).ecx >> 12) & 0xf, 1u) << "ApicIdSize";
  EXPECT_EQ(Get(v, 0x8000001e).eax, 1u);
  EXPECT_EQ(Get(v, 0x8000001e).ebx & 0xffff, 1u) << "core 1, one thread per core";
  EXPECT_EQ(Get(v, 0x8000001e).ecx & 0x7ff, 0u) << "node 0";
}

TEST(CpuidTest, IntelCacheLeafCountsCores) {
  const auto v = Fixed(0, 4);
  EXPECT_EQ(Get(v, 4).eax >> 26, 3u) << "addressable cores per package - 1";
  EXPECT_EQ((Get(v, 4).eax >> 14) & 0xfff, 0u) << "L1 is private to a core";
  EXPECT_EQ(Get(v, 4).eax & 0x3fff, 0x121u) << "cache type and level kept";
}

}  // namespace
}  // namespace edgevisor::x86
