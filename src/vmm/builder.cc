#include "src/vmm/builder.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "src/devices/block/virtio_block.h"
#include "src/devices/legacy/acpi_pm.h"
#include "src/devices/legacy/debug_exit.h"
#include "src/devices/legacy/i8042.h"
#include "src/devices/legacy/pl031.h"
#include "src/devices/net/virtio_net.h"
#include "src/vmm/arch/arch.h"
#include "src/vmm/util/errors.h"
#include "src/vmm/util/log.h"
#if defined(__x86_64__)
#include "src/vmm/arch/x86_64/acpi.h"
#include "src/vmm/arch/x86_64/layout.h"
#elif defined(__aarch64__)
#include "src/vmm/arch/aarch64/layout.h"
#endif

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

// Puts a virtio device behind a virtio-mmio transport in the next slot: MMIO window, queue
// ioeventfds, and the kernel command-line entry. Its irqfd comes later (ConnectIrqfds): an
// arm64 vGIC takes irqfds only once it is initialized, after the vCPUs exist.
// The guest learns each window's size from the platform description (ACPI, FDT).
static_assert(virtio::MmioTransport::kSize == arch::kVirtioMmioSize);

absl::Status AttachVirtio(VmParts& p, std::unique_ptr<virtio::VirtioDevice> device,
                          const std::string& name, std::vector<arch::MmioSlot>& slots,
                          std::string* cmdline) {
  EV_ASSIGN_OR_RETURN(std::unique_ptr<virtio::MmioTransport> t,
                      virtio::MmioTransport::Create(std::move(device), p.mem.get()));
  const arch::MmioSlot at = arch::VirtioMmioSlot(slots.size());
  for (size_t q = 0; q < t->notify_fds().size(); ++q) {
    EV_RETURN_IF_ERROR(p.vm.AddIoeventfd(
        t->notify_fds()[q].get(), at.base + virtio::MmioTransport::kQueueNotifyOffset, 4, q));
  }
  std::shared_ptr<virtio::MmioTransport> dev = std::move(t);
  EV_RETURN_IF_ERROR(p.mmio->Insert(dev, at.base, virtio::MmioTransport::kSize, name));
  p.virtio_devices.push_back(std::move(dev));
  slots.push_back(at);
  // Linux's (and QEMU microvm's) virtio_mmio.device=<size>@<base>:<irq> form.
  if (cmdline)
    absl::StrAppend(cmdline, " virtio_mmio.device=4K@0x", absl::Hex(at.base), ":", at.gsi);
  return absl::OkStatus();
}

// Routes each virtio-mmio device's interrupt eventfd to its slot's GSI.
absl::Status ConnectIrqfds(const VmParts& p, absl::Span<const arch::MmioSlot> slots) {
  for (size_t i = 0; i < p.virtio_devices.size(); ++i) {
    EV_RETURN_IF_ERROR(p.vm.AddIrqfd(p.virtio_devices[i]->irq_fd(), slots[i].gsi));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<Vmm>> BuildVm(const VmConfig& cfg, ProcessClock vmm_start) {
  VmParts p;
  p.id = cfg.id;
  p.reboot_exit_code = cfg.reboot_exit_code;
  EV_ASSIGN_OR_RETURN(p.kvm, Kvm::Open());
  if (cfg.machine.vcpus > p.kvm.max_vcpus()) {
    return UsageError(absl::StrFormat("--vcpus: %d is more than KVM's limit of %d",
                                      cfg.machine.vcpus, p.kvm.max_vcpus()));
  }
  EV_ASSIGN_OR_RETURN(p.vm, Vm::Create(p.kvm));
  EV_ASSIGN_OR_RETURN(p.stop, StopController::Create());

  // Guest RAM.
  EV_ASSIGN_OR_RETURN(GuestMemory mem,
                      GuestMemory::Create(arch::RamLayout(cfg.machine.mem_mib << 20)));
  p.mem = std::make_unique<GuestMemory>(std::move(mem));
  uint32_t slot = 0;
  for (const GuestRegion& r : p.mem->regions()) {
    EV_RETURN_IF_ERROR(p.vm.SetUserMemoryRegion(slot++, r.gpa, r.size, r.hva));
  }
  auto arch_vm = arch::SetupVm(p.vm, cfg.machine.vcpus, cfg.machine.gic);
  if (!arch_vm.ok()) {
    const std::string msg(arch_vm.status().message());
    if (msg.rfind("--", 0) == 0) return UsageError(msg);
    return arch_vm.status();
  }
  p.arch = std::move(*arch_vm);

  // virtio devices, before the kernel: their cmdline entries go into the boot information.
  std::string cmdline = cfg.boot.cmdline;
#if defined(__aarch64__)
  // The device tree lists the devices (as Firecracker does on aarch64). Naming them on the
  // command line as well would make a kernel with CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES register
  // each one twice.
  std::string* mmio_cmdline = nullptr;
#else
  std::string* mmio_cmdline = cfg.virtio_mmio_cmdline ? &cmdline : nullptr;
#endif
  std::vector<arch::MmioSlot> slots;
  for (size_t i = 0; i < cfg.drives.size(); ++i) {
    const DriveConfig& d = cfg.drives[i];
    auto blk = block::VirtioBlock::Create(d, absl::StrFormat("blk%d", i));
    if (!blk.ok()) return Annotate(blk.status(), absl::StrFormat("--drive %s", d.id));
    spdlog::debug("drive {}: {} sectors, {} engine, {} queue(s)", d.id, (*blk)->capacity_sectors(),
                  (*blk)->engine_kind() == block::IoEngine::Kind::kUring ? "io_uring" : "sync",
                  d.queues);
    p.blocks.emplace_back(d.id, blk->get());
    p.counted.emplace_back(d.id, blk->get());
    EV_RETURN_IF_ERROR(AttachVirtio(p, std::move(*blk), absl::StrFormat("virtio-blk %s", d.id),
                                    slots, mmio_cmdline));
  }
  for (size_t i = 0; i < cfg.nets.size(); ++i) {
    const NetConfig& n = cfg.nets[i];
    auto net = net::VirtioNet::Create(n, absl::StrFormat("net%d", i));
    if (!net.ok()) return Annotate(net.status(), absl::StrFormat("--net tap=%s", n.tap));
    p.counted.emplace_back(n.id.empty() ? absl::StrFormat("net%d", i) : n.id, net->get());
    EV_RETURN_IF_ERROR(AttachVirtio(p, std::move(*net), absl::StrFormat("virtio-net %s", n.tap),
                                    slots, mmio_cmdline));
  }

  // Kernel.
  {
    auto kernel_or = MappedFile::Open(cfg.boot.kernel_path);
    if (!kernel_or.ok()) return UsageError(absl::StrCat("--kernel ", kernel_or.status().message()));
    MappedFile kernel = std::move(*kernel_or);
    MappedFile initrd;
    if (!cfg.boot.initrd_path.empty()) {
      auto initrd_or = MappedFile::Open(cfg.boot.initrd_path);
      if (!initrd_or.ok()) {
        return UsageError(absl::StrCat("--initrd ", initrd_or.status().message()));
      }
      initrd = std::move(*initrd_or);
      if (initrd.span().empty()) {
        return UsageError(absl::StrFormat("--initrd %s: the file is empty", cfg.boot.initrd_path));
      }
    }
    auto boot = arch::LoadKernel(kernel.span(), cmdline, initrd.span(), *p.mem, cfg.boot.protocol);
    if (!boot.ok()) {
      const std::string msg(boot.status().message());
      // Messages about other inputs (--mem, --initrd, --cmdline) already name them.
      if (msg.rfind("--", 0) == 0) return UsageError(msg);
      return UsageError(absl::StrFormat("--kernel %s: %s", cfg.boot.kernel_path, msg));
    }
    const char* protocol = "PVH";
    if (boot->protocol == arch::BootEntry::Protocol::kLinux64) {
      protocol = "Linux 64-bit boot protocol";
    } else if (boot->protocol == arch::BootEntry::Protocol::kArm64Image) {
      protocol = "arm64 Image";
    }
    spdlog::debug("kernel {}: {} entry at 0x{:x}", cfg.boot.kernel_path, protocol, boot->entry);
    EV_RETURN_IF_ERROR(
        arch::WritePlatformDescription(*p.mem, cfg.machine.vcpus, slots, *boot, p.arch));
    // vCPUs.
    for (int i = 0; i < cfg.machine.vcpus; ++i) {
      EV_ASSIGN_OR_RETURN(std::unique_ptr<Vcpu> vcpu, Vcpu::Create(p.kvm, p.vm, i));
      EV_RETURN_IF_ERROR(arch::SetupVcpu(p.kvm, *vcpu, cfg.machine.vcpus, *boot, *p.mem, p.arch));
      p.vcpus.push_back(std::move(vcpu));
    }
    EV_RETURN_IF_ERROR(arch::FinishVm(p.vm, p.arch));
    EV_RETURN_IF_ERROR(ConnectIrqfds(p, slots));
  }

  // Console.
  int out_fd = -1;
  switch (cfg.serial.mode) {
    case SerialConfig::Mode::kStdio:
      out_fd = STDOUT_FILENO;
      p.serial_input_fd = STDIN_FILENO;
      break;
    case SerialConfig::Mode::kFile:
      p.serial_output_file.Reset(
          open(cfg.serial.path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
      if (!p.serial_output_file.valid()) {
        int err = errno;
        return UsageError(absl::StrFormat("--serial file:%s: %s", cfg.serial.path, strerror(err)));
      }
      out_fd = p.serial_output_file.get();
      break;
    case SerialConfig::Mode::kOff:
      break;
  }

  std::shared_ptr<StopController> stop = p.stop;
  p.boot_timer = std::make_shared<BootTimer>(vmm_start);
  EV_RETURN_IF_ERROR(
      p.mmio->Insert(p.boot_timer, arch::BootTimerAddress(), BootTimer::kSize, "boot-timer"));

  // The 16550A console: COM1 on x86 (port I/O), an ns16550a on MMIO on aarch64 (the FDT names
  // it and its SPI).
#if defined(__x86_64__)
  Bus* uart_bus = p.pio.get();
  const uint64_t uart_base = x86::kCom1Port;
  const uint32_t uart_irq = x86::kCom1Irq;
#elif defined(__aarch64__)
  Bus* uart_bus = p.mmio.get();
  const uint64_t uart_base = aarch64::kUartBase;
  const uint32_t uart_irq = aarch64::kUartSpi;
#endif
  p.uart = std::make_shared<Uart16550>(
      out_fd, [vm_fd = p.vm.fd(), line = arch::IrqLine(uart_irq)](bool level) {
        absl::Status s = Vm::SetIrqLine(vm_fd, line, level);
        if (!s.ok()) spdlog::warn("serial: {}", s.message());
      });
  EV_RETURN_IF_ERROR(uart_bus->Insert(p.uart, uart_base, 8, "uart"));

#if defined(__aarch64__)
  EV_RETURN_IF_ERROR(
      p.mmio->Insert(std::make_shared<Pl031>(
                         [] { return static_cast<uint64_t>(time(nullptr)); },
                         [vm_fd = p.vm.fd(), line = arch::IrqLine(aarch64::kRtcSpi)](bool level) {
                           absl::Status s = Vm::SetIrqLine(vm_fd, line, level);
                           if (!s.ok()) spdlog::warn("pl031: {}", s.message());
                         }),
                     aarch64::kRtcBase, Pl031::kSize, "pl031"));
#endif
#if defined(__x86_64__)
  const int reboot_code = cfg.reboot_exit_code;
  p.i8042 = std::make_shared<I8042>(
      [stop, reboot_code] {
        stop->Request(StopReason::kGuestReset, reboot_code, "guest reset through the i8042");
      },
      [vm_fd = p.vm.fd()] {
        // ISA IRQ 1 is edge-triggered: a pulse delivers one interrupt.
        absl::Status s = Vm::SetIrqLine(vm_fd, x86::kKeyboardIrq, true);
        if (s.ok()) s = Vm::SetIrqLine(vm_fd, x86::kKeyboardIrq, false);
        if (!s.ok()) spdlog::warn("i8042: {}", s.message());
      });
  EV_RETURN_IF_ERROR(p.pio->Insert(p.i8042, I8042::kBase, I8042::kSize, "i8042"));
  EV_RETURN_IF_ERROR(p.pio->Insert(
      std::make_shared<AcpiPm>(
          x86::kAcpiS5SleepType, x86::kAcpiResetValue,
          [stop] {
            stop->Request(StopReason::kGuestPowerOff, kExitOk, "guest powered off (ACPI S5)");
          },
          [stop, reboot_code] {
            stop->Request(StopReason::kGuestReset, reboot_code, "guest reset through ACPI");
          }),
      x86::kAcpiSleepControlPort, AcpiPm::kSize, "acpi-pm"));
#endif
  if (cfg.debug_exit) {
    auto debug_exit = std::make_shared<DebugExit>([stop](int code) {
      stop->Request(StopReason::kDebugExit, code, "guest wrote debug-exit");
    });
#if defined(__x86_64__)
    EV_RETURN_IF_ERROR(p.pio->Insert(debug_exit, DebugExit::kPort, DebugExit::kSize, "debug-exit"));
#else
    EV_RETURN_IF_ERROR(
        p.mmio->Insert(debug_exit, aarch64::kDebugExitBase, DebugExit::kSize, "debug-exit"));
#endif
  }

  spdlog::debug("built VM: {} vCPUs, {} MiB, kernel {}", cfg.machine.vcpus, cfg.machine.mem_mib,
                cfg.boot.kernel_path);
  return std::make_unique<Vmm>(std::move(p));
}

}  // namespace edgevisor
