// x86_64 implementation of src/vmm/arch/arch.h.
#include <elf.h>
#include <sys/ioctl.h>

#include <algorithm>

#include "absl/strings/str_format.h"
#include "src/base/errors.h"
#include "src/vmm/arch/arch.h"
#include "src/vmm/arch/x86_64/acpi.h"
#include "src/vmm/arch/x86_64/cpuid.h"
#include "src/vmm/arch/x86_64/layout.h"
#include "src/vmm/arch/x86_64/linux_boot.h"
#include "src/vmm/arch/x86_64/pvh.h"
#include "src/vmm/loader/elf.h"

namespace edgevisor::arch {

using namespace edgevisor::x86;  // NOLINT(build/namespaces): this file is the x86 glue

namespace {

// Flat GDT. PVH enters with the 32-bit code selector 0x08 and data 0x10; the Linux 64-bit
// protocol wants __BOOT_CS = 0x10 (64-bit code) and __BOOT_DS = 0x18.
constexpr uint64_t kGdt[] = {0, 0x00cf9b000000ffffull, 0x00cf93000000ffffull,
                             0x00cf93000000ffffull};
constexpr uint64_t kGdt64[] = {0, 0, 0x00af9b000000ffffull, 0x00cf93000000ffffull};
constexpr uint64_t kBootAreaEnd = kCmdlineAddr + kCmdlineMax;  // boot structures live below this

kvm_segment FlatSegment(uint16_t selector, uint8_t type, bool long_mode = false) {
  kvm_segment s{};
  s.base = 0;
  s.limit = 0xffffffff;
  s.selector = selector;
  s.type = type;
  s.present = 1;
  s.dpl = 0;
  s.db = long_mode ? 0 : 1;
  s.s = 1;
  s.l = long_mode ? 1 : 0;
  s.g = 1;
  return s;
}

BootEntry Entry(BootEntry::Protocol protocol, uint64_t entry, uint64_t boot_info) {
  BootEntry b;
  b.protocol = protocol;
  b.entry = entry;
  b.boot_info = boot_info;
  return b;
}

}  // namespace

std::vector<GuestRange> RamLayout(uint64_t mem_bytes) {
  if (mem_bytes <= kMmioHoleStart) return {{0, mem_bytes}};
  return {{0, kMmioHoleStart}, {kMmioHoleEnd, mem_bytes - kMmioHoleStart}};
}

absl::StatusOr<ArchVm> SetupVm(const Vm& vm, const MachineConfig& machine, bool) {
  if (machine.gic != 0) return UsageError("--gic: x86_64 has no GIC");
  // Intel VMX needs these two pages reserved before the irqchip; AMD ignores them.
  if (ioctl(vm.fd(), KVM_SET_TSS_ADDR, kTssAddr) < 0) return ErrnoError("KVM_SET_TSS_ADDR");
  uint64_t identity = kIdentityMapAddr;
  if (ioctl(vm.fd(), KVM_SET_IDENTITY_MAP_ADDR, &identity) < 0) {
    return ErrnoError("KVM_SET_IDENTITY_MAP_ADDR");
  }
  // In-kernel PIC + IOAPIC + LAPICs: interrupts (serial now, irqfd later) never need a vCPU exit.
  if (ioctl(vm.fd(), KVM_CREATE_IRQCHIP, 0) < 0) return ErrnoError("KVM_CREATE_IRQCHIP");
  // In-kernel PIT (i8254) on IRQ 0, for guests that calibrate or tick with it. The speaker
  // port stays a dummy.
  kvm_pit_config pit{};
  pit.flags = KVM_PIT_SPEAKER_DUMMY;
  if (ioctl(vm.fd(), KVM_CREATE_PIT2, &pit) < 0) return ErrnoError("KVM_CREATE_PIT2");
  return ArchVm{};
}

absl::Status FinishVm(const Vm&, const ArchVm&, absl::Span<const std::unique_ptr<Vcpu>>) {
  return absl::OkStatus();
}

uint32_t IrqLine(uint32_t irq) { return irq; }

absl::StatusOr<BootEntry> LoadKernel(absl::Span<const uint8_t> kernel, const std::string& cmdline,
                                     absl::Span<const uint8_t> initrd, const GuestMemory& mem,
                                     BootProtocol protocol) {
  auto linux64 = [&](absl::StatusOr<LinuxBoot> lb) -> absl::StatusOr<BootEntry> {
    if (!lb.ok()) return lb.status();
    EV_RETURN_IF_ERROR(mem.WriteObj(kGdtAddr, kGdt64));
    return Entry(BootEntry::Protocol::kLinux64, lb->entry, kZeroPageAddr);
  };
  if (LooksLikeBzImage(kernel)) {
    if (protocol == BootProtocol::kPvh) {
      return UsageError(
          "--boot-protocol pvh: a bzImage has no PVH entry (use its vmlinux, or linux)");
    }
    EV_ASSIGN_OR_RETURN(BzImage bz, ParseBzImage(kernel));
    return linux64(LoadBzImage(bz, cmdline, initrd, mem));
  }
  EV_ASSIGN_OR_RETURN(ElfImage img, ParseElf64(kernel, EM_X86_64));
  if (!img.pvh_entry && protocol == BootProtocol::kPvh) {
    return UsageError(
        "--boot-protocol pvh: the ELF has no PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY)");
  }
  if (!img.pvh_entry || protocol == BootProtocol::kLinux) {
    // A vmlinux without the PVH note, or one we are told to boot this way: the Linux 64-bit
    // boot protocol.
    return linux64(LoadVmlinux(img, kernel, cmdline, initrd, mem));
  }
  uint64_t kernel_end = 0;
  for (const ElfSegment& seg : img.loads) {
    if (seg.paddr < kBootAreaEnd) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "segment at physical 0x%x overlaps the boot area below 0x%x", seg.paddr, kBootAreaEnd));
    }
    kernel_end = std::max(kernel_end, seg.paddr + seg.memsz);
  }
  EV_RETURN_IF_ERROR(LoadElfSegments(img, kernel, mem));
  EV_RETURN_IF_ERROR(mem.WriteObj(kGdtAddr, kGdt));
  PvhModule module;
  if (!initrd.empty()) {
    EV_ASSIGN_OR_RETURN(module.paddr, PlaceInitrd(mem, initrd.size(), kernel_end, 0xffffffffu));
    EV_RETURN_IF_ERROR(mem.Write(module.paddr, initrd));
    module.size = initrd.size();
  }
  EV_RETURN_IF_ERROR(WritePvhStartInfo(mem, cmdline, module));
  return Entry(BootEntry::Protocol::kPvh, *img.pvh_entry, kStartInfoAddr);
}

absl::StatusOr<std::vector<kvm_cpuid_entry2>> GuestCpuid(const Kvm& kvm, int index,
                                                         int vcpu_count) {
  EV_ASSIGN_OR_RETURN(std::vector<kvm_cpuid_entry2> cpuid, kvm.SupportedCpuid());
  FixupCpuid(cpuid, index, vcpu_count);
  return cpuid;
}

absl::Status SetupVcpu(const Kvm& kvm, const Vcpu& vcpu, int vcpu_count, const BootEntry& boot,
                       const GuestMemory&, const ArchVm&) {
  EV_ASSIGN_OR_RETURN(std::vector<kvm_cpuid_entry2> cpuid,
                      GuestCpuid(kvm, vcpu.index(), vcpu_count));
  EV_RETURN_IF_ERROR(vcpu.SetCpuid(cpuid));
  if (vcpu.index() != 0) return absl::OkStatus();  // APs wait for INIT/SIPI in the LAPIC

  // PVH: 32-bit protected mode, paging off, EBX -> hvm_start_info. Linux 64-bit: long mode on
  // the identity map with __BOOT_CS/__BOOT_DS, RSI -> boot_params. Interrupts off in both.
  const bool linux64 = boot.protocol == BootEntry::Protocol::kLinux64;
  EV_ASSIGN_OR_RETURN(kvm_sregs sregs, vcpu.GetSregs());
  sregs.cs = linux64 ? FlatSegment(0x10, 0xb, /*long_mode=*/true) : FlatSegment(0x08, 0xb);
  sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = FlatSegment(linux64 ? 0x18 : 0x10, 0x3);
  sregs.gdt.base = kGdtAddr;
  sregs.gdt.limit = (linux64 ? sizeof(kGdt64) : sizeof(kGdt)) - 1;
  sregs.idt.base = 0;
  sregs.idt.limit = 0;
  sregs.cr3 = linux64 ? kPml4Addr : 0;
  sregs.cr4 = linux64 ? 0x20 : 0;           // PAE
  sregs.cr0 = linux64 ? 0x80000011 : 0x11;  // (PG |) ET | PE
  sregs.efer = linux64 ? 0x500 : 0;         // LMA | LME
  EV_RETURN_IF_ERROR(vcpu.SetSregs(sregs));

  kvm_regs regs{};
  regs.rflags = 0x2;
  regs.rip = boot.entry;
  (linux64 ? regs.rsi : regs.rbx) = boot.boot_info;
  return vcpu.SetRegs(regs);
}

absl::Status WritePlatformDescription(const GuestMemory& mem, int vcpus,
                                      absl::Span<const MmioSlot> virtio, const BootEntry& boot,
                                      const ArchVm&) {
  std::vector<AcpiVirtioMmio> devs;
  for (const MmioSlot& s : virtio) devs.push_back({s.base, kVirtioMmioSize, s.gsi});
  EV_ASSIGN_OR_RETURN(uint64_t rsdp, WriteAcpiTables(mem, vcpus, devs));
  if (boot.protocol == BootEntry::Protocol::kLinux64) {
    return mem.WriteObj(boot.boot_info + kBpAcpiRsdpAddr, rsdp);
  }
  return mem.WriteObj(boot.boot_info + offsetof(HvmStartInfo, rsdp_paddr), rsdp);
}

uint64_t BootTimerAddress() { return kBootTimerAddr; }

bool VirtioSlotsOnCmdline() { return true; }

MmioSlot VirtioMmioSlot(size_t index) {
  return {kVirtioMmioBase + index * kVirtioMmioStride,
          kVirtioGsiBase + static_cast<uint32_t>(index)};
}

}  // namespace edgevisor::arch
