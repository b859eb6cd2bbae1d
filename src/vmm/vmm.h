// A built VM and its run loop: one thread per vCPU, and the main thread for signals, console
// input and teardown.
#pragma once

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "src/devices/legacy/boot_timer.h"
#include "src/devices/legacy/uart_16550.h"
#include "src/devices/virtio/mmio_transport.h"
#include "src/vmm/bus.h"
#include "src/vmm/guest_memory.h"
#include "src/vmm/kvm.h"
#include "src/vmm/stop_controller.h"
#include "src/vmm/vcpu.h"

namespace edgevisor {

// Everything the builder assembles. Members are destroyed in reverse order: vCPUs before memory.
struct VmParts {
  std::string id;
  Kvm kvm;
  Vm vm;
  std::unique_ptr<GuestMemory> mem;  // stable address: devices hold pointers to it
  std::unique_ptr<Bus> pio = std::make_unique<Bus>("pio");
  std::unique_ptr<Bus> mmio = std::make_unique<Bus>("mmio");
  std::shared_ptr<StopController> stop;
  std::shared_ptr<Uart16550> uart;
  int serial_input_fd = -1;  // stdin when the console is stdio
  UniqueFd serial_output_file;
  std::shared_ptr<BootTimer> boot_timer;
  std::vector<std::shared_ptr<virtio::MmioTransport>> virtio_devices;
  std::vector<std::unique_ptr<Vcpu>> vcpus;
};

class Vmm {
 public:
  explicit Vmm(VmParts parts);
  ~Vmm();

  // Runs the VM until it stops; returns the process exit code. Call from the thread that
  // blocked SIGINT/SIGTERM (see BlockProcessSignals).
  int Run();

  const VmParts& parts() const { return p_; }

  // Blocks SIGINT, SIGTERM and the vCPU kick signal in the calling thread (and the threads it
  // starts later). Call first thing in main().
  static void BlockProcessSignals();

 private:
  void VcpuThread(size_t index);
  // Handles one exit; false when the vCPU loop should end.
  bool HandleExit(Vcpu& vcpu);
  void CheckParked(Vcpu& vcpu);
  void KickAll();
  // Stops the VM as crashed, naming the vCPU and RIP. `emulator_limit` adds the hint about
  // software-virtualized hosts, for the exits that such hosts cause.
  void Crash(Vcpu& vcpu, const std::string& what, bool emulator_limit = false);

  VmParts p_;
  std::vector<std::thread> threads_;
  // One flag per vCPU: halted with interrupts off, or never started (APs before SIPI).
  std::unique_ptr<std::atomic<bool>[]> parked_;
};

}  // namespace edgevisor
