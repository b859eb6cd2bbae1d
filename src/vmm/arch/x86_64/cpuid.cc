#include "src/vmm/arch/x86_64/cpuid.h"

#include <algorithm>
#include <cstdint>

namespace edgevisor::x86 {
namespace {

// Bits needed to number `n` items (0 for 1).
uint32_t IdBits(uint32_t n) {
  uint32_t bits = 0;
  while ((1u << bits) < n) ++bits;
  return bits;
}

constexpr uint32_t kLevelSmt = 1;
constexpr uint32_t kLevelCore = 2;

}  // namespace

void FixupCpuid(std::vector<kvm_cpuid_entry2>& entries, int vcpu_index, int vcpu_count) {
  const auto id = static_cast<uint32_t>(vcpu_index);
  const auto count = static_cast<uint32_t>(std::clamp(vcpu_count, 1, 255));
  const uint32_t core_bits = IdBits(count);
  for (kvm_cpuid_entry2& e : entries) {
    switch (e.function) {
      case 1:
        e.ebx = (e.ebx & 0x0000ffff) | (count << 16) | (id << 24);
        e.ecx |= 1u << 31;  // hypervisor present
        // HTT: the count in EBX[23:16] is valid (more than one logical processor).
        e.edx = count > 1 ? (e.edx | (1u << 28)) : (e.edx & ~(1u << 28));
        break;
      case 4:
        // Deterministic cache parameters: EAX[31:26] = addressable core IDs per package - 1.
        // Each cache is private to its core here: EAX[25:14] (threads sharing it - 1) = 0,
        // except the last level, shared by the package.
        if ((e.eax & 0x1f) != 0) {
          const bool shared = ((e.eax >> 5) & 0x7) >= 3;  // cache level 3
          e.eax =
              (e.eax & 0x3fff) | ((shared ? count - 1 : 0) << 14) | (((1u << core_bits) - 1) << 26);
        }
        break;
      case 7:
        // No 5-level paging (LA57): a microVM never needs 57-bit addresses, and a kernel built
        // with CONFIG_X86_5LEVEL that sees LA57 switches paging modes at every boot through a
        // 32-bit trampoline, which software-virtualized hosts must emulate instruction by
        // instruction (a Debian kernel stalls there for minutes on PVM).
        if (e.index == 0) e.ecx &= ~(1u << 16);
        break;
      case 0xb:
      case 0x1f:
        // EAX: bits to shift the x2APIC ID right to reach the next level; EBX: logical
        // processors at this level; ECX: level number and type; EDX: x2APIC ID.
        if (e.index == 0) {
          e.eax = 0;
          e.ebx = 1;
          e.ecx = (kLevelSmt << 8) | e.index;
        } else if (e.index == 1) {
          e.eax = core_bits;
          e.ebx = count;
          e.ecx = (kLevelCore << 8) | e.index;
        } else {
          e.eax = e.ebx = 0;
          e.ecx = e.index;  // invalid level: the end of the list
        }
        e.edx = id;
        break;
      case 0x80000008:
        // ECX[7:0]: cores - 1; ECX[15:12]: APIC ID bits for the cores.
        e.ecx = (e.ecx & ~0xf0ffu) | (core_bits << 12) | (count - 1);
        break;
      case 0x8000001e:
        // Extended APIC ID, compute unit (core) ID with one thread per core, node 0.
        e.eax = id;
        e.ebx = (e.ebx & ~0xffffu) | (id & 0xff);
        e.ecx &= ~0x7ffu;
        break;
      default:
        break;
    }
  }
}

}  // namespace edgevisor::x86
