#include "src/devices/legacy/i8042.h"
#include "absl/synchronization/mutex.h"
#include "src/base/errors.h"
#include "src/base/json_fields.h"

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

nlohmann::json I8042::SaveState() {
  absl::MutexLock lock(&mu_);
  return {{"out", std::vector<uint8_t>(out_.begin(), out_.end())},
          {"ctr", ctr_},
          {"out_port", out_port_},
          {"pending_cmd", pending_cmd_},
          {"last_was_command", last_was_command_}};
}

absl::Status I8042::LoadState(const nlohmann::json& j) {
  using namespace json_fields;  // NOLINT(build/namespaces): the field readers
  EV_RETURN_IF_ERROR(
      CheckObject(j, "", {"out", "ctr", "out_port", "pending_cmd", "last_was_command"}));
  EV_ASSIGN_OR_RETURN(std::vector<uint8_t> out, GetBytes(j, "", "out", kBufferSize));
  EV_ASSIGN_OR_RETURN(uint64_t ctr, GetUint(j, "", "ctr", 0, 0xff));
  EV_ASSIGN_OR_RETURN(uint64_t out_port, GetUint(j, "", "out_port", 0, 0xff));
  EV_ASSIGN_OR_RETURN(uint64_t pending, GetUint(j, "", "pending_cmd", 0, 0xff));
  EV_ASSIGN_OR_RETURN(bool last_cmd, GetBool(j, "", "last_was_command", true, false));
  absl::MutexLock lock(&mu_);
  out_.assign(out.begin(), out.end());
  ctr_ = static_cast<uint8_t>(ctr);
  out_port_ = static_cast<uint8_t>(out_port);
  pending_cmd_ = static_cast<uint8_t>(pending);
  last_was_command_ = last_cmd;
  return absl::OkStatus();
}

}  // namespace edgevisor
