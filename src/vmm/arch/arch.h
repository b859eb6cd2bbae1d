// What the architecture-neutral builder asks of each architecture (src/vmm/arch/<arch>/).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "src/base/fd.h"
#include "src/platform/guest_memory.h"
#include "src/platform/kvm.h"
#include "src/platform/vcpu.h"
#include "src/vmm/config/boot_protocol.h"
#include "src/vmm/config/vm_config.h"

namespace edgevisor::arch {

// Where the guest starts and what it is handed.
struct BootEntry {
  enum class Protocol {
    kPvh,         // x86: 32-bit protected mode, paging off, EBX -> hvm_start_info
    kLinux64,     // x86: the Linux 64-bit boot protocol, long mode, RSI -> boot_params
    kArm64Image,  // aarch64: the Image at entry, MMU off, x0 -> the device tree
  };
  Protocol protocol = Protocol::kPvh;
  uint64_t entry = 0;      // guest-physical entry point
  uint64_t boot_info = 0;  // hvm_start_info (PVH), boot_params (Linux) or FDT (arm64) address
  // What a device tree's /chosen repeats (aarch64).
  std::string cmdline;
  uint64_t initrd_addr = 0;
  uint64_t initrd_size = 0;
};

// Per-architecture state that lives as long as the VM.
struct ArchVm {
  UniqueFd irqchip;          // aarch64: the vGIC device
  UniqueFd its;              // aarch64: the GICv3 ITS, where KVM has one (invalid otherwise)
  int irqchip_version = 0;   // aarch64: 2 or 3 (GICv2 / GICv3)
  uint32_t vcpu_target = 0;  // aarch64: KVM_ARM_PREFERRED_TARGET
  // aarch64: the features every vCPU gets (SetupVm's choice); none elsewhere.
  Arm64CpuFeatures cpu{.pmu = false, .sve = false, .ptrauth = false};
};

// Guest RAM ranges for `mem_bytes` of RAM, leaving this architecture's MMIO holes free.
std::vector<GuestRange> RamLayout(uint64_t mem_bytes);

// VM-wide setup that must precede vCPU creation (in-kernel irqchip, TSS, ...), for MACHINE's
// vCPUs, its GIC (aarch64: 0 is the best the host has) and its aarch64 vCPU features: each
// where the host offers it, or, with REQUIRE_FEATURES (a restore), all of them or an error.
absl::StatusOr<ArchVm> SetupVm(const Vm& vm, const MachineConfig& machine,
                               bool require_features = false);

// VM-wide setup that must follow the creation of every vCPU (aarch64: vGIC initialization, then
// each vCPU's PMU).
absl::Status FinishVm(const Vm& vm, const ArchVm& arch,
                      absl::Span<const std::unique_ptr<Vcpu>> vcpus);

// Loads the kernel image (and the initrd, which may be empty) into guest memory and writes the
// boot information. x86_64 takes an ELF with a PVH note (PVH boot), a vmlinux ELF without one,
// or a bzImage (both through the Linux 64-bit boot protocol).
// `protocol` forces one protocol; the image must support it.
absl::StatusOr<BootEntry> LoadKernel(absl::Span<const uint8_t> kernel, const std::string& cmdline,
                                     absl::Span<const uint8_t> initrd, const GuestMemory& mem,
                                     BootProtocol protocol = BootProtocol::kAuto);

// Per-vCPU setup: CPUID/registers for the boot vCPU, topology for all.
absl::Status SetupVcpu(const Kvm& kvm, const Vcpu& vcpu, int vcpu_count, const BootEntry& boot,
                       const GuestMemory& mem, const ArchVm& arch);

#if defined(__aarch64__)
// KVM_ARM_VCPU_INIT with edgevisor's features (PSCI 0.2; secondaries powered off): the part of
// SetupVcpu a restored vCPU needs before its registers are written back.
absl::Status InitVcpu(const Vcpu& vcpu, const ArchVm& arch);
#endif

#if defined(__x86_64__)
// The CPUID vCPU INDEX of VCPU_COUNT is given: KVM's supported set with the topology and
// hypervisor bits. A snapshot records it (KVM_GET_CPUID2 may answer more than was set).
absl::StatusOr<std::vector<kvm_cpuid_entry2>> GuestCpuid(const Kvm& kvm, int index, int vcpu_count);
#endif

// Where the index-th virtio-mmio device lives and which GSI it interrupts on.
struct MmioSlot {
  uint64_t base;
  uint32_t gsi;
};
inline constexpr uint32_t kVirtioMmioSize = 0x1000;
MmioSlot VirtioMmioSlot(size_t index);

// Whether a guest may also learn the virtio-mmio slots from the kernel command line
// (virtio_mmio.device=). x86_64: yes (ACPI lists them too). aarch64: no; the device tree lists
// them, and naming them on the command line as well would make a kernel with
// CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES register each one twice (Firecracker does the same).
bool VirtioSlotsOnCmdline();

// Writes the description of the machine that the guest discovers it through (x86_64: the ACPI
// tables, with the vCPUs, the IOAPIC, the legacy devices and the virtio-mmio slots), after
// LoadKernel, and points the boot information at it.
absl::Status WritePlatformDescription(const GuestMemory& mem, int vcpus,
                                      absl::Span<const MmioSlot> virtio, const BootEntry& boot,
                                      const ArchVm& arch);

// The number KVM_IRQ_LINE takes for a legacy device's interrupt (x86: the ISA IRQ / GSI;
// aarch64: the SPI, encoded with its type).
uint32_t IrqLine(uint32_t irq);

// The boot-timer device's MMIO address (Firecracker's, so existing guest init scripts work).
uint64_t BootTimerAddress();

}  // namespace edgevisor::arch
