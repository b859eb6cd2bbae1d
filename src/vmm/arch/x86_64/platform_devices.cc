// x86_64's platform devices: COM1, the i8042 (reset and Ctrl+Alt+Del), the ACPI PM block
// (S5 power-off and the reset register), and the debug-exit port.
#include "src/base/errors.h"
#include "src/base/log.h"
#include "src/devices/legacy/acpi_pm.h"
#include "src/devices/legacy/debug_exit.h"
#include "src/devices/legacy/i8042.h"
#include "src/devices/legacy/uart_16550.h"
#include "src/vmm/arch/x86_64/acpi.h"
#include "src/vmm/arch/x86_64/layout.h"
#include "src/vmm/placement.h"

namespace edgevisor::arch {

absl::Status AddPlatformDevices(const PlatformInputs& in, VmParts& p) {
  std::shared_ptr<StopController> stop = p.stop;
  const int reboot_code = in.reboot_exit_code;
  p.uart =
      std::make_shared<Uart16550>(in.console_out_fd, LevelIrq(p.vm.fd(), x86::kCom1Irq, "serial"));
  EV_RETURN_IF_ERROR(p.pio->Insert(p.uart, x86::kCom1Port, 8, "uart"));

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

  auto pm = std::make_shared<AcpiPm>(
      x86::kAcpiS5SleepType, x86::kAcpiResetValue,
      [stop] { stop->Request(StopReason::kGuestPowerOff, kExitOk, "guest powered off (ACPI S5)"); },
      [stop, reboot_code] {
        stop->Request(StopReason::kGuestReset, reboot_code, "guest reset through ACPI");
      });
  EV_RETURN_IF_ERROR(p.pio->Insert(pm, x86::kAcpiSleepControlPort, AcpiPm::kSize, "acpi-pm"));

  if (in.debug_exit) {
    auto debug_exit = std::make_shared<DebugExit>([stop](int code) {
      stop->Request(StopReason::kDebugExit, code, "guest wrote debug-exit");
    });
    EV_RETURN_IF_ERROR(p.pio->Insert(debug_exit, DebugExit::kPort, DebugExit::kSize, "debug-exit"));
  }
  return absl::OkStatus();
}

}  // namespace edgevisor::arch
