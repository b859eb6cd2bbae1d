// CPUID for a vCPU: KVM's supported set with per-vCPU fix-ups.
#pragma once

#include <linux/kvm.h>

#include <vector>

namespace edgevisor::x86 {

// Sets the APIC ID and logical-processor count in leaf 1, the x2APIC ID in leaves 0xb/0x1f, and
// the hypervisor-present bit, so each vCPU sees who it is and that it runs under a hypervisor.
void FixupCpuid(std::vector<kvm_cpuid_entry2>& entries, int vcpu_index, int vcpu_count);

}  // namespace edgevisor::x86
