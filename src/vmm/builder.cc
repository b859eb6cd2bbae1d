#include "src/vmm/builder.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "src/base/errors.h"
#include "src/base/log.h"
#include "src/devices/block/virtio_block.h"
#include "src/devices/net/virtio_net.h"
#include "src/vmm/arch/arch.h"
#include "src/vmm/placement.h"

namespace edgevisor {
namespace {

// A read-only view of a file, mmap'd for the duration of loading.
class MappedFile {
 public:
  static absl::StatusOr<MappedFile> Open(const std::string& path) {
    UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) return ErrnoError(absl::StrFormat("open %s", path));
    struct stat st {};
    if (fstat(fd.get(), &st) != 0) return ErrnoError(absl::StrFormat("stat %s", path));
    if (!S_ISREG(st.st_mode)) {
      return absl::InvalidArgumentError(absl::StrFormat("%s: not a regular file", path));
    }
    MappedFile f;
    f.size_ = static_cast<size_t>(st.st_size);
    if (f.size_ == 0) return f;
    void* p = mmap(nullptr, f.size_, PROT_READ, MAP_PRIVATE, fd.get(), 0);
    if (p == MAP_FAILED) return ErrnoError(absl::StrFormat("mmap %s", path));
    f.data_ = static_cast<const uint8_t*>(p);
    return f;
  }
  MappedFile() = default;
  MappedFile(MappedFile&& o) noexcept
      : data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)) {}
  MappedFile& operator=(MappedFile&& o) noexcept {
    std::swap(data_, o.data_);
    std::swap(size_, o.size_);
    return *this;
  }
  ~MappedFile() {
    if (data_) munmap(const_cast<uint8_t*>(data_), size_);
  }
  absl::Span<const uint8_t> span() const { return {data_, size_}; }

 private:
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

// The KVM VM, guest RAM and the architecture's VM-wide state (the in-kernel irqchip).
absl::Status CreateMachine(const VmConfig& cfg, VmParts& p) {
  EV_ASSIGN_OR_RETURN(p.kvm, Kvm::Open());
  if (cfg.machine.vcpus > p.kvm.max_vcpus()) {
    return UsageError(absl::StrFormat("--vcpus: %d is more than KVM's limit of %d",
                                      cfg.machine.vcpus, p.kvm.max_vcpus()));
  }
  EV_ASSIGN_OR_RETURN(p.vm, Vm::Create(p.kvm));
  EV_ASSIGN_OR_RETURN(p.stop, StopController::Create());
  EV_ASSIGN_OR_RETURN(GuestMemory mem,
                      GuestMemory::Create(arch::RamLayout(cfg.machine.mem_mib << 20)));
  p.mem = std::make_unique<GuestMemory>(std::move(mem));
  uint32_t slot = 0;
  for (const GuestRegion& r : p.mem->regions()) {
    EV_RETURN_IF_ERROR(p.vm.SetUserMemoryRegion(slot++, r.gpa, r.size, r.hva));
  }
  EV_ASSIGN_OR_RETURN(p.arch, arch::SetupVm(p.vm, cfg.machine.vcpus, cfg.machine.gic));
  return absl::OkStatus();
}

// The drives and network interfaces, in the order given: that order is their slot order.
absl::Status AddVirtioDevices(const VmConfig& cfg, VmParts& p, VirtioPlacement& placement) {
  // With seccomp on, a role compiled out (seccomp::FilterRoles) must not become an unfiltered
  // thread.
  if (p.filters.main &&
      ((!cfg.drives.empty() && !p.filters.block) || (!cfg.nets.empty() && !p.filters.net))) {
    return absl::InternalError("a device thread's seccomp filter was not compiled");
  }
  for (size_t i = 0; i < cfg.drives.size(); ++i) {
    const DriveConfig& d = cfg.drives[i];
    auto blk = block::VirtioBlock::Create(d, absl::StrFormat("blk%d", i), p.filters.block);
    if (!blk.ok()) return Annotate(blk.status(), absl::StrFormat("--drive %s", d.id));
    spdlog::debug("drive {}: {} sectors, {} engine, {} queue(s)", d.id, (*blk)->capacity_sectors(),
                  (*blk)->engine_kind() == block::IoEngine::Kind::kUring ? "io_uring" : "sync",
                  d.queues);
    p.blocks.emplace_back(d.id, blk->get());
    p.counted.emplace_back(d.id, blk->get());
    EV_RETURN_IF_ERROR(placement.Place(std::move(*blk), absl::StrFormat("virtio-blk %s", d.id)));
  }
  for (size_t i = 0; i < cfg.nets.size(); ++i) {
    const NetConfig& n = cfg.nets[i];
    auto net = net::VirtioNet::Create(n, absl::StrFormat("net%d", i), p.filters.net);
    if (!net.ok()) return Annotate(net.status(), absl::StrFormat("--net tap=%s", n.tap));
    p.counted.emplace_back(n.id.empty() ? absl::StrFormat("net%d", i) : n.id, net->get());
    EV_RETURN_IF_ERROR(placement.Place(std::move(*net), absl::StrFormat("virtio-net %s", n.tap)));
  }
  return absl::OkStatus();
}

// Loads the kernel and initrd with `cmdline`. Errors are usage errors naming the input.
absl::StatusOr<arch::BootEntry> LoadKernel(const BootSource& boot, const std::string& cmdline,
                                           const GuestMemory& mem) {
  auto kernel = MappedFile::Open(boot.kernel_path);
  if (!kernel.ok()) return UsageError(absl::StrCat("--kernel ", kernel.status().message()));
  MappedFile initrd;
  if (!boot.initrd_path.empty()) {
    auto initrd_or = MappedFile::Open(boot.initrd_path);
    if (!initrd_or.ok()) return UsageError(absl::StrCat("--initrd ", initrd_or.status().message()));
    initrd = std::move(*initrd_or);
    if (initrd.span().empty()) {
      return UsageError(absl::StrFormat("--initrd %s: the file is empty", boot.initrd_path));
    }
  }
  auto entry = arch::LoadKernel(kernel->span(), cmdline, initrd.span(), mem, boot.protocol);
  if (!entry.ok()) {
    // Errors about other inputs (--mem, --initrd, --cmdline) are usage errors naming them;
    // anything else is the kernel file's fault.
    if (IsUsageError(entry.status())) return entry.status();
    return UsageError(
        absl::StrFormat("--kernel %s: %s", boot.kernel_path, entry.status().message()));
  }
  const char* protocol = "PVH";
  if (entry->protocol == arch::BootEntry::Protocol::kLinux64) {
    protocol = "Linux 64-bit boot protocol";
  } else if (entry->protocol == arch::BootEntry::Protocol::kArm64Image) {
    protocol = "arm64 Image";
  }
  spdlog::debug("kernel {}: {} entry at 0x{:x}", boot.kernel_path, protocol, entry->entry);
  return entry;
}

// The platform description, the vCPUs and their boot state, then the interrupts.
absl::Status PrepareBoot(const VmConfig& cfg, const arch::BootEntry& boot,
                         const VirtioPlacement& placement, VmParts& p) {
  EV_RETURN_IF_ERROR(
      arch::WritePlatformDescription(*p.mem, cfg.machine.vcpus, placement.slots(), boot, p.arch));
  for (int i = 0; i < cfg.machine.vcpus; ++i) {
    EV_ASSIGN_OR_RETURN(std::unique_ptr<Vcpu> vcpu, Vcpu::Create(p.kvm, p.vm, i));
    EV_RETURN_IF_ERROR(arch::SetupVcpu(p.kvm, *vcpu, cfg.machine.vcpus, boot, *p.mem, p.arch));
    p.vcpus.push_back(std::move(vcpu));
  }
  EV_RETURN_IF_ERROR(arch::FinishVm(p.vm, p.arch));
  return placement.ConnectInterrupts();
}

// The console's output fd (-1: off), and its input for stdio.
absl::StatusOr<int> OpenConsole(const SerialConfig& serial, VmParts& p) {
  switch (serial.mode) {
    case SerialConfig::Mode::kStdio:
      p.serial_input_fd = STDIN_FILENO;
      return STDOUT_FILENO;
    case SerialConfig::Mode::kFile:
      p.serial_output_file.Reset(
          open(serial.path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
      if (!p.serial_output_file.valid()) {
        int err = errno;
        return UsageError(absl::StrFormat("--serial file:%s: %s", serial.path, strerror(err)));
      }
      return p.serial_output_file.get();
    case SerialConfig::Mode::kOff:
      break;
  }
  return -1;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Vmm>> BuildVm(const VmConfig& cfg, ProcessClock vmm_start,
                                             const seccomp::ThreadFilters& filters) {
  VmParts p;
  p.filters = filters;
  p.id = cfg.id;
  p.reboot_exit_code = cfg.reboot_exit_code;
  EV_RETURN_IF_ERROR(CreateMachine(cfg, p));

  // virtio devices before the kernel: their command-line entries go into the boot information.
  std::string cmdline = cfg.boot.cmdline;
  const bool on_cmdline = arch::VirtioSlotsOnCmdline() && cfg.virtio_mmio_cmdline;
  VirtioPlacement placement(p, on_cmdline ? &cmdline : nullptr);
  EV_RETURN_IF_ERROR(AddVirtioDevices(cfg, p, placement));
  EV_ASSIGN_OR_RETURN(arch::BootEntry boot, LoadKernel(cfg.boot, cmdline, *p.mem));
  EV_RETURN_IF_ERROR(PrepareBoot(cfg, boot, placement, p));

  // The platform devices: the boot timer (at Firecracker's address on both architectures),
  // then the console and the rest, per architecture.
  EV_ASSIGN_OR_RETURN(const int console_out, OpenConsole(cfg.serial, p));
  p.boot_timer = std::make_shared<BootTimer>(vmm_start);
  EV_RETURN_IF_ERROR(
      p.mmio->Insert(p.boot_timer, arch::BootTimerAddress(), BootTimer::kSize, "boot-timer"));
  EV_RETURN_IF_ERROR(arch::AddPlatformDevices({.console_out_fd = console_out,
                                               .debug_exit = cfg.debug_exit,
                                               .reboot_exit_code = cfg.reboot_exit_code,
                                               .rtc_filter = filters.rtc},
                                              p));

  spdlog::debug("built VM: {} vCPUs, {} MiB, kernel {}", cfg.machine.vcpus, cfg.machine.mem_mib,
                cfg.boot.kernel_path);
  return std::make_unique<Vmm>(std::move(p));
}

}  // namespace edgevisor
