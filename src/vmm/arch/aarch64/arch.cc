// aarch64 implementation of src/vmm/arch/arch.h: RAM from 2 GiB, a vGIC (v3, else v2), PSCI
// 0.2 vCPUs (secondaries start powered off and come up through CPU_ON), the arm64 Image boot
// protocol, and a device tree.
#include <linux/kvm.h>
#include <sys/ioctl.h>

#include <cerrno>
#include <cstddef>
#include <cstring>

#include "absl/strings/str_format.h"
#include "src/base/errors.h"
#include "src/base/log.h"
#include "src/vmm/arch/aarch64/fdt.h"
#include "src/vmm/arch/aarch64/layout.h"
#include "src/vmm/arch/arch.h"
#include "src/vmm/loader/arm64_image.h"

namespace edgevisor::arch {

using namespace edgevisor::aarch64;  // NOLINT(build/namespaces): this file is the arm64 glue

namespace {

constexpr uint64_t kPstateEl1hMasked = 0x3c5;  // EL1h, D/A/I/F masked: booting.rst

uint64_t CoreRegId(size_t offset) {
  return KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_CORE | (offset / sizeof(uint32_t));
}

absl::Status SetCoreReg(const Vcpu& vcpu, size_t offset, uint64_t value) {
  kvm_one_reg reg{};
  reg.id = CoreRegId(offset);
  reg.addr = reinterpret_cast<uint64_t>(&value);
  if (ioctl(vcpu.fd(), KVM_SET_ONE_REG, &reg) < 0) {
    return ErrnoError(absl::StrFormat("KVM_SET_ONE_REG (core offset %d)", offset));
  }
  return absl::OkStatus();
}

absl::Status SetDeviceAttr(int fd, uint32_t group, uint64_t attr, const void* value,
                           const char* what) {
  kvm_device_attr a{};
  a.group = group;
  a.attr = attr;
  a.addr = reinterpret_cast<uint64_t>(value);
  if (ioctl(fd, KVM_SET_DEVICE_ATTR, &a) < 0) return ErrnoError(what);
  return absl::OkStatus();
}

// Creates a vGIC of `version` with its MMIO frames placed; not initialized yet.
absl::StatusOr<UniqueFd> CreateGic(const Vm& vm, int version, int vcpus) {
  kvm_create_device dev{};
  dev.type = version == 3 ? KVM_DEV_TYPE_ARM_VGIC_V3 : KVM_DEV_TYPE_ARM_VGIC_V2;
  if (ioctl(vm.fd(), KVM_CREATE_DEVICE, &dev) < 0) {
    return ErrnoError(absl::StrFormat("KVM_CREATE_DEVICE (GICv%d)", version));
  }
  UniqueFd fd(static_cast<int>(dev.fd));
  const uint64_t dist = kGicDistBase;
  if (version == 3) {
    const uint64_t redist = kGicRedistBase;
    if (kGicRedistBase + kGicRedistSizePerCpu * static_cast<uint64_t>(vcpus) > kGicRedistEnd) {
      return UsageError(
          absl::StrFormat("--vcpus %d: the GICv3 redistributors do not fit the layout", vcpus));
    }
    EV_RETURN_IF_ERROR(SetDeviceAttr(fd.get(), KVM_DEV_ARM_VGIC_GRP_ADDR,
                                     KVM_VGIC_V3_ADDR_TYPE_DIST, &dist, "GICv3 distributor"));
    EV_RETURN_IF_ERROR(SetDeviceAttr(fd.get(), KVM_DEV_ARM_VGIC_GRP_ADDR,
                                     KVM_VGIC_V3_ADDR_TYPE_REDIST, &redist,
                                     "GICv3 redistributors"));
  } else {
    const uint64_t cpu = kGicCpuBase;
    EV_RETURN_IF_ERROR(SetDeviceAttr(fd.get(), KVM_DEV_ARM_VGIC_GRP_ADDR,
                                     KVM_VGIC_V2_ADDR_TYPE_DIST, &dist, "GICv2 distributor"));
    EV_RETURN_IF_ERROR(SetDeviceAttr(fd.get(), KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V2_ADDR_TYPE_CPU,
                                     &cpu, "GICv2 CPU interface"));
  }
  const uint32_t nr_irqs = kGicNumIrqs;
  EV_RETURN_IF_ERROR(
      SetDeviceAttr(fd.get(), KVM_DEV_ARM_VGIC_GRP_NR_IRQS, 0, &nr_irqs, "vGIC interrupt count"));
  return fd;
}

// The longest SVE vector the guest gets, once per VM: what its kernel must report as its
// "maximum available vector length" (the nested rig compares the two).
void LogSveLengths(const Vcpu& vcpu) {
  // One bit per vector quadword count: bit VQ-1 of word (VQ-1)/64 (KVM's api.rst).
  uint64_t vls[KVM_ARM64_SVE_VLS_WORDS] = {};
  kvm_one_reg reg{KVM_REG_ARM64_SVE_VLS, reinterpret_cast<uint64_t>(vls)};
  if (ioctl(vcpu.fd(), KVM_GET_ONE_REG, &reg) < 0) {
    spdlog::warn("SVE: the vector lengths cannot be read: {}", std::strerror(errno));
    return;
  }
  int max_vq = 0;
  for (int vq = 1; vq <= KVM_ARM64_SVE_VLS_WORDS * 64; ++vq) {
    if ((vls[(vq - 1) / 64] >> ((vq - 1) % 64)) & 1) max_vq = vq;
  }
  spdlog::info("SVE: vector lengths up to {} bytes", max_vq * 16);
}

}  // namespace

std::vector<GuestRange> RamLayout(uint64_t mem_bytes) { return {{kRamBase, mem_bytes}}; }

// A GICv3 ITS at kGicItsBase, for MSIs (virtio-pci and other PCI devices later; virtio-mmio
// uses wired SPIs). Initialized in FinishVm, after the vGIC.
absl::StatusOr<UniqueFd> CreateIts(const Vm& vm) {
  kvm_create_device dev{};
  dev.type = KVM_DEV_TYPE_ARM_VGIC_ITS;
  if (ioctl(vm.fd(), KVM_CREATE_DEVICE, &dev) < 0) return ErrnoError("KVM_CREATE_DEVICE (ITS)");
  UniqueFd fd(static_cast<int>(dev.fd));
  const uint64_t base = kGicItsBase;
  EV_RETURN_IF_ERROR(
      SetDeviceAttr(fd.get(), KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_ITS_ADDR_TYPE, &base, "ITS"));
  return fd;
}

// GICv3 comes with an ITS where KVM offers one; without, the guest just has no MSIs.
void AddIts(const Vm& vm, ArchVm& a) {
  if (a.irqchip_version != 3) return;
  auto its = CreateIts(vm);
  if (its.ok()) {
    a.its = std::move(*its);
  } else {
    spdlog::info("GICv3 without an ITS: {}", its.status().message());
  }
}

// The vCPU features of WANT that this host's KVM offers, each said in the log; with REQUIRE, one
// it lacks is an error instead (a restored guest had it).
absl::StatusOr<Arm64CpuFeatures> ChooseCpuFeatures(const Vm& vm, const Arm64CpuFeatures& want,
                                                   bool require) {
  auto has = [&vm](long cap) { return ioctl(vm.fd(), KVM_CHECK_EXTENSION, cap) > 0; };
  Arm64CpuFeatures got{.pmu = false, .sve = false, .ptrauth = false};
  const struct {
    const char* name;
    bool wanted, offered;
    bool* on;
  } features[] = {
      {"PMUv3", want.pmu, has(KVM_CAP_ARM_PMU_V3), &got.pmu},
      {"SVE", want.sve, has(KVM_CAP_ARM_SVE), &got.sve},
      {"pointer authentication", want.ptrauth,
       has(KVM_CAP_ARM_PTRAUTH_ADDRESS) && has(KVM_CAP_ARM_PTRAUTH_GENERIC), &got.ptrauth},
  };
  for (const auto& f : features) {
    if (!f.wanted) {
      spdlog::info("arm64: {} turned off for this guest", f.name);
    } else if (!f.offered && require) {
      return absl::FailedPreconditionError(absl::StrFormat(
          "the snapshot's guest had %s, which this host's KVM cannot give", f.name));
    } else if (!f.offered) {
      spdlog::info("arm64: no {} for this guest: this host's KVM does not offer it", f.name);
    } else {
      *f.on = true;
    }
  }
  spdlog::debug("arm64 vCPU features: PMUv3 {}, SVE {}, pointer authentication {}",
                got.pmu ? "on" : "off", got.sve ? "on" : "off", got.ptrauth ? "on" : "off");
  return got;
}

absl::StatusOr<ArchVm> SetupVm(const Vm& vm, const MachineConfig& machine, bool require_features) {
  ArchVm a;
  kvm_vcpu_init init{};
  if (ioctl(vm.fd(), KVM_ARM_PREFERRED_TARGET, &init) < 0) {
    return ErrnoError("KVM_ARM_PREFERRED_TARGET");
  }
  a.vcpu_target = init.target;
  EV_ASSIGN_OR_RETURN(a.cpu, ChooseCpuFeatures(vm, machine.arm64, require_features));
  const int vcpus = machine.vcpus, gic = machine.gic;
  if (gic == 2 || gic == 3) {
    auto fd = CreateGic(vm, gic, vcpus);
    if (!fd.ok()) return UsageError(absl::StrFormat("--gic v%d: %s", gic, fd.status().message()));
    a.irqchip = std::move(*fd);
    a.irqchip_version = gic;
    AddIts(vm, a);
    return a;
  }
  // Auto: GICv3 where the host has one (or emulates one on a GICv3 host), else GICv2
  // (GIC-400 boards).
  auto v3 = CreateGic(vm, 3, vcpus);
  if (v3.ok()) {
    a.irqchip = std::move(*v3);
    a.irqchip_version = 3;
    AddIts(vm, a);
    return a;
  }
  auto v2 = CreateGic(vm, 2, vcpus);
  if (!v2.ok()) {
    return absl::FailedPreconditionError(
        absl::StrFormat("no in-kernel GIC: %s; %s", v3.status().message(), v2.status().message()));
  }
  spdlog::info("GICv3 unavailable ({}); using GICv2", v3.status().message());
  a.irqchip = std::move(*v2);
  a.irqchip_version = 2;
  return a;
}

absl::Status FinishVm(const Vm&, const ArchVm& arch,
                      absl::Span<const std::unique_ptr<Vcpu>> vcpus) {
  EV_RETURN_IF_ERROR(SetDeviceAttr(arch.irqchip.get(), KVM_DEV_ARM_VGIC_GRP_CTRL,
                                   KVM_DEV_ARM_VGIC_CTRL_INIT, nullptr, "vGIC init"));
  if (arch.its.valid()) {
    EV_RETURN_IF_ERROR(SetDeviceAttr(arch.its.get(), KVM_DEV_ARM_VGIC_GRP_CTRL,
                                     KVM_DEV_ARM_VGIC_CTRL_INIT, nullptr, "ITS init"));
  }
  // Each vCPU's PMU, once the vGIC that takes its interrupt is initialized.
  for (const auto& vcpu : vcpus) {
    if (!arch.cpu.pmu) break;
    EV_RETURN_IF_ERROR(SetDeviceAttr(vcpu->fd(), KVM_ARM_VCPU_PMU_V3_CTRL, KVM_ARM_VCPU_PMU_V3_INIT,
                                     nullptr, "PMUv3 init"));
  }
  return absl::OkStatus();
}

absl::StatusOr<BootEntry> LoadKernel(absl::Span<const uint8_t> kernel, const std::string& cmdline,
                                     absl::Span<const uint8_t> initrd, const GuestMemory& mem,
                                     BootProtocol protocol) {
  if (protocol != BootProtocol::kAuto) {
    return UsageError("--boot-protocol: aarch64 has one protocol (the Image)");
  }
  EV_ASSIGN_OR_RETURN(Arm64Image img, ParseArm64Image(kernel));
  uint64_t ram_end = 0;
  for (const GuestRegion& r : mem.regions()) ram_end = std::max(ram_end, r.gpa + r.size);
  const uint64_t fdt_addr = (ram_end - kFdtMaxSize) & ~(kArm64ImageAlign - 1);
  const uint64_t load = kRamBase + img.text_offset;
  const uint64_t kernel_end = load + img.image_size;
  if (fdt_addr < kRamBase || kernel_end > fdt_addr) {
    return UsageError(absl::StrFormat(
        "--mem: the kernel needs 0x%x bytes from 0x%x plus 2 MiB for the device tree",
        img.image_size, load));
  }
  EV_RETURN_IF_ERROR(mem.Write(load, img.file));
  BootEntry b;
  b.protocol = BootEntry::Protocol::kArm64Image;
  b.entry = load;
  b.boot_info = fdt_addr;
  b.cmdline = cmdline;
  if (!initrd.empty()) {
    const uint64_t top = fdt_addr;
    const uint64_t start = (top - initrd.size()) & ~uint64_t{4095};
    if (initrd.size() > top || start < (kernel_end + 4095) / 4096 * 4096) {
      return UsageError(absl::StrFormat(
          "--initrd: %d bytes do not fit between the kernel and the device tree", initrd.size()));
    }
    EV_RETURN_IF_ERROR(mem.Write(start, initrd));
    b.initrd_addr = start;
    b.initrd_size = initrd.size();
  }
  return b;
}

absl::Status InitVcpu(const Vcpu& vcpu, const ArchVm& arch) {
  kvm_vcpu_init init{};
  init.target = arch.vcpu_target;
  init.features[0] |= 1u << KVM_ARM_VCPU_PSCI_0_2;
  // Secondaries wait, powered off, for the boot CPU's PSCI CPU_ON.
  if (vcpu.index() != 0) init.features[0] |= 1u << KVM_ARM_VCPU_POWER_OFF;
  if (arch.cpu.pmu) init.features[0] |= 1u << KVM_ARM_VCPU_PMU_V3;
  if (arch.cpu.sve) init.features[0] |= 1u << KVM_ARM_VCPU_SVE;
  if (arch.cpu.ptrauth) {
    init.features[0] |= (1u << KVM_ARM_VCPU_PTRAUTH_ADDRESS) | (1u << KVM_ARM_VCPU_PTRAUTH_GENERIC);
  }
  if (ioctl(vcpu.fd(), KVM_ARM_VCPU_INIT, &init) < 0) return ErrnoError("KVM_ARM_VCPU_INIT");
  if (arch.cpu.sve) {
    // Every vector length the host has (KVM's default): the set is fixed from here on.
    int what = KVM_ARM_VCPU_SVE;
    if (ioctl(vcpu.fd(), KVM_ARM_VCPU_FINALIZE, &what) < 0) {
      return ErrnoError("KVM_ARM_VCPU_FINALIZE (SVE)");
    }
    if (vcpu.index() == 0) LogSveLengths(vcpu);
  }
  if (arch.cpu.pmu) {
    const int irq = kPmuIntid;  // a PPI: the same for every vCPU
    EV_RETURN_IF_ERROR(SetDeviceAttr(vcpu.fd(), KVM_ARM_VCPU_PMU_V3_CTRL, KVM_ARM_VCPU_PMU_V3_IRQ,
                                     &irq, "PMUv3 interrupt"));
  }
  return absl::OkStatus();
}

absl::Status SetupVcpu(const Kvm&, const Vcpu& vcpu, int, const BootEntry& boot, const GuestMemory&,
                       const ArchVm& arch) {
  EV_RETURN_IF_ERROR(InitVcpu(vcpu, arch));
  if (vcpu.index() != 0) return absl::OkStatus();
  EV_RETURN_IF_ERROR(SetCoreReg(vcpu, offsetof(kvm_regs, regs.pstate), kPstateEl1hMasked));
  EV_RETURN_IF_ERROR(SetCoreReg(vcpu, offsetof(kvm_regs, regs.pc), boot.entry));
  // x0 = the device tree; x1..x3 = 0 (reserved).
  EV_RETURN_IF_ERROR(SetCoreReg(vcpu, offsetof(kvm_regs, regs.regs[0]), boot.boot_info));
  for (int i = 1; i <= 3; ++i) {
    EV_RETURN_IF_ERROR(SetCoreReg(vcpu, offsetof(kvm_regs, regs.regs) + i * sizeof(uint64_t), 0));
  }
  return absl::OkStatus();
}

absl::Status WritePlatformDescription(const GuestMemory& mem, int vcpus,
                                      absl::Span<const MmioSlot> virtio, const BootEntry& boot,
                                      const ArchVm& arch) {
  FdtConfig c;
  for (const GuestRegion& r : mem.regions()) {
    c.ram_base = r.gpa;
    c.ram_size = r.size;
  }
  c.vcpus = vcpus;
  c.gic_version = arch.irqchip_version;
  c.gic_its = arch.its.valid();
  c.pmu = arch.cpu.pmu;
  c.cmdline = boot.cmdline;
  c.initrd_addr = boot.initrd_addr;
  c.initrd_size = boot.initrd_size;
  for (const MmioSlot& s : virtio) c.virtio.push_back({s.base, kVirtioMmioSize, s.gsi});
  EV_ASSIGN_OR_RETURN(std::vector<uint8_t> fdt, BuildFdt(c));
  return mem.Write(boot.boot_info, fdt);
}

uint64_t BootTimerAddress() { return kBootTimerAddr; }

bool VirtioSlotsOnCmdline() { return false; }

MmioSlot VirtioMmioSlot(size_t index) {
  // The irqfd GSI of an SPI is its SPI number (KVM's default routing on arm64).
  return {kVirtioMmioBase + index * kVirtioMmioStride,
          kVirtioSpiBase + static_cast<uint32_t>(index)};
}

uint32_t IrqLine(uint32_t spi) {
  // KVM_IRQ_LINE on arm64: type (SPI) in bits 24-27, the interrupt ID (32 + SPI) below.
  return (KVM_ARM_IRQ_TYPE_SPI << KVM_ARM_IRQ_TYPE_SHIFT) | (32 + spi);
}

}  // namespace edgevisor::arch
