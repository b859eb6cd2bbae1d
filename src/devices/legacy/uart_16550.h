// 16550A UART (COM1 on x86: port 0x3f8, IRQ 4). Transmit goes to a host fd; host input is queued
// into the receive FIFO and raises the RX interrupt when the guest enabled it.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "nlohmann/json.hpp"

#include "src/platform/bus.h"

namespace edgevisor {

class Uart16550 : public BusDevice {
 public:
  static constexpr size_t kRxFifoSize = 64;
  // out_fd < 0 discards output. set_irq drives the interrupt line (level).
  Uart16550(int out_fd, std::function<void(bool)> set_irq);

  void Read(uint64_t offset, absl::Span<uint8_t> data) override;
  void Write(uint64_t offset, absl::Span<const uint8_t> data) override;

  // Queues host input for the guest. Returns how many bytes fit in the receive FIFO.
  size_t EnqueueInput(absl::Span<const uint8_t> bytes);
  size_t InputSpace() const;
  // Called (on the thread of the guest's access, under the UART's lock: keep it to a wake-up)
  // when the guest makes room in a receive FIFO that was full, so that a caller who stopped
  // reading host input at a full FIFO knows when to go on without polling.
  void SetOnRoom(std::function<void()> on_room);
  uint64_t output_errors() const;

  // Snapshots: the registers and the receive FIFO. LoadState checks every field (errors name
  // it) and drives the interrupt line to the loaded level.
  nlohmann::json SaveState() const;
  absl::Status LoadState(const nlohmann::json& j);

 private:
  uint8_t ReadReg(uint64_t reg) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void WriteReg(uint64_t reg, uint8_t v) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Transmit(uint8_t byte) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool IrqLevel() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void UpdateIrq() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const int out_fd_;
  const std::function<void(bool)> set_irq_;
  mutable absl::Mutex mu_;
  std::deque<uint8_t> rx_ ABSL_GUARDED_BY(mu_);
  std::function<void()> on_room_ ABSL_GUARDED_BY(mu_);
  uint8_t ier_ ABSL_GUARDED_BY(mu_) = 0;
  uint8_t lcr_ ABSL_GUARDED_BY(mu_) = 0;
  uint8_t mcr_ ABSL_GUARDED_BY(mu_) = 0;
  uint8_t scr_ ABSL_GUARDED_BY(mu_) = 0;
  uint8_t dll_ ABSL_GUARDED_BY(mu_) = 0x0c;
  uint8_t dlm_ ABSL_GUARDED_BY(mu_) = 0;
  bool fifo_enabled_ ABSL_GUARDED_BY(mu_) = false;
  bool thre_pending_ ABSL_GUARDED_BY(mu_) = false;
  bool irq_level_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t output_errors_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace edgevisor
