// One vCPU: its fd and its mmap'd kvm_run page.
#pragma once

#include <linux/kvm.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "src/base/fd.h"
#include "src/platform/kvm.h"

namespace edgevisor {

#if defined(__x86_64__)
// Everything KVM holds for one x86_64 vCPU, as a snapshot records it. The structures are KVM's
// own; xsave is as long as KVM_CAP_XSAVE2 says (at least 4096 bytes).
struct VcpuState {
  std::vector<kvm_cpuid_entry2> cpuid;  // what the guest was given (KVM_SET_CPUID2)
  kvm_mp_state mp_state{};
  kvm_regs regs{};
  kvm_sregs sregs{};
  std::vector<uint8_t> xsave;
  kvm_xcrs xcrs{};
  kvm_lapic_state lapic{};
  std::vector<kvm_msr_entry> msrs;
  kvm_vcpu_events events{};
  kvm_debugregs debugregs{};
  uint32_t tsc_khz = 0;  // 0: unknown
};
#elif defined(__aarch64__)
// Everything KVM holds for one aarch64 vCPU, as a snapshot records it: the registers that
// KVM_GET_REG_LIST names (core, FP/SIMD, system, timer, firmware pseudo-registers), each as
// long as its id says, their values end to end in list order; the PSCI power state; and the
// pending SError.
struct VcpuState {
  kvm_mp_state mp_state{};
  std::vector<uint64_t> reg_ids;
  std::vector<uint8_t> reg_values;
  kvm_vcpu_events events{};
};
// The bytes a KVM_{GET,SET}_ONE_REG id transfers (its size field).
inline size_t OneRegSize(uint64_t id) {
  return size_t{1} << ((id & KVM_REG_SIZE_MASK) >> KVM_REG_SIZE_SHIFT);
}
#endif

class Vcpu {
 public:
  static absl::StatusOr<std::unique_ptr<Vcpu>> Create(const Kvm& kvm, const Vm& vm, int index);
  ~Vcpu();
  Vcpu(const Vcpu&) = delete;
  Vcpu& operator=(const Vcpu&) = delete;

  int index() const { return index_; }
  int fd() const { return fd_.get(); }
  kvm_run* run() const { return run_; }

  // KVM_RUN. An interrupted run (a kick, see RequestImmediateExit) returns OK with
  // run()->exit_reason == KVM_EXIT_INTR.
  absl::Status Run();
  // Makes the current or next KVM_RUN return at once; pair with a signal to the vCPU thread.
  void RequestImmediateExit();

  absl::StatusOr<kvm_mp_state> GetMpState() const;
#if defined(__x86_64__)
  absl::StatusOr<kvm_regs> GetRegs() const;
  absl::Status SetRegs(const kvm_regs& regs) const;
  absl::StatusOr<kvm_sregs> GetSregs() const;
  absl::Status SetSregs(const kvm_sregs& sregs) const;
  absl::Status SetCpuid(const std::vector<kvm_cpuid_entry2>& entries) const;

  // The MSRs of CANDIDATES (KVM's index list) that this vCPU can read: KVM lists MSRs of
  // features the guest's CPUID may lack, and KVM_GET_MSRS stops at the first of those.
  absl::StatusOr<std::vector<uint32_t>> ReadableMsrs(std::vector<uint32_t> candidates) const;
  // The whole vCPU (the thread running it must be out of KVM_RUN, e.g. paused) but its CPUID,
  // which the caller knows (KVM_GET_CPUID2 may report more than was set). MSRS are the indexes
  // to save (ReadableMsrs). XSAVE_SIZE: KVM_CAP_XSAVE2's answer (4096 or more).
  absl::StatusOr<VcpuState> SaveState(const std::vector<uint32_t>& msrs, size_t xsave_size) const;
  // One MSR (KVM_GET_MSRS).
  absl::StatusOr<uint64_t> GetMsr(uint32_t index) const;
  // Restores a saved vCPU on a freshly created one, CPUID first. Errors name what KVM refused.
  // XSAVE_SIZE: this host's KVM_CAP_XSAVE2 (KVM_SET_XSAVE reads that many bytes).
  absl::Status RestoreState(const VcpuState& s, size_t xsave_size) const;
#elif defined(__aarch64__)
  // The whole vCPU (its thread must be out of KVM_RUN, e.g. paused).
  absl::StatusOr<VcpuState> SaveState() const;
  // Restores a saved vCPU on one that KVM_ARM_VCPU_INIT has initialized with the same features.
  // Errors name the register KVM refused (a host whose CPU differs refuses its ID registers).
  absl::Status RestoreState(const VcpuState& s) const;
  // MPIDR_EL1: the affinity that addresses this vCPU's redistributor and GIC CPU registers.
  absl::StatusOr<uint64_t> Mpidr() const;
#endif

 private:
  Vcpu(int index, UniqueFd fd, kvm_run* run, size_t run_size)
      : index_(index), fd_(std::move(fd)), run_(run), run_size_(run_size) {}
  int index_;
  UniqueFd fd_;
  kvm_run* run_;
  size_t run_size_;
};

}  // namespace edgevisor
