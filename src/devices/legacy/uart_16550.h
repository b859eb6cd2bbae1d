// 16550A UART (COM1 on x86: port 0x3f8, IRQ 4). Transmit goes to a host fd; host input is queued
// into the receive FIFO and raises the RX interrupt when the guest enabled it.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>

#include "src/vmm/bus.h"

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
  uint64_t output_errors() const;

 private:
  uint8_t ReadReg(uint64_t reg);  // mu_ held
  void WriteReg(uint64_t reg, uint8_t v);
  void Transmit(uint8_t byte);
  bool IrqLevel() const;
  void UpdateIrq();  // mu_ held

  const int out_fd_;
  const std::function<void(bool)> set_irq_;
  mutable std::mutex mu_;
  std::deque<uint8_t> rx_;
  uint8_t ier_ = 0, lcr_ = 0, mcr_ = 0, scr_ = 0, dll_ = 0x0c, dlm_ = 0;
  bool fifo_enabled_ = false;
  bool thre_pending_ = false;
  bool irq_level_ = false;
  uint64_t output_errors_ = 0;
};

}  // namespace edgevisor
