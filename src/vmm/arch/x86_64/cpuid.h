// CPUID for a vCPU: KVM's supported set with per-vCPU fix-ups.
#pragma once

#include <linux/kvm.h>

#include <vector>

namespace edgevisor::x86 {

// Describes vCPU `vcpu_index` of `vcpu_count` as one core (one thread each) of a single socket,
// with APIC ID = vCPU index, matching the MADT:
//  - leaf 1: initial APIC ID, logical-processor count (+HTT), hypervisor present;
//  - leaf 4 (Intel caches): cores per package;
//  - leaves 0xb/0x1f (x2APIC topology): an SMT level of 1 thread, a core level of vcpu_count;
//  - leaves 0x80000008/0x8000001e (AMD): core count, APIC ID size, core and node IDs;
//  - leaf 7: no LA57.
// Leaves that KVM did not report are left absent.
void FixupCpuid(std::vector<kvm_cpuid_entry2>& entries, int vcpu_index, int vcpu_count);

}  // namespace edgevisor::x86
