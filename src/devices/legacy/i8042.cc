#include "src/devices/legacy/i8042.h"
#include "absl/synchronization/mutex.h"

namespace edgevisor {

void I8042::Read(uint64_t offset, absl::Span<uint8_t> data) {
  if (data.empty()) return;
  std::fill(data.begin(), data.end(), 0);
  bool more = false;
  {
    absl::MutexLock lock(&mu_);
    if (offset == kCommandOffset) {
      data[0] = kStatusKbdUnlocked | (ctr_ & kCtrSystemFlag ? kStatusSystemFlag : 0) |
                (last_was_command_ ? kStatusLastWasCommand : 0) |
                (out_.empty() ? 0 : kStatusOutputFull);
      return;
    }
    if (offset != kDataOffset || out_.empty()) return;
    data[0] = out_.front();
    out_.pop_front();
    more = !out_.empty();
  }
  if (more) PulseIfEnabled();  // one interrupt per byte, as the real controller does
}

void I8042::Write(uint64_t offset, absl::Span<const uint8_t> data) {
  if (data.empty()) return;
  const uint8_t v = data[0];
  bool reset = false, irq = false;
  {
    absl::MutexLock lock(&mu_);
    if (offset == kCommandOffset) {
      last_was_command_ = true;
      pending_cmd_ = 0;
      switch (v) {
        case kCmdReadCtr:
          irq = PushLocked({ctr_});
          break;
        case kCmdReadOutPort:
          irq = PushLocked({out_port_});
          break;
        case kCmdWriteCtr:
        case kCmdWriteOutPort:
          pending_cmd_ = v;
          break;
        case kCmdReset:
          reset = true;
          break;
        default:
          break;  // self-tests, port enables and the rest: accepted and ignored
      }
    } else if (offset == kDataOffset) {
      last_was_command_ = false;
      if (pending_cmd_ == kCmdWriteCtr) {
        ctr_ = v;
      } else if (pending_cmd_ == kCmdWriteOutPort) {
        out_port_ = v;
      } else {
        irq = PushLocked({kKbdAck});  // a keyboard command: acknowledge it
      }
      pending_cmd_ = 0;
    }
  }
  if (reset) on_reset_();
  if (irq) PulseIfEnabled();
}

bool I8042::SendCtrlAltDel() {
  {
    absl::MutexLock lock(&mu_);
    // Ctrl (0x14), Alt (0x11), Del (0xe0 0x71): make codes, scan code set 2.
    if (!PushLocked({0x14, 0x11, 0xe0, 0x71})) return false;
  }
  PulseIfEnabled();
  return true;
}

bool I8042::PushLocked(std::initializer_list<uint8_t> bytes) {
  if (out_.size() + bytes.size() > kBufferSize) return false;
  out_.insert(out_.end(), bytes.begin(), bytes.end());
  return true;
}

void I8042::PulseIfEnabled() {
  bool enabled;
  {
    absl::MutexLock lock(&mu_);
    enabled = (ctr_ & kCtrKbdInterrupt) != 0;
  }
  if (enabled && pulse_irq1_) pulse_irq1_();
}

}  // namespace edgevisor
