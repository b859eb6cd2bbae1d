// QEMU isa-debug-exit semantics: a write of v makes the VMM exit with status (v << 1) | 1.
// Present only with --debug-exit: x86 port 0xf4, aarch64 MMIO 0x09030000; 4 bytes wide.
#pragma once

#include <functional>

#include "src/platform/bus.h"

namespace edgevisor {

class DebugExit : public BusDevice {
 public:
  static constexpr uint64_t kPort = 0xf4;
  static constexpr uint64_t kSize = 4;
  explicit DebugExit(std::function<void(int exit_code)> on_exit) : on_exit_(std::move(on_exit)) {}

  void Read(uint64_t, absl::Span<uint8_t> data) override {
    std::fill(data.begin(), data.end(), 0xff);
  }
  void Write(uint64_t, absl::Span<const uint8_t> data) override {
    uint32_t v = 0;
    for (size_t i = 0; i < data.size() && i < 4; ++i) v |= uint32_t{data[i]} << (8 * i);
    on_exit_(static_cast<int>((v << 1) | 1));
  }

 private:
  std::function<void(int)> on_exit_;
};

}  // namespace edgevisor
