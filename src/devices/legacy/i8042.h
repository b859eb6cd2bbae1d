// The part of the i8042 keyboard controller a guest uses to reset the machine: command 0xfe
// ("pulse reset line") on port 0x64. Linux's reboot=k takes this path. Status reads report an
// empty controller so that guests never wait on it.
#pragma once

#include <functional>

#include "src/vmm/bus.h"

namespace edgevisor {

class I8042 : public BusDevice {
 public:
  static constexpr uint64_t kBase = 0x60;  // data 0x60, command/status 0x64
  static constexpr uint64_t kSize = 5;
  static constexpr uint8_t kCmdReset = 0xfe;
  explicit I8042(std::function<void()> on_reset) : on_reset_(std::move(on_reset)) {}

  void Read(uint64_t, absl::Span<uint8_t> data) override { std::fill(data.begin(), data.end(), 0); }
  void Write(uint64_t offset, absl::Span<const uint8_t> data) override {
    if (offset == 4 && !data.empty() && data[0] == kCmdReset) on_reset_();
  }

 private:
  std::function<void()> on_reset_;
};

}  // namespace edgevisor
