#include "src/platform/vcpu.h"

#include <sys/ioctl.h>
#include <sys/mman.h>

#include <cstring>

#include "absl/strings/str_format.h"
#include "src/base/errors.h"
#include "src/platform/kvm_abi.h"

namespace edgevisor {

absl::StatusOr<std::unique_ptr<Vcpu>> Vcpu::Create(const Kvm& kvm, const Vm& vm, int index) {
  UniqueFd fd(ioctl(vm.fd(), KVM_CREATE_VCPU, index));
  if (!fd.valid()) return ErrnoError(absl::StrFormat("KVM_CREATE_VCPU %d", index));
  const size_t size = static_cast<size_t>(kvm.vcpu_mmap_size());
  void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
  if (p == MAP_FAILED) return ErrnoError(absl::StrFormat("mmap kvm_run of vcpu %d", index));
  return std::unique_ptr<Vcpu>(new Vcpu(index, std::move(fd), static_cast<kvm_run*>(p), size));
}

Vcpu::~Vcpu() { munmap(run_, run_size_); }

absl::Status Vcpu::Run() {
  if (ioctl(fd(), KVM_RUN, 0) < 0) {
    if (errno == EINTR || errno == EAGAIN) {
      run_->exit_reason = KVM_EXIT_INTR;
      std::atomic_ref<uint8_t>(run_->immediate_exit).store(0);
      return absl::OkStatus();
    }
    return ErrnoError(absl::StrFormat("KVM_RUN on vcpu %d", index_));
  }
  return absl::OkStatus();
}

void Vcpu::RequestImmediateExit() { std::atomic_ref<uint8_t>(run_->immediate_exit).store(1); }

absl::StatusOr<kvm_mp_state> Vcpu::GetMpState() const {
  kvm_mp_state s{};
  if (ioctl(fd(), KVM_GET_MP_STATE, &s) < 0) return ErrnoError("KVM_GET_MP_STATE");
  return s;
}

#if defined(__x86_64__)
absl::StatusOr<kvm_regs> Vcpu::GetRegs() const {
  kvm_regs r{};
  if (ioctl(fd(), KVM_GET_REGS, &r) < 0) return ErrnoError("KVM_GET_REGS");
  return r;
}

absl::Status Vcpu::SetRegs(const kvm_regs& regs) const {
  if (ioctl(fd(), KVM_SET_REGS, &regs) < 0) return ErrnoError("KVM_SET_REGS");
  return absl::OkStatus();
}

absl::StatusOr<kvm_sregs> Vcpu::GetSregs() const {
  kvm_sregs s{};
  if (ioctl(fd(), KVM_GET_SREGS, &s) < 0) return ErrnoError("KVM_GET_SREGS");
  return s;
}

absl::Status Vcpu::SetSregs(const kvm_sregs& sregs) const {
  if (ioctl(fd(), KVM_SET_SREGS, &sregs) < 0) return ErrnoError("KVM_SET_SREGS");
  return absl::OkStatus();
}

absl::Status Vcpu::SetCpuid(const std::vector<kvm_cpuid_entry2>& entries) const {
  std::vector<uint8_t> buf(sizeof(kvm_abi::Cpuid2Header) +
                           entries.size() * sizeof(kvm_cpuid_entry2));
  auto* hdr = reinterpret_cast<kvm_abi::Cpuid2Header*>(buf.data());
  hdr->nent = static_cast<uint32_t>(entries.size());
  std::memcpy(buf.data() + sizeof(*hdr), entries.data(), entries.size() * sizeof(kvm_cpuid_entry2));
  if (ioctl(fd(), kvm_abi::kSetCpuid2, buf.data()) < 0) return ErrnoError("KVM_SET_CPUID2");
  return absl::OkStatus();
}
#endif

}  // namespace edgevisor
