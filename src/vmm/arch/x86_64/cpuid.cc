#include "src/vmm/arch/x86_64/cpuid.h"

#include <algorithm>
#include <cstdint>

namespace edgevisor::x86 {

void FixupCpuid(std::vector<kvm_cpuid_entry2>& entries, int vcpu_index, int vcpu_count) {
  const auto id = static_cast<uint32_t>(vcpu_index);
  const auto count = static_cast<uint32_t>(std::min(vcpu_count, 255));
  for (kvm_cpuid_entry2& e : entries) {
    switch (e.function) {
      case 1:
        e.ebx = (e.ebx & 0x0000ffff) | (count << 16) | (id << 24);
        e.ecx |= 1u << 31;                      // hypervisor present
        if (vcpu_count > 1) e.edx |= 1u << 28;  // HTT: the count in EBX[23:16] is valid
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
        e.edx = id;  // x2APIC ID
        break;
      default:
        break;
    }
  }
}

}  // namespace edgevisor::x86
