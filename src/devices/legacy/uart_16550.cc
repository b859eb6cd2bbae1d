#include "src/devices/legacy/uart_16550.h"

#include <unistd.h>

#include "absl/synchronization/mutex.h"
#include "src/base/errors.h"
#include "src/base/json_fields.h"
#include "src/base/log.h"

namespace edgevisor {
namespace {
// Register offsets and bits, per the PC16550D data sheet.
constexpr uint64_t kRbrThr = 0, kIer = 1, kIirFcr = 2, kLcr = 3, kMcr = 4, kLsr = 5, kMsr = 6,
                   kScr = 7;
constexpr uint8_t kIerRxAvail = 0x01, kIerThre = 0x02;
constexpr uint8_t kIirNone = 0x01, kIirThre = 0x02, kIirRx = 0x04, kIirFifo = 0xc0;
constexpr uint8_t kLcrDlab = 0x80;
constexpr uint8_t kMcrLoop = 0x10;
constexpr uint8_t kLsrDataReady = 0x01, kLsrThre = 0x20, kLsrTemt = 0x40;
constexpr uint8_t kMsrCts = 0x10, kMsrDsr = 0x20, kMsrRi = 0x40, kMsrDcd = 0x80;
}  // namespace

Uart16550::Uart16550(int out_fd, std::function<void(bool)> set_irq)
    : out_fd_(out_fd), set_irq_(std::move(set_irq)) {}

void Uart16550::Read(uint64_t offset, absl::Span<uint8_t> data) {
  absl::MutexLock lock(&mu_);
  for (size_t i = 0; i < data.size(); ++i) data[i] = ReadReg(offset + i);
  UpdateIrq();
}

void Uart16550::Write(uint64_t offset, absl::Span<const uint8_t> data) {
  absl::MutexLock lock(&mu_);
  for (size_t i = 0; i < data.size(); ++i) WriteReg(offset + i, data[i]);
  UpdateIrq();
}

uint8_t Uart16550::ReadReg(uint64_t reg) {
  const bool dlab = lcr_ & kLcrDlab;
  switch (reg) {
    case kRbrThr: {
      if (dlab) return dll_;
      if (rx_.empty()) return 0;
      uint8_t b = rx_.front();
      if (rx_.size() == kRxFifoSize && on_room_) on_room_();
      rx_.pop_front();
      return b;
    }
    case kIer:
      return dlab ? dlm_ : ier_;
    case kIirFcr: {
      uint8_t iir = kIirNone;
      if ((ier_ & kIerRxAvail) && !rx_.empty()) {
        iir = kIirRx;
      } else if ((ier_ & kIerThre) && thre_pending_) {
        iir = kIirThre;
        thre_pending_ = false;  // reading IIR with THRE as the source clears it
      }
      return iir | (fifo_enabled_ ? kIirFifo : 0);
    }
    case kLcr:
      return lcr_;
    case kMcr:
      return mcr_;
    case kLsr:
      // Transmission is immediate, so the holding register and shifter are always empty.
      return (rx_.empty() ? 0 : kLsrDataReady) | kLsrThre | kLsrTemt;
    case kMsr:
      if (mcr_ & kMcrLoop) {
        return ((mcr_ & 0x01) ? kMsrDsr : 0) | ((mcr_ & 0x02) ? kMsrCts : 0) |
               ((mcr_ & 0x04) ? kMsrRi : 0) | ((mcr_ & 0x08) ? kMsrDcd : 0);
      }
      return kMsrDcd | kMsrDsr | kMsrCts;
    case kScr:
      return scr_;
    default:
      return 0xff;
  }
}

void Uart16550::WriteReg(uint64_t reg, uint8_t v) {
  const bool dlab = lcr_ & kLcrDlab;
  switch (reg) {
    case kRbrThr:
      if (dlab) {
        dll_ = v;
      } else if (mcr_ & kMcrLoop) {
        if (rx_.size() < kRxFifoSize) rx_.push_back(v);
        thre_pending_ = true;
      } else {
        Transmit(v);
        thre_pending_ = true;
      }
      break;
    case kIer:
      if (dlab) {
        dlm_ = v;
      } else {
        // Enabling the THRE interrupt while the holding register is empty raises it at once.
        if (!(ier_ & kIerThre) && (v & kIerThre)) thre_pending_ = true;
        ier_ = v & 0x0f;
      }
      break;
    case kIirFcr:
      fifo_enabled_ = v & 0x01;
      if ((v & 0x02) && !rx_.empty()) {
        if (rx_.size() == kRxFifoSize && on_room_) on_room_();
        rx_.clear();
      }
      break;
    case kLcr:
      lcr_ = v;
      break;
    case kMcr:
      mcr_ = v & 0x1f;
      break;
    case kScr:
      scr_ = v;
      break;
    default:  // LSR and MSR are read-only
      break;
  }
}

void Uart16550::Transmit(uint8_t byte) {
  if (out_fd_ < 0) return;
  ssize_t n;
  do {
    n = ::write(out_fd_, &byte, 1);
  } while (n < 0 && errno == EINTR);
  if (n != 1 && output_errors_++ == 0) {
    spdlog::warn("serial: write to console failed ({}); further errors are counted only",
                 n < 0 ? strerror(errno) : "short write");
  }
}

bool Uart16550::IrqLevel() const {
  return ((ier_ & kIerRxAvail) && !rx_.empty()) || ((ier_ & kIerThre) && thre_pending_);
}

void Uart16550::UpdateIrq() {
  const bool level = IrqLevel();
  if (level != irq_level_) {
    irq_level_ = level;
    if (set_irq_) set_irq_(level);
  }
}

size_t Uart16550::EnqueueInput(absl::Span<const uint8_t> bytes) {
  absl::MutexLock lock(&mu_);
  size_t n = 0;
  while (n < bytes.size() && rx_.size() < kRxFifoSize) rx_.push_back(bytes[n++]);
  UpdateIrq();
  return n;
}

size_t Uart16550::InputSpace() const {
  absl::MutexLock lock(&mu_);
  return kRxFifoSize - rx_.size();
}

void Uart16550::SetOnRoom(std::function<void()> on_room) {
  absl::MutexLock lock(&mu_);
  on_room_ = std::move(on_room);
}

uint64_t Uart16550::output_errors() const {
  absl::MutexLock lock(&mu_);
  return output_errors_;
}

nlohmann::json Uart16550::SaveState() const {
  absl::MutexLock lock(&mu_);
  return {{"rx", std::vector<uint8_t>(rx_.begin(), rx_.end())},
          {"ier", ier_},
          {"lcr", lcr_},
          {"mcr", mcr_},
          {"scr", scr_},
          {"dll", dll_},
          {"dlm", dlm_},
          {"fifo_enabled", fifo_enabled_},
          {"thre_pending", thre_pending_}};
}

absl::Status Uart16550::LoadState(const nlohmann::json& j) {
  using namespace json_fields;  // NOLINT(build/namespaces): the field readers
  EV_RETURN_IF_ERROR(CheckObject(
      j, "", {"rx", "ier", "lcr", "mcr", "scr", "dll", "dlm", "fifo_enabled", "thre_pending"}));
  EV_ASSIGN_OR_RETURN(std::vector<uint8_t> rx, GetBytes(j, "", "rx", kRxFifoSize));
  uint8_t regs[6];
  const char* names[6] = {"ier", "lcr", "mcr", "scr", "dll", "dlm"};
  for (int i = 0; i < 6; ++i) {
    EV_ASSIGN_OR_RETURN(uint64_t v, GetUint(j, "", names[i], 0, 0xff));
    regs[i] = static_cast<uint8_t>(v);
  }
  EV_ASSIGN_OR_RETURN(bool fifo, GetBool(j, "", "fifo_enabled", true, false));
  EV_ASSIGN_OR_RETURN(bool thre, GetBool(j, "", "thre_pending", true, false));
  absl::MutexLock lock(&mu_);
  rx_.assign(rx.begin(), rx.end());
  ier_ = regs[0];
  lcr_ = regs[1];
  mcr_ = regs[2];
  scr_ = regs[3];
  dll_ = regs[4];
  dlm_ = regs[5];
  fifo_enabled_ = fifo;
  thre_pending_ = thre;
  irq_level_ = IrqLevel();
  if (set_irq_) set_irq_(irq_level_);
  return absl::OkStatus();
}

}  // namespace edgevisor
