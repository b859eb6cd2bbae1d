// The in-kernel vGIC (v2 or v3) and the GICv3 ITS of an aarch64 VM, as a snapshot records them:
// a list of KVM device attributes and their values, read with KVM_GET_DEVICE_ATTR and written
// back, in the order the list gives, with KVM_SET_DEVICE_ATTR on a freshly initialized vGIC
// (Documentation/virt/kvm/devices/arm-vgic-v3.rst, arm-vgic.rst, arm-vgic-its.rst).
#pragma once

#if defined(__aarch64__)
#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace edgevisor {

struct GicAttr {
  uint64_t group;  // KVM_DEV_ARM_VGIC_GRP_*
  uint64_t attr;   // the register's offset, with the vCPU (MPIDR or index) it belongs to
  uint64_t value;  // 32 or 64 bits, as GicAttrBits(group) says
};

struct GicState {
  uint32_t version = 0;           // 2 or 3
  std::vector<GicAttr> regs;      // distributor, redistributors, CPU interfaces, line levels
  bool its = false;               // GICv3 only
  std::vector<GicAttr> its_regs;  // every ITS register but GITS_CTLR, in restore order
  uint64_t its_ctlr = 0;          // GITS_CTLR, written after the ITS tables are read back
};

// How wide a group's values are: 32 (distributor, redistributor, GICv2 CPU interface, line
// levels) or 64 (GICv3 CPU system registers, ITS). 0: a group no snapshot holds.
int GicAttrBits(uint64_t group);

// Reads the vGIC (and the ITS where ITS_FD >= 0, first writing its tables and the LPI pending
// bits into guest RAM) of a VM whose vCPUs are all out of KVM_RUN. MPIDRS: each vCPU's
// MPIDR_EL1, by index. NR_IRQS: KVM_DEV_ARM_VGIC_GRP_NR_IRQS.
absl::StatusOr<GicState> SaveGic(int gic_fd, uint32_t version, int its_fd,
                                 absl::Span<const uint64_t> mpidrs, uint32_t nr_irqs);

// Writes a saved state into an initialized vGIC of the same version (and ITS), before any vCPU
// runs. Errors name the register KVM refused.
absl::Status RestoreGic(int gic_fd, int its_fd, const GicState& s);

}  // namespace edgevisor
#endif
