// x86_64 implementation of src/vmm/arch/arch.h.
#include <elf.h>
#include <sys/ioctl.h>

#include <algorithm>

#include "absl/strings/str_format.h"
#include "src/vmm/arch/arch.h"
#include "src/vmm/arch/x86_64/cpuid.h"
#include "src/vmm/arch/x86_64/layout.h"
#include "src/vmm/arch/x86_64/pvh.h"
#include "src/vmm/loader/elf.h"
#include "src/vmm/util/errors.h"

namespace edgevisor::arch {

using namespace edgevisor::x86;  // NOLINT(build/namespaces): this file is the x86 glue

namespace {

// Flat GDT for the PVH entry: null, 32-bit code (selector 0x08), data (0x10).
constexpr uint64_t kGdt[] = {0, 0x00cf9b000000ffffull, 0x00cf93000000ffffull};
constexpr uint64_t kBootAreaEnd = kCmdlineAddr + kCmdlineMax;  // boot structures live below this

kvm_segment FlatSegment(uint16_t selector, uint8_t type) {
  kvm_segment s{};
  s.base = 0;
  s.limit = 0xffffffff;
  s.selector = selector;
  s.type = type;
  s.present = 1;
  s.dpl = 0;
  s.db = 1;
  s.s = 1;
  s.l = 0;
  s.g = 1;
  return s;
}

}  // namespace

std::vector<GuestRange> RamLayout(uint64_t mem_bytes) {
  if (mem_bytes <= kMmioHoleStart) return {{0, mem_bytes}};
  return {{0, kMmioHoleStart}, {kMmioHoleEnd, mem_bytes - kMmioHoleStart}};
}

absl::Status SetupVm(const Vm& vm) {
  // Intel VMX needs these two pages reserved before the irqchip; AMD ignores them.
  if (ioctl(vm.fd(), KVM_SET_TSS_ADDR, kTssAddr) < 0) return ErrnoError("KVM_SET_TSS_ADDR");
  uint64_t identity = kIdentityMapAddr;
  if (ioctl(vm.fd(), KVM_SET_IDENTITY_MAP_ADDR, &identity) < 0) {
    return ErrnoError("KVM_SET_IDENTITY_MAP_ADDR");
  }
  // In-kernel PIC + IOAPIC + LAPICs: interrupts (serial now, irqfd later) never need a vCPU exit.
  if (ioctl(vm.fd(), KVM_CREATE_IRQCHIP, 0) < 0) return ErrnoError("KVM_CREATE_IRQCHIP");
  return absl::OkStatus();
}

absl::StatusOr<BootEntry> LoadKernel(absl::Span<const uint8_t> kernel, const std::string& cmdline,
                                     const GuestMemory& mem) {
  EV_ASSIGN_OR_RETURN(ElfImage img, ParseElf64(kernel, EM_X86_64));
  if (!img.pvh_entry) {
    return absl::InvalidArgumentError(
        "ELF has no PVH entry note (Xen ELF note XEN_ELFNOTE_PHYS32_ENTRY, type 18)");
  }
  for (const ElfSegment& seg : img.loads) {
    if (seg.paddr < kBootAreaEnd) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "segment at physical 0x%x overlaps the boot area below 0x%x", seg.paddr, kBootAreaEnd));
    }
  }
  EV_RETURN_IF_ERROR(LoadElfSegments(img, kernel, mem));
  EV_RETURN_IF_ERROR(mem.WriteObj(kGdtAddr, kGdt));
  EV_RETURN_IF_ERROR(WritePvhStartInfo(mem, cmdline));
  return BootEntry{*img.pvh_entry, kStartInfoAddr};
}

absl::Status SetupVcpu(const Kvm& kvm, const Vcpu& vcpu, int vcpu_count, const BootEntry& boot,
                       const GuestMemory&) {
  EV_ASSIGN_OR_RETURN(std::vector<kvm_cpuid_entry2> cpuid, kvm.SupportedCpuid());
  FixupCpuid(cpuid, vcpu.index(), vcpu_count);
  EV_RETURN_IF_ERROR(vcpu.SetCpuid(cpuid));
  if (vcpu.index() != 0) return absl::OkStatus();  // APs wait for INIT/SIPI in the LAPIC

  EV_ASSIGN_OR_RETURN(kvm_sregs sregs, vcpu.GetSregs());
  sregs.cs = FlatSegment(0x08, 0xb);
  sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = FlatSegment(0x10, 0x3);
  sregs.gdt.base = kGdtAddr;
  sregs.gdt.limit = sizeof(kGdt) - 1;
  sregs.idt.base = 0;
  sregs.idt.limit = 0;
  sregs.cr0 = 0x11;  // PE | ET: protected mode, paging off (PVH entry state)
  sregs.cr4 = 0;
  sregs.efer = 0;
  EV_RETURN_IF_ERROR(vcpu.SetSregs(sregs));

  kvm_regs regs{};
  regs.rflags = 0x2;
  regs.rip = boot.entry;
  regs.rbx = boot.boot_info;
  return vcpu.SetRegs(regs);
}

uint64_t BootTimerAddress() { return kBootTimerAddr; }

MmioSlot VirtioMmioSlot(size_t index) {
  return {kVirtioMmioBase + index * kVirtioMmioStride,
          kVirtioGsiBase + static_cast<uint32_t>(index)};
}

}  // namespace edgevisor::arch
