// Builds descriptor tables and rings in a small guest memory for virtio unit tests.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <functional>
#include <mutex>

#include "src/devices/virtio/device.h"
#include "src/devices/virtio/virtio_spec.h"
#include "src/platform/guest_memory.h"

namespace edgevisor::virtio::testing {

inline constexpr uint64_t kRamSize = 1 << 20;
inline constexpr uint64_t kDescTable = 0x1000;
inline constexpr uint64_t kAvail = 0x3000;
inline constexpr uint64_t kUsed = 0x4000;
inline constexpr uint64_t kIndirect = 0x6000;
inline constexpr uint64_t kData = 0x10000;

inline GuestMemory TestMemory() {
  auto m = GuestMemory::Create({{0, kRamSize}});
  EXPECT_TRUE(m.ok());
  return std::move(*m);
}

inline void PutDesc(const GuestMemory& mem, uint64_t table, uint16_t i, uint64_t addr, uint32_t len,
                    uint16_t flags, uint16_t next) {
  ASSERT_TRUE(mem.WriteObj(table + i * sizeof(Desc), Desc{addr, len, flags, next}).ok());
}

// The transport's side of a device under test: records interrupts and reset requests, and lets
// the test wait for the device thread.
class FakeInterrupts : public InterruptSink {
 public:
  void Signal(uint32_t bits) override {
    std::lock_guard lock(mu_);
    bits_ |= bits;
    ++signals_;
    cv_.notify_all();
  }
  void NeedsReset() override {
    std::lock_guard lock(mu_);
    needs_reset_ = true;
    cv_.notify_all();
  }
  // Waits up to 5 s for PRED, looking again after each interrupt or reset request and every
  // millisecond (PRED may read guest memory, which the device writes before it signals).
  bool WaitFor(const std::function<bool()>& pred) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (!pred()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, std::chrono::milliseconds(1));
    }
    return true;
  }
  uint32_t bits() {
    std::lock_guard lock(mu_);
    return bits_;
  }
  bool needs_reset() {
    std::lock_guard lock(mu_);
    return needs_reset_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  uint32_t bits_ = 0;
  int signals_ = 0;
  bool needs_reset_ = false;
};

// Device threads hang under qemu-user (the aarch64 cross build's unit tests); natively, and so
// in every x86 build and on arm64 hardware, they run.
inline bool UnderQemuUser() { return std::getenv("EDGEVISOR_QEMU_USER") != nullptr; }

}  // namespace edgevisor::virtio::testing
