#include "src/vmm/placement.h"

#include "absl/strings/str_cat.h"
#include "src/base/errors.h"
#include "src/base/log.h"
#include "src/devices/virtio/mmio_transport.h"

namespace edgevisor {

// The guest learns each window's size from the platform description (ACPI, FDT).
static_assert(virtio::MmioTransport::kSize == arch::kVirtioMmioSize);

absl::Status VirtioPlacement::Place(std::unique_ptr<virtio::VirtioDevice> device,
                                    const std::string& name) {
  EV_ASSIGN_OR_RETURN(std::unique_ptr<virtio::MmioTransport> t,
                      virtio::MmioTransport::Create(std::move(device), parts_.mem.get()));
  const arch::MmioSlot at = arch::VirtioMmioSlot(slots_.size());
  for (size_t q = 0; q < t->notify_fds().size(); ++q) {
    EV_RETURN_IF_ERROR(parts_.vm.AddIoeventfd(
        t->notify_fds()[q].get(), at.base + virtio::MmioTransport::kQueueNotifyOffset, 4, q));
  }
  std::shared_ptr<virtio::MmioTransport> dev = std::move(t);
  EV_RETURN_IF_ERROR(parts_.mmio->Insert(dev, at.base, virtio::MmioTransport::kSize, name));
  parts_.virtio_devices.push_back(std::move(dev));
  slots_.push_back(at);
  // Linux's (and QEMU microvm's) virtio_mmio.device=<size>@<base>:<irq> form.
  if (cmdline_) {
    absl::StrAppend(cmdline_, " virtio_mmio.device=4K@0x", absl::Hex(at.base), ":", at.gsi);
  }
  return absl::OkStatus();
}

absl::Status VirtioPlacement::ConnectInterrupts() const {
  for (size_t i = 0; i < parts_.virtio_devices.size(); ++i) {
    EV_RETURN_IF_ERROR(parts_.vm.AddIrqfd(parts_.virtio_devices[i]->irq_fd(), slots_[i].gsi));
  }
  return absl::OkStatus();
}

std::function<void(bool)> LevelIrq(int vm_fd, uint32_t irq, std::string device) {
  return [vm_fd, line = arch::IrqLine(irq), device = std::move(device)](bool level) {
    absl::Status s = Vm::SetIrqLine(vm_fd, line, level);
    if (!s.ok()) spdlog::warn("{}: {}", device, s.message());
  };
}

}  // namespace edgevisor
