// RAII wrappers for the /dev/kvm system fd and the VM fd.
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "src/base/fd.h"

namespace edgevisor {

class Kvm {
 public:
  // Opens /dev/kvm and checks the API version and the capabilities edgevisor relies on.
  static absl::StatusOr<Kvm> Open(const char* path = "/dev/kvm");

  int fd() const { return fd_.get(); }
  int CheckExtension(long cap) const;  // NOLINT(runtime/int): the ioctl's type
  int vcpu_mmap_size() const { return vcpu_mmap_size_; }
  int max_vcpus() const { return max_vcpus_; }
#if defined(__x86_64__)
  // KVM_GET_SUPPORTED_CPUID, fetched once.
  absl::StatusOr<std::vector<kvm_cpuid_entry2>> SupportedCpuid() const;
  // KVM_GET_MSR_INDEX_LIST: the MSRs KVM can save and restore for a guest.
  absl::StatusOr<std::vector<uint32_t>> MsrIndexList() const;
#endif

 private:
  UniqueFd fd_;
  int vcpu_mmap_size_ = 0;
  int max_vcpus_ = 1;
};

class Vm {
 public:
  static absl::StatusOr<Vm> Create(const Kvm& kvm);

  int fd() const { return fd_.get(); }
  // LOG_DIRTY: KVM keeps a log of the pages the vCPUs write (KVM_MEM_LOG_DIRTY_PAGES).
  absl::Status SetUserMemoryRegion(uint32_t slot, uint64_t gpa, uint64_t size, void* hva,
                                   bool log_dirty = false) const;
  // The pages of SLOT (SIZE bytes) the vCPUs wrote since the last call, one bit per 4 KiB page
  // (KVM_GET_DIRTY_LOG, which also clears the log).
  absl::StatusOr<std::vector<uint64_t>> GetDirtyLog(uint32_t slot, uint64_t size) const;
  // Drives a level-triggered interrupt line of the in-kernel irqchip. Static so that a device
  // can hold the fd number without pointing at a Vm object that may move.
  static absl::Status SetIrqLine(int vm_fd, uint32_t irq, bool level);
  // Guest writes of `datamatch` (len bytes) to MMIO `addr` signal `fd` inside KVM, with no
  // exit to user space.
  absl::Status AddIoeventfd(int fd, uint64_t addr, uint32_t len, uint64_t datamatch) const;
  // Writing to `fd` injects an edge on `gsi` through the in-kernel irqchip.
  absl::Status AddIrqfd(int fd, uint32_t gsi) const;

#if defined(__x86_64__)
  // The in-kernel irqchip (PIC master, PIC slave, IOAPIC), PIT and kvmclock, for snapshots.
  struct IrqchipState {
    kvm_irqchip pic_master{}, pic_slave{}, ioapic{};
    kvm_pit_state2 pit{};
    kvm_clock_data clock{};
  };
  absl::StatusOr<IrqchipState> SaveIrqchip() const;
  // The bytes of a vCPU's XSAVE area that KVM_GET_XSAVE2 writes and KVM_SET_XSAVE reads
  // (KVM_CAP_XSAVE2, asked of the VM as KVM documents; at least 4096).
  size_t XsaveSize() const;
  absl::Status RestoreIrqchip(const IrqchipState& s) const;
#endif

 private:
  UniqueFd fd_;
};

}  // namespace edgevisor
