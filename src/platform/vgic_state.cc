#include "src/platform/vgic_state.h"

#include <linux/kvm.h>
#include <sys/ioctl.h>

#include "absl/strings/str_format.h"
#include "src/base/errors.h"
#include "src/base/log.h"

namespace edgevisor {
namespace {

// A register to save: optional ones are skipped where this KVM has no such register (older
// kernels lack GICD_IIDR, the GICv2 group registers, some active-priority registers).
struct Want {
  uint64_t group;
  uint64_t attr;
  bool optional = false;
};

constexpr uint64_t kDist = KVM_DEV_ARM_VGIC_GRP_DIST_REGS;
constexpr uint64_t kRedist = KVM_DEV_ARM_VGIC_GRP_REDIST_REGS;
constexpr uint64_t kSysregs = KVM_DEV_ARM_VGIC_GRP_CPU_SYSREGS;
constexpr uint64_t kCpuRegs = KVM_DEV_ARM_VGIC_GRP_CPU_REGS;
constexpr uint64_t kLevel = KVM_DEV_ARM_VGIC_GRP_LEVEL_INFO;
constexpr uint64_t kIts = KVM_DEV_ARM_VGIC_GRP_ITS_REGS;

// GICD_* (GICv2 and v3 share the layout of these), one 32-bit register per 32 interrupts
// (bitmaps), per 16 (ICFGR) or per 4 (IPRIORITYR, ITARGETSR).
constexpr uint64_t kCtlr = 0x0, kIidr = 0x8, kIgroupr = 0x80, kIsenabler = 0x100, kIspendr = 0x200,
                   kIsactiver = 0x300, kIpriorityr = 0x400, kItargetsr = 0x800, kIcfgr = 0xc00,
                   kSpendsgir = 0xf20, kIrouter = 0x6000;
// The GICv3 redistributor's SGI/PPI frame, 64 KiB after its control frame.
constexpr uint64_t kSgiFrame = 0x10000;

// The attribute's vCPU field for a GICv3 redistributor or CPU interface: MPIDR's affinity
// levels 3..0, one byte each.
uint64_t MpidrField(uint64_t mpidr) {
  const uint64_t aff = (((mpidr >> 32) & 0xff) << 24) | (mpidr & 0xffffff);
  return aff << KVM_DEV_ARM_VGIC_V3_MPIDR_SHIFT;
}

// An ICC_*_EL1 register's encoding: op0, op1, CRn, CRm, op2.
constexpr uint64_t Sysreg(uint64_t op0, uint64_t op1, uint64_t crn, uint64_t crm, uint64_t op2) {
  return (op0 << 14) | (op1 << 11) | (crn << 7) | (crm << 3) | op2;
}

// The distributor's per-interrupt registers for the SPIs (interrupts 32 and up), in the order
// they are restored: configuration before state, enables last.
void AddSpiRegs(std::vector<Want>& w, uint32_t version, uint32_t nr_irqs) {
  for (uint32_t i = 32; i < nr_irqs; i += 32) w.push_back({kDist, kIgroupr + i / 8, version == 2});
  if (version == 3) {
    for (uint32_t i = 32; i < nr_irqs; ++i) {
      w.push_back({kDist, kIrouter + 8 * i});
      w.push_back({kDist, kIrouter + 8 * i + 4});
    }
  } else {
    for (uint32_t i = 32; i < nr_irqs; i += 4) w.push_back({kDist, kItargetsr + i});
  }
  for (uint32_t i = 32; i < nr_irqs; i += 16) w.push_back({kDist, kIcfgr + i / 4});
  if (version == 3) {
    // The input levels of level-triggered SPIs (the UART's, the RTC's): not part of ISPENDR.
    for (uint32_t i = 32; i < nr_irqs; i += 32) {
      w.push_back(
          {kLevel,
           (uint64_t{VGIC_LEVEL_INFO_LINE_LEVEL} << KVM_DEV_ARM_VGIC_LINE_LEVEL_INFO_SHIFT) | i});
    }
  }
  for (uint32_t i = 32; i < nr_irqs; i += 32) w.push_back({kDist, kIspendr + i / 8});
  for (uint32_t i = 32; i < nr_irqs; i += 32) w.push_back({kDist, kIsactiver + i / 8});
  for (uint32_t i = 32; i < nr_irqs; i += 4) w.push_back({kDist, kIpriorityr + i});
  for (uint32_t i = 32; i < nr_irqs; i += 32) w.push_back({kDist, kIsenabler + i / 8});
}

// One vCPU's SGIs and PPIs (interrupts 0-31): the same registers at BASE, for VCPU.
void AddPrivateRegs(std::vector<Want>& w, uint64_t group, uint64_t vcpu, uint64_t base, bool v2) {
  w.push_back({group, vcpu | (base + kIgroupr), v2});
  w.push_back({group, vcpu | (base + kIcfgr)});
  w.push_back({group, vcpu | (base + kIcfgr + 4)});
  w.push_back({group, vcpu | (base + kIspendr)});
  w.push_back({group, vcpu | (base + kIsactiver)});
  for (uint64_t i = 0; i < 32; i += 4) w.push_back({group, vcpu | (base + kIpriorityr + i)});
  w.push_back({group, vcpu | (base + kIsenabler)});
}

std::vector<Want> V3Plan(absl::Span<const uint64_t> mpidrs, uint32_t nr_irqs) {
  std::vector<Want> w = {{kDist, kIidr, true}};
  AddSpiRegs(w, 3, nr_irqs);
  w.push_back({kDist, kCtlr});
  for (uint64_t mpidr : mpidrs) {
    const uint64_t cpu = MpidrField(mpidr);
    // GICR_PROPBASER and GICR_PENDBASER (64-bit, as two words) before GICR_CTLR, whose
    // EnableLPIs freezes them.
    for (uint64_t off : {0x70, 0x74, 0x78, 0x7c}) w.push_back({kRedist, cpu | off, true});
    w.push_back({kRedist, cpu | kCtlr});
    AddPrivateRegs(w, kRedist, cpu, kSgiFrame, false);
    // The CPU interface: SRE and CTLR first, then priorities, active priorities, enables.
    w.push_back({kSysregs, cpu | Sysreg(3, 0, 12, 12, 5)});  // ICC_SRE_EL1
    w.push_back({kSysregs, cpu | Sysreg(3, 0, 12, 12, 4)});  // ICC_CTLR_EL1
    w.push_back({kSysregs, cpu | Sysreg(3, 0, 4, 6, 0)});    // ICC_PMR_EL1
    w.push_back({kSysregs, cpu | Sysreg(3, 0, 12, 8, 3)});   // ICC_BPR0_EL1
    w.push_back({kSysregs, cpu | Sysreg(3, 0, 12, 12, 3)});  // ICC_BPR1_EL1
    for (uint64_t n = 0; n < 4; ++n) {
      w.push_back({kSysregs, cpu | Sysreg(3, 0, 12, 8, 4 + n), true});  // ICC_AP0R<n>_EL1
      w.push_back({kSysregs, cpu | Sysreg(3, 0, 12, 9, n), true});      // ICC_AP1R<n>_EL1
    }
    w.push_back({kSysregs, cpu | Sysreg(3, 0, 12, 12, 6)});  // ICC_IGRPEN0_EL1
    w.push_back({kSysregs, cpu | Sysreg(3, 0, 12, 12, 7)});  // ICC_IGRPEN1_EL1
  }
  return w;
}

std::vector<Want> V2Plan(size_t vcpus, uint32_t nr_irqs) {
  std::vector<Want> w = {{kDist, kIidr, true}};
  AddSpiRegs(w, 2, nr_irqs);
  for (uint64_t i = 0; i < vcpus; ++i) {
    const uint64_t cpu = i << KVM_DEV_ARM_VGIC_CPUID_SHIFT;
    AddPrivateRegs(w, kDist, cpu, 0, true);
    for (uint64_t n = 0; n < 16; n += 4) w.push_back({kDist, cpu | (kSpendsgir + n), true});
    for (uint64_t off : {0x00, 0x04, 0x08, 0x1c}) w.push_back({kCpuRegs, cpu | off});  // GICC_
    for (uint64_t n = 0; n < 16; n += 4) w.push_back({kCpuRegs, cpu | (0xd0 + n), true});
  }
  w.push_back({kDist, kCtlr});
  return w;
}

int Access(int fd, unsigned long req, uint64_t group, uint64_t attr,  // NOLINT(runtime/int)
           uint64_t* value) {
  kvm_device_attr a{};
  a.group = static_cast<uint32_t>(group);
  a.attr = attr;
  a.addr = reinterpret_cast<uint64_t>(value);
  return ioctl(fd, req, &a);
}

absl::Status Ctrl(int fd, uint64_t attr, const char* what) {
  kvm_device_attr a{};
  a.group = KVM_DEV_ARM_VGIC_GRP_CTRL;
  a.attr = attr;
  if (ioctl(fd, KVM_SET_DEVICE_ATTR, &a) < 0) return ErrnoError(what);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<GicAttr>> Read(int fd, const std::vector<Want>& plan) {
  std::vector<GicAttr> out;
  out.reserve(plan.size());
  for (const Want& w : plan) {
    uint64_t v = 0;
    if (Access(fd, KVM_GET_DEVICE_ATTR, w.group, w.attr, &v) < 0) {
      if (w.optional && (errno == ENXIO || errno == EINVAL)) continue;
      return ErrnoError(absl::StrFormat("KVM_GET_DEVICE_ATTR group %d attr 0x%x", w.group, w.attr));
    }
    out.push_back({w.group, w.attr, GicAttrBits(w.group) == 32 ? (v & 0xffffffffu) : v});
  }
  return out;
}

absl::Status Write(int fd, const std::vector<GicAttr>& regs) {
  for (const GicAttr& r : regs) {
    uint64_t v = r.value;
    if (Access(fd, KVM_SET_DEVICE_ATTR, r.group, r.attr, &v) < 0) {
      return ErrnoError(absl::StrFormat("KVM_SET_DEVICE_ATTR group %d attr 0x%x", r.group, r.attr));
    }
  }
  return absl::OkStatus();
}

}  // namespace

int GicAttrBits(uint64_t group) {
  switch (group) {
    case kDist:
    case kRedist:
    case kCpuRegs:
    case kLevel:
      return 32;
    case kSysregs:
    case kIts:
      return 64;
    default:
      return 0;
  }
}

absl::StatusOr<GicState> SaveGic(int gic_fd, uint32_t version, int its_fd,
                                 absl::Span<const uint64_t> mpidrs, uint32_t nr_irqs) {
  GicState s;
  s.version = version;
  if (its_fd >= 0) {
    // The ITS's device, collection and translation tables, and the LPIs' pending bits, go to
    // the guest RAM the guest gave them: the memory file carries them.
    EV_RETURN_IF_ERROR(Ctrl(its_fd, KVM_DEV_ARM_ITS_SAVE_TABLES, "ITS: save tables"));
    EV_RETURN_IF_ERROR(
        Ctrl(gic_fd, KVM_DEV_ARM_VGIC_SAVE_PENDING_TABLES, "vGIC: save LPI pending tables"));
  }
  EV_ASSIGN_OR_RETURN(s.regs, Read(gic_fd, version == 3 ? V3Plan(mpidrs, nr_irqs)
                                                        : V2Plan(mpidrs.size(), nr_irqs)));
  if (its_fd >= 0) {
    s.its = true;
    // GITS_IIDR, GITS_CBASER (whose write resets the queue's read and write offsets), then
    // GITS_CREADR, GITS_CWRITER and the tables' GITS_BASER<n>.
    std::vector<Want> plan = {{kIts, 0x04}, {kIts, 0x80}, {kIts, 0x90}, {kIts, 0x88}};
    for (uint64_t n = 0; n < 8; ++n) plan.push_back({kIts, 0x100 + 8 * n});
    EV_ASSIGN_OR_RETURN(s.its_regs, Read(its_fd, plan));
    EV_ASSIGN_OR_RETURN(std::vector<GicAttr> ctlr, Read(its_fd, {{kIts, 0x00}}));
    s.its_ctlr = ctlr[0].value;
  }
  spdlog::debug("vGICv{}: {} registers{}", version, s.regs.size(), s.its ? " and the ITS" : "");
  return s;
}

absl::Status RestoreGic(int gic_fd, int its_fd, const GicState& s) {
  EV_RETURN_IF_ERROR(Annotate(Write(gic_fd, s.regs), "vGIC"));
  if (!s.its) return absl::OkStatus();
  if (its_fd < 0) return absl::FailedPreconditionError("the snapshot has an ITS; this VM has none");
  EV_RETURN_IF_ERROR(Annotate(Write(its_fd, s.its_regs), "ITS"));
  EV_RETURN_IF_ERROR(Ctrl(its_fd, KVM_DEV_ARM_ITS_RESTORE_TABLES, "ITS: restore tables"));
  return Annotate(Write(its_fd, {{kIts, 0x00, s.its_ctlr}}), "ITS");
}

}  // namespace edgevisor
