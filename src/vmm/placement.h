// Device placement: where each device of a VM goes. The builder makes the device models; this
// step gives each one its place in the machine: an MMIO or port range on a bus, an interrupt,
// and the eventfds that connect its queues and interrupt to KVM. The legacy devices'
// places differ by architecture (arch::AddPlatformDevices,
// src/vmm/arch/<arch>/platform_devices.cc); virtio-mmio slots follow arch::VirtioMmioSlot on every
// architecture.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "src/devices/virtio/device.h"
#include "src/vmm/arch/arch.h"
#include "src/vmm/vmm.h"

namespace edgevisor {

// Puts virtio devices behind virtio-mmio transports in consecutive slots.
class VirtioPlacement {
 public:
  // `cmdline`: where to name each slot as virtio_mmio.device=<size>@<base>:<irq>, or null
  // when the platform description (FDT, ACPI) is the only list.
  VirtioPlacement(VmParts& parts, std::string* cmdline) : parts_(parts), cmdline_(cmdline) {}

  // The next slot: the MMIO window on the bus, and one ioeventfd per queue on its notify
  // register. The interrupt comes later (ConnectInterrupts).
  absl::Status Place(std::unique_ptr<virtio::VirtioDevice> device, const std::string& name);

  // Routes each device's interrupt eventfd to its slot's GSI. After arch::FinishVm: an arm64
  // vGIC takes irqfds only once it is initialized, after the vCPUs exist.
  absl::Status ConnectInterrupts() const;

  absl::Span<const arch::MmioSlot> slots() const { return slots_; }

 private:
  VmParts& parts_;
  std::string* cmdline_;
  std::vector<arch::MmioSlot> slots_;
};

// A legacy device's interrupt line: KVM_IRQ_LINE on `vm_fd` at arch::IrqLine(irq). Failures
// are logged under `device`'s name (the device cannot do anything else about them).
std::function<void(bool)> LevelIrq(int vm_fd, uint32_t irq, std::string device);

}  // namespace edgevisor

namespace edgevisor::arch {

// What the per-architecture platform devices need to know.
struct PlatformInputs {
  int console_out_fd = -1;  // the 16550's output; -1: discarded
  bool debug_exit = false;  // add the debug-exit device
  int reboot_exit_code = 0;
  std::shared_ptr<const ThreadFilter> rtc_filter;  // the PL031 alarm thread's (aarch64)
};

// Adds this architecture's platform devices to `parts`: the 16550 console (COM1 on x86_64, an
// ns16550a on MMIO on aarch64), x86_64's i8042 and ACPI PM block, aarch64's PL031 RTC, and the
// debug-exit device when asked. Their addresses and interrupts are the ones
// WritePlatformDescription describes.
absl::Status AddPlatformDevices(const PlatformInputs& in, VmParts& parts);

}  // namespace edgevisor::arch
