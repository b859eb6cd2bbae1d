// Saving and restoring x86_64 vCPU and irqchip state for snapshots: KVM's own structures, read
// and written with the ioctls KVM documents for migration (Documentation/virt/kvm/api.rst).
#include <sys/ioctl.h>

#include <cstddef>
#include <cstring>

#include "absl/strings/str_format.h"
#include "src/base/errors.h"
#include "src/platform/kvm.h"
#include "src/platform/kvm_abi.h"
#include "src/platform/vcpu.h"

namespace edgevisor {
namespace {

template <typename T>
absl::Status Get(int fd, unsigned long req, T* out, const char* what) {  // NOLINT(runtime/int)
  if (ioctl(fd, req, out) < 0) return ErrnoError(what);
  return absl::OkStatus();
}

// KVM_GET_MSRS / KVM_SET_MSRS over ENTRIES; returns how many KVM processed (it stops at the
// first MSR it cannot read or write).
absl::StatusOr<size_t> MsrIoctl(int fd, unsigned long req,  // NOLINT(runtime/int)
                                std::vector<kvm_msr_entry>& entries) {
  std::vector<uint8_t> buf(sizeof(kvm_abi::MsrsHeader) + entries.size() * sizeof(kvm_msr_entry));
  auto* hdr = reinterpret_cast<kvm_abi::MsrsHeader*>(buf.data());
  hdr->nmsrs = static_cast<uint32_t>(entries.size());
  if (!entries.empty()) {
    std::memcpy(buf.data() + sizeof(*hdr), entries.data(), entries.size() * sizeof(kvm_msr_entry));
  }
  const int n = ioctl(fd, req, buf.data());
  if (n < 0) return ErrnoError(req == kvm_abi::kGetMsrs ? "KVM_GET_MSRS" : "KVM_SET_MSRS");
  if (!entries.empty()) {
    std::memcpy(entries.data(), buf.data() + sizeof(*hdr), entries.size() * sizeof(kvm_msr_entry));
  }
  return static_cast<size_t>(n);
}

}  // namespace

absl::StatusOr<std::vector<uint32_t>> Kvm::MsrIndexList() const {
  kvm_abi::MsrListHeader probe{0};
  // E2BIG with the count filled in.
  if (ioctl(fd(), kvm_abi::kGetMsrIndexList, &probe) < 0 && errno != E2BIG) {
    return ErrnoError("KVM_GET_MSR_INDEX_LIST");
  }
  std::vector<uint8_t> buf(sizeof(kvm_abi::MsrListHeader) + probe.nmsrs * sizeof(uint32_t));
  auto* hdr = reinterpret_cast<kvm_abi::MsrListHeader*>(buf.data());
  hdr->nmsrs = probe.nmsrs;
  if (ioctl(fd(), kvm_abi::kGetMsrIndexList, buf.data()) < 0) {
    return ErrnoError("KVM_GET_MSR_INDEX_LIST");
  }
  std::vector<uint32_t> out(hdr->nmsrs);
  if (!out.empty())
    std::memcpy(out.data(), buf.data() + sizeof(*hdr), out.size() * sizeof(uint32_t));
  return out;
}

absl::StatusOr<std::vector<uint32_t>> Vcpu::ReadableMsrs(std::vector<uint32_t> candidates) const {
  for (;;) {
    std::vector<kvm_msr_entry> entries;
    for (uint32_t index : candidates) entries.push_back(kvm_msr_entry{index, 0, 0});
    EV_ASSIGN_OR_RETURN(size_t n, MsrIoctl(fd(), kvm_abi::kGetMsrs, entries));
    if (n >= candidates.size()) return candidates;
    candidates.erase(candidates.begin() + static_cast<std::ptrdiff_t>(n));
  }
}

absl::StatusOr<uint64_t> Vcpu::GetMsr(uint32_t index) const {
  std::vector<kvm_msr_entry> e = {kvm_msr_entry{index, 0, 0}};
  EV_ASSIGN_OR_RETURN(size_t n, MsrIoctl(fd(), kvm_abi::kGetMsrs, e));
  if (n != 1) return absl::NotFoundError(absl::StrFormat("MSR 0x%x cannot be read", index));
  return e[0].data;
}

absl::StatusOr<VcpuState> Vcpu::SaveState(const std::vector<uint32_t>& msrs,
                                          size_t xsave_size) const {
  VcpuState s;
  EV_RETURN_IF_ERROR(Get(fd(), KVM_GET_MP_STATE, &s.mp_state, "KVM_GET_MP_STATE"));
  EV_RETURN_IF_ERROR(Get(fd(), KVM_GET_REGS, &s.regs, "KVM_GET_REGS"));
  EV_RETURN_IF_ERROR(Get(fd(), KVM_GET_SREGS, &s.sregs, "KVM_GET_SREGS"));
  s.xsave.assign(std::max(xsave_size, sizeof(kvm_abi::XsaveRegion)), 0);
  EV_RETURN_IF_ERROR(
      Get(fd(),
          s.xsave.size() > sizeof(kvm_abi::XsaveRegion) ? kvm_abi::kGetXsave2 : kvm_abi::kGetXsave,
          s.xsave.data(), "KVM_GET_XSAVE"));
  EV_RETURN_IF_ERROR(Get(fd(), KVM_GET_XCRS, &s.xcrs, "KVM_GET_XCRS"));
  EV_RETURN_IF_ERROR(Get(fd(), KVM_GET_LAPIC, &s.lapic, "KVM_GET_LAPIC"));
  EV_RETURN_IF_ERROR(Get(fd(), KVM_GET_VCPU_EVENTS, &s.events, "KVM_GET_VCPU_EVENTS"));
  EV_RETURN_IF_ERROR(Get(fd(), KVM_GET_DEBUGREGS, &s.debugregs, "KVM_GET_DEBUGREGS"));
  for (uint32_t index : msrs) s.msrs.push_back(kvm_msr_entry{index, 0, 0});
  EV_ASSIGN_OR_RETURN(size_t n, MsrIoctl(fd(), kvm_abi::kGetMsrs, s.msrs));
  if (n != s.msrs.size()) {
    return absl::InternalError(
        absl::StrFormat("KVM_GET_MSRS: MSR 0x%x cannot be read", s.msrs[n].index));
  }
  const int khz = ioctl(fd(), KVM_GET_TSC_KHZ, 0);
  s.tsc_khz = khz > 0 ? static_cast<uint32_t>(khz) : 0;
  return s;
}

absl::Status Vcpu::RestoreState(const VcpuState& s, size_t xsave_size) const {
  auto set = [this](unsigned long req, const void* p, const char* what) {  // NOLINT(runtime/int)
    if (ioctl(fd(), req, p) < 0) return ErrnoError(what);
    return absl::OkStatus();
  };
  // CPUID first: what KVM accepts below (XSAVE features, MSRs) depends on it. The LAPIC before
  // the MSRs (the TSC deadline lives in the LAPIC's timer) and the events last, as in KVM's
  // own selftests and Firecracker.
  EV_RETURN_IF_ERROR(SetCpuid(s.cpuid));
  if (s.tsc_khz != 0) {
    const int here = ioctl(fd(), KVM_GET_TSC_KHZ, 0);
    if (here > 0 && static_cast<uint32_t>(here) != s.tsc_khz &&
        ioctl(fd(), KVM_SET_TSC_KHZ, s.tsc_khz) < 0) {
      return absl::FailedPreconditionError(absl::StrFormat(
          "the snapshot's TSC runs at %d kHz, this host's at %d kHz, and KVM cannot scale it",
          s.tsc_khz, here));
    }
  }
  EV_RETURN_IF_ERROR(set(KVM_SET_MP_STATE, &s.mp_state, "KVM_SET_MP_STATE"));
  EV_RETURN_IF_ERROR(set(KVM_SET_REGS, &s.regs, "KVM_SET_REGS"));
  EV_RETURN_IF_ERROR(set(KVM_SET_SREGS, &s.sregs, "KVM_SET_SREGS"));
  // KVM reads as many bytes as this host's XSAVE area has, which may be more than was saved.
  std::vector<uint8_t> xsave = s.xsave;
  if (xsave.size() < xsave_size) xsave.resize(xsave_size, 0);
  EV_RETURN_IF_ERROR(set(kvm_abi::kSetXsave, xsave.data(), "KVM_SET_XSAVE"));
  EV_RETURN_IF_ERROR(set(KVM_SET_XCRS, &s.xcrs, "KVM_SET_XCRS"));
  EV_RETURN_IF_ERROR(set(KVM_SET_LAPIC, &s.lapic, "KVM_SET_LAPIC"));
  std::vector<kvm_msr_entry> msrs = s.msrs;
  EV_ASSIGN_OR_RETURN(size_t n, MsrIoctl(fd(), kvm_abi::kSetMsrs, msrs));
  if (n != msrs.size()) {
    return absl::FailedPreconditionError(
        absl::StrFormat("KVM_SET_MSRS: this host's KVM refuses MSR 0x%x", msrs[n].index));
  }
  EV_RETURN_IF_ERROR(set(KVM_SET_VCPU_EVENTS, &s.events, "KVM_SET_VCPU_EVENTS"));
  return set(KVM_SET_DEBUGREGS, &s.debugregs, "KVM_SET_DEBUGREGS");
}

size_t Vm::XsaveSize() const {
  const int size = ioctl(fd(), KVM_CHECK_EXTENSION, KVM_CAP_XSAVE2);
  return size > static_cast<int>(sizeof(kvm_abi::XsaveRegion)) ? static_cast<size_t>(size)
                                                               : sizeof(kvm_abi::XsaveRegion);
}

absl::StatusOr<Vm::IrqchipState> Vm::SaveIrqchip() const {
  IrqchipState s;
  s.pic_master.chip_id = KVM_IRQCHIP_PIC_MASTER;
  s.pic_slave.chip_id = KVM_IRQCHIP_PIC_SLAVE;
  s.ioapic.chip_id = KVM_IRQCHIP_IOAPIC;
  for (kvm_irqchip* c : {&s.pic_master, &s.pic_slave, &s.ioapic}) {
    EV_RETURN_IF_ERROR(Get(fd(), KVM_GET_IRQCHIP, c, "KVM_GET_IRQCHIP"));
  }
  EV_RETURN_IF_ERROR(Get(fd(), KVM_GET_PIT2, &s.pit, "KVM_GET_PIT2"));
  EV_RETURN_IF_ERROR(Get(fd(), KVM_GET_CLOCK, &s.clock, "KVM_GET_CLOCK"));
  return s;
}

absl::Status Vm::RestoreIrqchip(const IrqchipState& s) const {
  for (const kvm_irqchip* c : {&s.pic_master, &s.pic_slave, &s.ioapic}) {
    if (ioctl(fd(), KVM_SET_IRQCHIP, c) < 0) {
      return ErrnoError(absl::StrFormat("KVM_SET_IRQCHIP %d", c->chip_id));
    }
  }
  if (ioctl(fd(), KVM_SET_PIT2, &s.pit) < 0) return ErrnoError("KVM_SET_PIT2");
  // Only the clock value: the flags describe how it was read, not what to set.
  kvm_clock_data clock{};
  clock.clock = s.clock.clock;
  if (ioctl(fd(), KVM_SET_CLOCK, &clock) < 0) return ErrnoError("KVM_SET_CLOCK");
  return absl::OkStatus();
}

}  // namespace edgevisor
