// The i8042 PS/2 controller, as much of it as a microVM needs (the same subset Firecracker
// emulates): the status register, the controller command byte, the output port, a keyboard
// output buffer with IRQ 1, and command 0xfe ("pulse reset line"), which Linux's reboot=k uses.
// SendCtrlAltDel() queues the Ctrl+Alt+Del key presses (scan code set 2) for the guest, which is
// how Firecracker's SendCtrlAltDel action asks a guest to reboot.
//
// The guest controls every value written here; unknown commands are ignored and reads of an
// empty buffer return 0.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "nlohmann/json.hpp"

#include "src/platform/bus.h"

namespace edgevisor {

class I8042 : public BusDevice {
 public:
  static constexpr uint64_t kBase = 0x60;  // data 0x60, command/status 0x64
  static constexpr uint64_t kSize = 5;
  static constexpr uint64_t kDataOffset = 0;
  static constexpr uint64_t kCommandOffset = 4;

  // Controller commands (port 0x64).
  static constexpr uint8_t kCmdReadCtr = 0x20;
  static constexpr uint8_t kCmdWriteCtr = 0x60;
  static constexpr uint8_t kCmdReadOutPort = 0xd0;
  static constexpr uint8_t kCmdWriteOutPort = 0xd1;
  static constexpr uint8_t kCmdReset = 0xfe;

  // Status register bits.
  static constexpr uint8_t kStatusOutputFull = 0x01;
  static constexpr uint8_t kStatusSystemFlag = 0x04;
  static constexpr uint8_t kStatusLastWasCommand = 0x08;
  static constexpr uint8_t kStatusKbdUnlocked = 0x10;

  // Command byte bits.
  static constexpr uint8_t kCtrKbdInterrupt = 0x01;
  static constexpr uint8_t kCtrSystemFlag = 0x04;

  // Keyboard reply to any byte written to it.
  static constexpr uint8_t kKbdAck = 0xfa;
  static constexpr size_t kBufferSize = 16;

  // `on_reset`: command 0xfe. `pulse_irq1`: raise and lower the keyboard interrupt line.
  I8042(std::function<void()> on_reset, std::function<void()> pulse_irq1 = nullptr)
      : on_reset_(std::move(on_reset)), pulse_irq1_(std::move(pulse_irq1)) {}

  void Read(uint64_t offset, absl::Span<uint8_t> data) override;
  void Write(uint64_t offset, absl::Span<const uint8_t> data) override;

  // Queues Ctrl, Alt, Del (make codes, set 2) and interrupts the guest. False when the buffer
  // has no room (the guest is not reading its keyboard).
  bool SendCtrlAltDel();

  // Snapshots: the controller's registers and its output buffer. Errors name the field.
  nlohmann::json SaveState();
  absl::Status LoadState(const nlohmann::json& j);

 private:
  bool PushLocked(std::initializer_list<uint8_t> bytes) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void PulseIfEnabled();

  std::function<void()> on_reset_;
  std::function<void()> pulse_irq1_;
  absl::Mutex mu_;
  std::deque<uint8_t> out_ ABSL_GUARDED_BY(mu_);  // bytes for the guest to read from port 0x60
  uint8_t ctr_ ABSL_GUARDED_BY(mu_) = kCtrKbdInterrupt | kCtrSystemFlag;
  uint8_t out_port_ ABSL_GUARDED_BY(mu_) = 0x01;  // bit 0: the CPU is not held in reset
  // A command that takes a data byte (0x60, 0xd1).
  uint8_t pending_cmd_ ABSL_GUARDED_BY(mu_) = 0;
  bool last_was_command_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace edgevisor
