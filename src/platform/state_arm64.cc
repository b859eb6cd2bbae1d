// Saving and restoring aarch64 vCPU state for snapshots: every register KVM_GET_REG_LIST names,
// through KVM_GET_ONE_REG / KVM_SET_ONE_REG (Documentation/virt/kvm/api.rst), plus the MP
// state (PSCI on/off) and the vCPU events (a pending SError).
#include <sys/ioctl.h>

#include <cstring>

#include "absl/strings/str_format.h"
#include "src/base/errors.h"
#include "src/platform/vcpu.h"

namespace edgevisor {
namespace {

// More than any KVM lists today (a few hundred without SVE, under 1000 with it).
constexpr uint64_t kMaxRegs = 4096;

absl::StatusOr<std::vector<uint64_t>> RegList(int fd) {
  kvm_reg_list probe{};
  if (ioctl(fd, KVM_GET_REG_LIST, &probe) == 0 || errno != E2BIG || probe.n > kMaxRegs) {
    return ErrnoError("KVM_GET_REG_LIST (count)");
  }
  std::vector<uint64_t> buf(1 + probe.n);
  buf[0] = probe.n;
  if (ioctl(fd, KVM_GET_REG_LIST, buf.data()) < 0) return ErrnoError("KVM_GET_REG_LIST");
  return std::vector<uint64_t>(buf.begin() + 1, buf.begin() + 1 + static_cast<ptrdiff_t>(buf[0]));
}

}  // namespace

absl::StatusOr<uint64_t> Vcpu::Mpidr() const {
  uint64_t v = 0;
  kvm_one_reg reg{ARM64_SYS_REG(3, 0, 0, 0, 5), reinterpret_cast<uint64_t>(&v)};
  if (ioctl(fd(), KVM_GET_ONE_REG, &reg) < 0) return ErrnoError("KVM_GET_ONE_REG MPIDR_EL1");
  return v;
}

absl::StatusOr<VcpuState> Vcpu::SaveState() const {
  VcpuState s;
  if (ioctl(fd(), KVM_GET_MP_STATE, &s.mp_state) < 0) return ErrnoError("KVM_GET_MP_STATE");
  EV_ASSIGN_OR_RETURN(s.reg_ids, RegList(fd()));
  for (uint64_t id : s.reg_ids) {
    uint8_t value[256] = {};  // the largest size a register id can name (2048 bits)
    const size_t size = OneRegSize(id);
    if (size > sizeof(value)) return absl::InternalError("a register larger than 2048 bits");
    kvm_one_reg reg{id, reinterpret_cast<uint64_t>(value)};
    if (ioctl(fd(), KVM_GET_ONE_REG, &reg) < 0) {
      return ErrnoError(absl::StrFormat("KVM_GET_ONE_REG 0x%x", id));
    }
    s.reg_values.insert(s.reg_values.end(), value, value + size);
  }
  if (ioctl(fd(), KVM_GET_VCPU_EVENTS, &s.events) < 0) return ErrnoError("KVM_GET_VCPU_EVENTS");
  return s;
}

absl::Status Vcpu::RestoreState(const VcpuState& s) const {
  size_t at = 0;
  for (uint64_t id : s.reg_ids) {
    const size_t size = OneRegSize(id);
    if (at + size > s.reg_values.size())
      return absl::InvalidArgumentError("register values cut short");
    uint8_t value[256] = {};
    if (size > sizeof(value)) return absl::InvalidArgumentError("a register larger than 2048 bits");
    std::memcpy(value, s.reg_values.data() + at, size);
    at += size;
    if (id == KVM_REG_ARM64_SVE_VLS) {
      // The SVE vector lengths can only be set before KVM_ARM_VCPU_FINALIZE, which InitVcpu
      // did with every length this host has: they must be the ones the guest had.
      uint8_t now[sizeof(value)] = {};
      kvm_one_reg get{id, reinterpret_cast<uint64_t>(now)};
      if (ioctl(fd(), KVM_GET_ONE_REG, &get) < 0) return ErrnoError("KVM_GET_ONE_REG SVE_VLS");
      if (std::memcmp(now, value, size) != 0) {
        return absl::FailedPreconditionError(
            "the snapshot's guest had other SVE vector lengths than this host gives");
      }
      continue;
    }
    kvm_one_reg reg{id, reinterpret_cast<uint64_t>(value)};
    if (ioctl(fd(), KVM_SET_ONE_REG, &reg) < 0) {
      return ErrnoError(absl::StrFormat("KVM_SET_ONE_REG 0x%x", id));
    }
  }
  if (ioctl(fd(), KVM_SET_VCPU_EVENTS, &s.events) < 0) return ErrnoError("KVM_SET_VCPU_EVENTS");
  // Last: a vCPU that was powered off (PSCI) stays off until a CPU_ON.
  if (ioctl(fd(), KVM_SET_MP_STATE, &s.mp_state) < 0) return ErrnoError("KVM_SET_MP_STATE");
  return absl::OkStatus();
}

}  // namespace edgevisor
