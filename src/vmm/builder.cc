#include "src/vmm/builder.h"
#if defined(__aarch64__)
#include "src/platform/vgic_state.h"
#endif

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "src/base/errors.h"
#include "src/base/log.h"
#include "src/devices/balloon/virtio_balloon.h"
#include "src/devices/block/virtio_block.h"
#include "src/devices/net/mmds_service.h"
#include "src/devices/net/virtio_net.h"
#include "src/devices/rng/virtio_rng.h"
#include "src/devices/vsock/virtio_vsock.h"
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

// The KVM VM, guest RAM and the architecture's VM-wide state (the in-kernel irqchip). RAM maps
// MEM_FD privately when given (a snapshot's memory file), else anonymous memory.
absl::Status CreateMachine(const VmConfig& cfg, VmParts& p, int mem_fd = -1) {
  EV_ASSIGN_OR_RETURN(p.kvm, Kvm::Open());
  if (cfg.machine.vcpus > p.kvm.max_vcpus()) {
    return UsageError(absl::StrFormat("--vcpus: %d is more than KVM's limit of %d",
                                      cfg.machine.vcpus, p.kvm.max_vcpus()));
  }
  EV_ASSIGN_OR_RETURN(p.vm, Vm::Create(p.kvm));
  EV_ASSIGN_OR_RETURN(p.stop, StopController::Create());
  EV_ASSIGN_OR_RETURN(GuestMemory mem,
                      GuestMemory::Create(arch::RamLayout(cfg.machine.mem_mib << 20), mem_fd));
  p.mem = std::make_unique<GuestMemory>(std::move(mem));
  // Diff snapshots: KVM logs the vCPUs' writes, GuestMemory the devices'.
  const bool track = cfg.machine.track_dirty_pages;
  if (track) p.mem->TrackDirty();
  uint32_t slot = 0;
  for (const GuestRegion& r : p.mem->regions()) {
    EV_RETURN_IF_ERROR(p.vm.SetUserMemoryRegion(slot++, r.gpa, r.size, r.hva, track));
  }
  // A restored VM (MEM_FD) must get the aarch64 vCPU features its snapshot had, no fewer.
  EV_ASSIGN_OR_RETURN(p.arch, arch::SetupVm(p.vm, cfg.machine, /*require_features=*/mem_fd >= 0));
  return absl::OkStatus();
}

// The drives and network interfaces, in the order given, then the entropy device and the
// balloon: that order is their slot order.
absl::Status AddVirtioDevices(const VmConfig& cfg, VmParts& p, VirtioPlacement& placement) {
  // With seccomp on, a role compiled out (seccomp::FilterRoles) must not become an unfiltered
  // thread.
  if (p.filters.main && ((!cfg.drives.empty() && !p.filters.block) ||
                         (!cfg.nets.empty() && !p.filters.net) || (cfg.entropy && !p.filters.rng) ||
                         (cfg.balloon && !p.filters.balloon) || (cfg.vsock && !p.filters.vsock))) {
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
  std::shared_ptr<mmds::Service> mmds = cfg.mmds_service;
  if (cfg.mmds) {
    if (!mmds) mmds = std::make_shared<mmds::Service>();
    mmds->Configure(cfg.mmds->version, cfg.mmds->imds_compat);
  }
  for (size_t i = 0; i < cfg.nets.size(); ++i) {
    const NetConfig& n = cfg.nets[i];
    auto net = net::VirtioNet::Create(n, absl::StrFormat("net%d", i), p.filters.net);
    if (!net.ok()) return Annotate(net.status(), absl::StrFormat("--net tap=%s", n.tap));
    if (cfg.mmds &&
        std::find(cfg.mmds->network_interfaces.begin(), cfg.mmds->network_interfaces.end(), n.id) !=
            cfg.mmds->network_interfaces.end()) {
      (*net)->EnableMmds(mmds, cfg.mmds->ipv4_address);
    }
    p.counted.emplace_back(n.id.empty() ? absl::StrFormat("net%d", i) : n.id, net->get());
    p.nets.emplace_back(n.id, net->get());
    EV_RETURN_IF_ERROR(placement.Place(std::move(*net), absl::StrFormat("virtio-net %s", n.tap)));
  }
  if (cfg.entropy) {
    auto rng = rng::VirtioRng::Create(*cfg.entropy, "rng", p.filters.rng);
    if (!rng.ok()) return Annotate(rng.status(), "entropy");
    p.counted.emplace_back("rng", rng->get());
    EV_RETURN_IF_ERROR(placement.Place(std::move(*rng), "virtio-rng"));
  }
  if (cfg.balloon) {
    auto balloon = balloon::VirtioBalloon::Create(*cfg.balloon, "balloon", p.filters.balloon);
    if (!balloon.ok()) return Annotate(balloon.status(), "balloon");
    p.counted.emplace_back("balloon", balloon->get());
    p.balloon = balloon->get();
    EV_RETURN_IF_ERROR(placement.Place(std::move(*balloon), "virtio-balloon"));
  }
  if (cfg.vsock) {
    auto vsock = vsock::VirtioVsock::Create(*cfg.vsock, "vsock", p.filters.vsock);
    if (!vsock.ok()) return Annotate(vsock.status(), "vsock");
    p.counted.emplace_back("vsock", vsock->get());
    EV_RETURN_IF_ERROR(placement.Place(std::move(*vsock), "virtio-vsock"));
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
  EV_RETURN_IF_ERROR(arch::FinishVm(p.vm, p.arch, p.vcpus));
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

// The platform devices: the boot timer (at Firecracker's address on both architectures), then
// the console and the rest, per architecture.
absl::Status AddPlatform(const VmConfig& cfg, ProcessClock vmm_start, VmParts& p) {
  EV_ASSIGN_OR_RETURN(const int console_out, OpenConsole(cfg.serial, p));
  p.boot_timer = std::make_shared<BootTimer>(vmm_start);
  EV_RETURN_IF_ERROR(
      p.mmio->Insert(p.boot_timer, arch::BootTimerAddress(), BootTimer::kSize, "boot-timer"));
  return arch::AddPlatformDevices({.console_out_fd = console_out,
                                   .debug_exit = cfg.debug_exit,
                                   .reboot_exit_code = cfg.reboot_exit_code,
                                   .rtc_filter = p.filters.rtc},
                                  p);
}

#if defined(__x86_64__)
// A guest's TSC goes on from the saved value where KVM can offset it. Some hosts' KVM cannot
// (PVM keeps the guest on the host's TSC): say so, since the guest then sees the whole time it
// was away as having passed, as after a long stall.
void WarnIfTscNotRestored(const Vcpu& vcpu, const VcpuState& saved) {
  constexpr uint32_t kMsrTsc = 0x10;
  for (const kvm_msr_entry& e : saved.msrs) {
    if (e.index != kMsrTsc) continue;
    auto now = vcpu.GetMsr(kMsrTsc);
    const uint64_t tolerance = uint64_t{saved.tsc_khz ? saved.tsc_khz : 1'000'000} * 100;  // 100 ms
    if (now.ok() && (*now < e.data || *now - e.data > tolerance)) {
      spdlog::warn(
          "this host's KVM did not restore the guest's TSC (it runs {:.1f} s ahead of the "
          "snapshot): the guest sees the time it was away as passed",
          (static_cast<double>(*now) - static_cast<double>(e.data)) /
              (1000.0 * (saved.tsc_khz ? saved.tsc_khz : 1'000'000)));
    }
    return;
  }
}
#endif

// The vCPUs and the interrupt controller of a restored VM, then what must follow the vCPUs'
// creation (FinishVm). x86_64: the guest keeps the CPU it saw, so this host's KVM must be able
// to give it every feature; the irqchip goes first. aarch64: the vCPUs are initialized and the
// vGIC too (its registers are written into an initialized one), then the registers and the vGIC.
absl::Status RestoreCpusAndIrqchip(const snapshot::VmState& state, VmParts& p) {
  const int vcpus = p.config.machine.vcpus;
#if defined(__x86_64__)
  EV_ASSIGN_OR_RETURN(std::vector<kvm_cpuid_entry2> host, p.kvm.SupportedCpuid());
  std::vector<std::string> missing = snapshot::MissingCpuFeatures(state.vcpus[0].cpuid, host);
  if (!missing.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("the snapshot's guest saw CPU features this host's KVM cannot give: ",
                     absl::StrJoin(missing, "; ")));
  }
  EV_RETURN_IF_ERROR(Annotate(p.vm.RestoreIrqchip(state.irqchip), "snapshot: irqchip"));
  const size_t xsave_size = p.vm.XsaveSize();
  for (int i = 0; i < vcpus; ++i) {
    EV_ASSIGN_OR_RETURN(std::unique_ptr<Vcpu> vcpu, Vcpu::Create(p.kvm, p.vm, i));
    EV_RETURN_IF_ERROR(Annotate(vcpu->RestoreState(state.vcpus[i], xsave_size),
                                absl::StrFormat("snapshot: vcpus[%d]", i)));
    p.vcpus.push_back(std::move(vcpu));
  }
  WarnIfTscNotRestored(*p.vcpus[0], state.vcpus[0]);
  return arch::FinishVm(p.vm, p.arch, p.vcpus);
#else
  for (int i = 0; i < vcpus; ++i) {
    EV_ASSIGN_OR_RETURN(std::unique_ptr<Vcpu> vcpu, Vcpu::Create(p.kvm, p.vm, i));
    EV_RETURN_IF_ERROR(arch::InitVcpu(*vcpu, p.arch));
    p.vcpus.push_back(std::move(vcpu));
  }
  EV_RETURN_IF_ERROR(arch::FinishVm(p.vm, p.arch, p.vcpus));
  for (int i = 0; i < vcpus; ++i) {
    EV_RETURN_IF_ERROR(Annotate(p.vcpus[i]->RestoreState(state.vcpus[i]),
                                absl::StrFormat("snapshot: vcpus[%d]", i)));
  }
  return Annotate(
      RestoreGic(p.arch.irqchip.get(), p.arch.its.valid() ? p.arch.its.get() : -1, state.gic),
      "snapshot: gic");
#endif
}

}  // namespace

absl::StatusOr<std::unique_ptr<Vmm>> BuildVm(const VmConfig& cfg, ProcessClock vmm_start,
                                             const seccomp::ThreadFilters& filters) {
  VmParts p;
  p.filters = filters;
  p.id = cfg.id;
  p.config = cfg;
  p.reboot_exit_code = cfg.reboot_exit_code;
  EV_RETURN_IF_ERROR(CreateMachine(cfg, p));
  p.config.machine.arm64 = p.arch.cpu;  // what the guest got: what a snapshot must restore

  // virtio devices before the kernel: their command-line entries go into the boot information.
  std::string cmdline = cfg.boot.cmdline;
  const bool on_cmdline = arch::VirtioSlotsOnCmdline() && cfg.virtio_mmio_cmdline;
  VirtioPlacement placement(p, on_cmdline ? &cmdline : nullptr);
  EV_RETURN_IF_ERROR(AddVirtioDevices(cfg, p, placement));
  EV_ASSIGN_OR_RETURN(arch::BootEntry boot, LoadKernel(cfg.boot, cmdline, *p.mem));
  EV_RETURN_IF_ERROR(PrepareBoot(cfg, boot, placement, p));

  EV_RETURN_IF_ERROR(AddPlatform(cfg, vmm_start, p));

  spdlog::debug("built VM: {} vCPUs, {} MiB, kernel {}", cfg.machine.vcpus, cfg.machine.mem_mib,
                cfg.boot.kernel_path);
  return std::make_unique<Vmm>(std::move(p));
}

absl::StatusOr<std::unique_ptr<Vmm>> RestoreVm(const snapshot::VmState& state,
                                               const RestoreOptions& opts, ProcessClock vmm_start,
                                               const seccomp::ThreadFilters& filters) {
  UniqueFd mem(open(opts.mem_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!mem.valid()) return ErrnoError(absl::StrFormat("mem_file_path: %s", opts.mem_path));
  struct stat st {};
  if (fstat(mem.get(), &st) != 0 || !S_ISREG(st.st_mode) ||
      static_cast<uint64_t>(st.st_size) < state.mem_bytes) {
    return UsageError(absl::StrFormat(
        "mem_file_path: %s is %d bytes, but the snapshot's guest has %d bytes of RAM",
        opts.mem_path, static_cast<int64_t>(st.st_size), state.mem_bytes));
  }
  VmConfig cfg = state.config;
  cfg.id = opts.id;
  cfg.serial = opts.serial;
#if defined(__aarch64__)
  cfg.machine.gic = static_cast<int>(state.gic.version);  // the vGIC the guest had
#endif
  VmParts p;
  p.filters = filters;
  p.id = cfg.id;
  p.config = cfg;
  p.reboot_exit_code = cfg.reboot_exit_code;
  p.start_paused = !opts.resume;
  EV_RETURN_IF_ERROR(CreateMachine(cfg, p, mem.get()));
  VirtioPlacement placement(p, nullptr);
  EV_RETURN_IF_ERROR(AddVirtioDevices(cfg, p, placement));
  EV_RETURN_IF_ERROR(RestoreCpusAndIrqchip(state, p));
  EV_RETURN_IF_ERROR(placement.ConnectInterrupts());
  EV_RETURN_IF_ERROR(AddPlatform(cfg, vmm_start, p));
  EV_RETURN_IF_ERROR(Annotate(p.uart->LoadState(state.uart), "snapshot: uart"));
  if (p.i8042) EV_RETURN_IF_ERROR(Annotate(p.i8042->LoadState(state.i8042), "snapshot: i8042"));
  if (p.rtc) EV_RETURN_IF_ERROR(Annotate(p.rtc->LoadState(state.rtc), "snapshot: rtc"));
  for (size_t i = 0; i < p.virtio_devices.size(); ++i) {
    EV_RETURN_IF_ERROR(Annotate(p.virtio_devices[i]->LoadState(state.virtio[i]),
                                absl::StrFormat("snapshot: virtio[%d]", i)));
  }
  spdlog::info("restored VM: {} vCPUs, {} MiB from {}{}", cfg.machine.vcpus, cfg.machine.mem_mib,
               opts.mem_path, opts.resume ? "" : " (paused)");
  return std::make_unique<Vmm>(std::move(p));
}

}  // namespace edgevisor
