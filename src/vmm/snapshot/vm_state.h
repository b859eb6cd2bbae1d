// The VM's state in a snapshot, as typed values, and its JSON form (CBOR in the state file).
// Parse checks every field of a loaded state and names the first bad one
// ("vcpus[1].regs: must be a 144-byte binary"), so nothing reaches KVM or a device unchecked.
// Device state stays JSON here: each device's LoadState checks its own.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "src/platform/kvm.h"
#include "src/platform/vcpu.h"
#include "src/platform/vgic_state.h"
#include "src/vmm/config/vm_config.h"

namespace edgevisor::snapshot {

using Json = nlohmann::json;

struct VmState {
  // What to build again: machine, drives (their paths), network interfaces (their TAPs), and
  // the exit behaviour. The kernel and command line are not needed: they are in guest memory.
  VmConfig config;
  uint64_t mem_bytes = 0;  // guest RAM, the memory file's expected length
  std::vector<VcpuState> vcpus;
#if defined(__x86_64__)
  Vm::IrqchipState irqchip;
#elif defined(__aarch64__)
  GicState gic;
#endif
  Json uart;                 // Uart16550::SaveState
  Json i8042;                // x86_64 only; null elsewhere
  Json rtc;                  // aarch64: Pl031::SaveState; null elsewhere
  std::vector<Json> virtio;  // MmioTransport::SaveState, one per slot in slot order
};

Json ToJson(const VmState& s);
absl::StatusOr<VmState> Parse(const Json& j);

#if defined(__x86_64__)
// CPUID feature words that the snapshot's guest saw but this host's KVM cannot give (empty: all
// there). Each entry reads "leaf 0x7.0 ebx: 0x..." with the missing bits.
std::vector<std::string> MissingCpuFeatures(const std::vector<kvm_cpuid_entry2>& guest,
                                            const std::vector<kvm_cpuid_entry2>& host);
#endif

}  // namespace edgevisor::snapshot
