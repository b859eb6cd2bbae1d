// aarch64's platform devices, all on MMIO where the device tree (fdt.cc) says: an ns16550a
// console, the PL031 RTC, and the debug-exit device.
#include <ctime>

#include "src/base/errors.h"
#include "src/devices/legacy/debug_exit.h"
#include "src/devices/legacy/pl031.h"
#include "src/devices/legacy/uart_16550.h"
#include "src/vmm/arch/aarch64/layout.h"
#include "src/vmm/placement.h"

namespace edgevisor::arch {

absl::Status AddPlatformDevices(const PlatformInputs& in, VmParts& p) {
  p.uart = std::make_shared<Uart16550>(in.console_out_fd,
                                       LevelIrq(p.vm.fd(), aarch64::kUartSpi, "serial"));
  EV_RETURN_IF_ERROR(p.mmio->Insert(p.uart, aarch64::kUartBase, 8, "uart"));

  p.rtc = std::make_shared<Pl031>([] { return static_cast<uint64_t>(time(nullptr)); },
                                  LevelIrq(p.vm.fd(), aarch64::kRtcSpi, "pl031"),
                                  /*timer=*/true, in.rtc_filter);
  EV_RETURN_IF_ERROR(p.mmio->Insert(p.rtc, aarch64::kRtcBase, Pl031::kSize, "pl031"));

  if (in.debug_exit) {
    std::shared_ptr<StopController> stop = p.stop;
    auto debug_exit = std::make_shared<DebugExit>([stop](int code) {
      stop->Request(StopReason::kDebugExit, code, "guest wrote debug-exit");
    });
    EV_RETURN_IF_ERROR(
        p.mmio->Insert(debug_exit, aarch64::kDebugExitBase, DebugExit::kSize, "debug-exit"));
  }
  return absl::OkStatus();
}

}  // namespace edgevisor::arch
