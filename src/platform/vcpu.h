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
