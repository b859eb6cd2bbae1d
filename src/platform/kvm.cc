#include "src/platform/kvm.h"

#include <fcntl.h>
#include <sys/ioctl.h>

#include <cstring>

#include "absl/strings/str_format.h"
#include "src/base/errors.h"
#include "src/platform/guest_memory.h"
#include "src/platform/kvm_abi.h"

namespace edgevisor {

absl::StatusOr<Kvm> Kvm::Open(const char* path) {
  Kvm kvm;
  kvm.fd_.Reset(open(path, O_RDWR | O_CLOEXEC));
  if (!kvm.fd_.valid()) {
    int err = errno;
    return absl::ErrnoToStatus(
        err, absl::StrFormat("open %s (is KVM enabled and are you in the kvm group?)", path));
  }
  int version = ioctl(kvm.fd(), KVM_GET_API_VERSION, 0);
  if (version != KVM_API_VERSION) {
    return absl::FailedPreconditionError(
        absl::StrFormat("%s: KVM API version %d, expected %d", path, version, KVM_API_VERSION));
  }
  for (long cap : {KVM_CAP_USER_MEMORY, KVM_CAP_IMMEDIATE_EXIT}) {  // NOLINT(runtime/int)
    if (kvm.CheckExtension(cap) <= 0) {
      return absl::FailedPreconditionError(
          absl::StrFormat("%s lacks required capability %d", path, cap));
    }
  }
  kvm.vcpu_mmap_size_ = ioctl(kvm.fd(), KVM_GET_VCPU_MMAP_SIZE, 0);
  if (kvm.vcpu_mmap_size_ <= 0) return ErrnoError("KVM_GET_VCPU_MMAP_SIZE");
  int max = kvm.CheckExtension(KVM_CAP_MAX_VCPUS);
  if (max <= 0) max = kvm.CheckExtension(KVM_CAP_NR_VCPUS);
  kvm.max_vcpus_ = max > 0 ? max : 4;
  return kvm;
}

int Kvm::CheckExtension(long cap) const {  // NOLINT(runtime/int)
  return ioctl(fd(), KVM_CHECK_EXTENSION, cap);
}

#if defined(__x86_64__)
absl::StatusOr<std::vector<kvm_cpuid_entry2>> Kvm::SupportedCpuid() const {
  constexpr int kMaxEntries = 256;
  std::vector<uint8_t> buf(sizeof(kvm_abi::Cpuid2Header) + kMaxEntries * sizeof(kvm_cpuid_entry2));
  auto* hdr = reinterpret_cast<kvm_abi::Cpuid2Header*>(buf.data());
  hdr->nent = kMaxEntries;
  if (ioctl(fd(), kvm_abi::kGetSupportedCpuid, buf.data()) < 0) {
    return ErrnoError("KVM_GET_SUPPORTED_CPUID");
  }
  std::vector<kvm_cpuid_entry2> entries(hdr->nent);
  std::memcpy(entries.data(), buf.data() + sizeof(*hdr), hdr->nent * sizeof(kvm_cpuid_entry2));
  return entries;
}
#endif

absl::StatusOr<Vm> Vm::Create(const Kvm& kvm) {
  Vm vm;
  vm.fd_.Reset(ioctl(kvm.fd(), KVM_CREATE_VM, 0));
  if (!vm.fd_.valid()) return ErrnoError("KVM_CREATE_VM");
  return vm;
}

absl::Status Vm::SetUserMemoryRegion(uint32_t slot, uint64_t gpa, uint64_t size, void* hva,
                                     bool log_dirty) const {
  kvm_userspace_memory_region r{};
  r.slot = slot;
  r.flags = log_dirty ? KVM_MEM_LOG_DIRTY_PAGES : 0;
  r.guest_phys_addr = gpa;
  r.memory_size = size;
  r.userspace_addr = reinterpret_cast<uint64_t>(hva);
  if (ioctl(fd(), KVM_SET_USER_MEMORY_REGION, &r) < 0) {
    return ErrnoError(
        absl::StrFormat("KVM_SET_USER_MEMORY_REGION slot %d gpa 0x%x size 0x%x", slot, gpa, size));
  }
  return absl::OkStatus();
}

absl::Status Vm::SetIrqLine(int vm_fd, uint32_t irq, bool level) {
  kvm_irq_level l{};
  l.irq = irq;
  l.level = level ? 1 : 0;
  if (ioctl(vm_fd, KVM_IRQ_LINE, &l) < 0)
    return ErrnoError(absl::StrFormat("KVM_IRQ_LINE %d", irq));
  return absl::OkStatus();
}

}  // namespace edgevisor

namespace edgevisor {

absl::Status Vm::AddIoeventfd(int fd, uint64_t addr, uint32_t len, uint64_t datamatch) const {
  kvm_ioeventfd io{};
  io.datamatch = datamatch;
  io.addr = addr;
  io.len = len;
  io.fd = fd;
  io.flags = KVM_IOEVENTFD_FLAG_DATAMATCH;
  if (ioctl(fd_.get(), KVM_IOEVENTFD, &io) < 0) {
    return ErrnoError(absl::StrFormat("KVM_IOEVENTFD at 0x%x", addr));
  }
  return absl::OkStatus();
}

absl::Status Vm::AddIrqfd(int fd, uint32_t gsi) const {
  kvm_irqfd irq{};
  irq.fd = static_cast<uint32_t>(fd);
  irq.gsi = gsi;
  if (ioctl(fd_.get(), KVM_IRQFD, &irq) < 0)
    return ErrnoError(absl::StrFormat("KVM_IRQFD gsi %d", gsi));
  return absl::OkStatus();
}

absl::StatusOr<std::vector<uint64_t>> Vm::GetDirtyLog(uint32_t slot, uint64_t size) const {
  std::vector<uint64_t> bits(GuestMemory::DirtyBitmapWords(size), 0);
  kvm_dirty_log log{};
  log.slot = slot;
  log.dirty_bitmap = bits.data();
  if (ioctl(fd(), KVM_GET_DIRTY_LOG, &log) < 0) {
    return ErrnoError(absl::StrFormat("KVM_GET_DIRTY_LOG slot %d", slot));
  }
  return bits;
}

}  // namespace edgevisor
