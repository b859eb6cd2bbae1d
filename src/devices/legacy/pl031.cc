#include "src/devices/legacy/pl031.h"

#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>

#include "absl/synchronization/mutex.h"
#include "src/base/errors.h"
#include "src/base/event_fd.h"
#include "src/base/json_fields.h"
#include "src/base/log.h"

namespace edgevisor {
namespace {

// PeriphID0-3 then PCellID0-3, one byte in each 32-bit register from 0xfe0.
constexpr uint8_t kIds[8] = {0x31, 0x10, 0x14, 0x00, 0x0d, 0xf0, 0x05, 0xb1};

}  // namespace

Pl031::Pl031(std::function<uint64_t()> now, std::function<void(bool)> set_irq, bool timer,
             std::shared_ptr<const ThreadFilter> filter)
    : now_(std::move(now)), set_irq_(std::move(set_irq)) {
  if (!timer) return;
  timer_fd_.Reset(timerfd_create(CLOCK_REALTIME, TFD_CLOEXEC | TFD_NONBLOCK));
  wake_fd_.Reset(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!timer_fd_.valid() || !wake_fd_.valid()) return;
  timer_ = std::thread([this, filter = std::move(filter)] {
    pthread_setname_np(pthread_self(), "rtc");
    if (absl::Status s = InstallThreadFilter(filter.get()); !s.ok()) {
      spdlog::error("pl031: {}; the RTC alarm is off", s.message());
      return;
    }
    TimerLoop();
  });
}

Pl031::~Pl031() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  Wake();
  if (timer_.joinable()) timer_.join();
}

void Pl031::Wake() {
  if (!wake_fd_.valid()) return;
  SignalEventFd(wake_fd_.get());
}

uint32_t Pl031::Count() const {
  return static_cast<uint32_t>(static_cast<int64_t>(now_()) + offset_);
}

void Pl031::CheckMatchLocked() {
  // The counter wraps at 2^32: "reached" is a non-negative signed distance.
  if (armed_ && static_cast<int32_t>(Count() - match_) >= 0) {
    armed_ = false;
    ris_ = true;
  }
  UpdateLineLocked();
}

void Pl031::UpdateLineLocked() {
  const bool level = ris_ && imsc_ != 0;
  if (level == line_) return;
  line_ = level;
  if (set_irq_) set_irq_(level);
}

void Pl031::Poll() {
  absl::MutexLock lock(&mu_);
  CheckMatchLocked();
}

void Pl031::TimerLoop() {
  for (;;) {
    {
      absl::MutexLock lock(&mu_);
      if (stop_) return;
      CheckMatchLocked();
      // Armed: wake at the host second when the count reaches the match (now, if it already
      // has); not armed: no timer, only a register write or the destructor wakes us.
      itimerspec when{};
      if (armed_) {
        const int64_t left = static_cast<int32_t>(match_ - Count());
        when.it_value.tv_sec =
            static_cast<time_t>(static_cast<int64_t>(now_()) + std::max<int64_t>(left, 0));
        if (when.it_value.tv_sec == 0) when.it_value.tv_nsec = 1;  // zero would disarm
      }
      timerfd_settime(timer_fd_.get(), TFD_TIMER_ABSTIME, &when, nullptr);
    }
    pollfd fds[2] = {{timer_fd_.get(), POLLIN, 0}, {wake_fd_.get(), POLLIN, 0}};
    poll(fds, 2, -1);
    DrainEventFd(timer_fd_.get());  // a timerfd reads like an eventfd: a counter, 0 if none
    DrainEventFd(wake_fd_.get());
  }
}

void Pl031::Read(uint64_t offset, absl::Span<uint8_t> data) {
  uint32_t v = 0;
  {
    absl::MutexLock lock(&mu_);
    CheckMatchLocked();
    switch (offset & ~uint64_t{3}) {
      case kDr:
        v = Count();
        break;
      case kMr:
        v = match_;
        break;
      case kLr:
        v = Count();
        break;
      case kCr:
        v = 1;
        break;
      case kImsc:
        v = imsc_;
        break;
      case kRis:
        v = ris_ ? 1 : 0;
        break;
      case kMis:
        v = (ris_ && imsc_) ? 1 : 0;
        break;
      default:
        if (offset >= kPeriphId0 && offset < kPeriphId0 + 32) v = kIds[(offset - kPeriphId0) / 4];
        break;
    }
  }
  const uint64_t shift = 8 * (offset & 3);
  for (size_t i = 0; i < data.size(); ++i) {
    data[i] = i + (offset & 3) < 4 ? static_cast<uint8_t>(v >> (shift + 8 * i)) : 0;
  }
}

void Pl031::Write(uint64_t offset, absl::Span<const uint8_t> data) {
  if (data.size() != 4 || (offset & 3) != 0) return;  // 32-bit registers only
  const uint32_t v = uint32_t{data[0]} | uint32_t{data[1]} << 8 | uint32_t{data[2]} << 16 |
                     uint32_t{data[3]} << 24;
  {
    absl::MutexLock lock(&mu_);
    switch (offset) {
      case kMr:
        match_ = v;
        armed_ = true;
        ris_ = false;
        break;
      case kLr:
        offset_ = static_cast<int64_t>(v) - static_cast<int64_t>(now_());
        break;
      case kImsc:
        imsc_ = v & 1;
        break;
      case kIcr:
        if (v & 1) ris_ = false;
        break;
      default:
        break;  // CR: always started; the rest are read-only
    }
    CheckMatchLocked();
  }
  Wake();
}

nlohmann::json Pl031::SaveState() const {
  absl::MutexLock lock(&mu_);
  return {
      {"offset", offset_}, {"match", match_}, {"armed", armed_}, {"imsc", imsc_}, {"ris", ris_}};
}

absl::Status Pl031::LoadState(const nlohmann::json& j) {
  using namespace json_fields;  // NOLINT(build/namespaces): the field readers
  EV_RETURN_IF_ERROR(CheckObject(j, "", {"offset", "match", "armed", "imsc", "ris"}));
  if (!j.contains("offset") || !j["offset"].is_number_integer()) {
    return Bad("offset", "must be an integer");
  }
  const int64_t offset = j["offset"].get<int64_t>();
  EV_ASSIGN_OR_RETURN(uint64_t match, GetUint(j, "", "match", 0, 0xffffffffu));
  EV_ASSIGN_OR_RETURN(bool armed, GetBool(j, "", "armed", true, false));
  EV_ASSIGN_OR_RETURN(uint64_t imsc, GetUint(j, "", "imsc", 0, 1));
  EV_ASSIGN_OR_RETURN(bool ris, GetBool(j, "", "ris", true, false));
  {
    absl::MutexLock lock(&mu_);
    offset_ = offset;
    match_ = static_cast<uint32_t>(match);
    armed_ = armed;
    imsc_ = static_cast<uint32_t>(imsc);
    ris_ = ris;
    line_ = false;
    CheckMatchLocked();  // a match reached while the VM was away fires now
  }
  Wake();  // the alarm thread re-arms its timer for the loaded match
  return absl::OkStatus();
}

}  // namespace edgevisor
