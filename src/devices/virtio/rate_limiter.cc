#include "src/devices/virtio/rate_limiter.h"

#include <sys/timerfd.h>
#include <time.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "src/base/errors.h"
#include "src/base/event_fd.h"
#include "src/base/log.h"

namespace edgevisor::virtio {
namespace {

constexpr int64_t kNsPerMs = 1'000'000;

int64_t MonotonicNs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

}  // namespace

TokenBucket::TokenBucket(const BucketConfig& cfg, int64_t now_ns)
    : cfg_(cfg),
      budget_(static_cast<int64_t>(cfg.size)),
      burst_(cfg.one_time_burst),
      last_ns_(now_ns) {}

// Adds the tokens earned since last_ns_: SIZE per refill time, never above SIZE. The time of a
// fraction of a token is kept (last_ns_ moves by the time of the whole tokens only), so slow
// rates are not rounded down to nothing by frequent calls.
void TokenBucket::Refill(int64_t now_ns) {
  const int64_t size = static_cast<int64_t>(cfg_.size);
  if (now_ns <= last_ns_) return;
  if (budget_ >= size) {
    last_ns_ = now_ns;
    return;
  }
  const __int128 period = static_cast<__int128>(cfg_.refill_time_ms) * kNsPerMs;
  const __int128 earned = static_cast<__int128>(now_ns - last_ns_) * size / period;
  if (earned == 0) return;
  if (budget_ + earned >= size) {
    budget_ = size;
    last_ns_ = now_ns;
    return;
  }
  budget_ += static_cast<int64_t>(earned);
  last_ns_ += static_cast<int64_t>(earned * period / size);
}

bool TokenBucket::TryTake(uint64_t n, int64_t now_ns) {
  Refill(now_ns);
  const uint64_t from_burst = std::min(burst_, n);
  const uint64_t rest = n - from_burst;
  if (rest > 0 && budget_ < static_cast<int64_t>(Needed(rest))) return false;
  burst_ -= from_burst;
  budget_ -= static_cast<int64_t>(rest);
  return true;
}

int64_t TokenBucket::WaitNs(uint64_t n, int64_t now_ns) {
  Refill(now_ns);
  const uint64_t rest = n - std::min(burst_, n);
  const __int128 deficit = static_cast<__int128>(Needed(rest)) - budget_;
  if (rest == 0 || deficit <= 0) return 0;
  const __int128 period = static_cast<__int128>(cfg_.refill_time_ms) * kNsPerMs;
  // The time for DEFICIT tokens, rounded up, less what has accrued toward the next one.
  const __int128 wait = (deficit * period + cfg_.size - 1) / cfg_.size - (now_ns - last_ns_);
  return static_cast<int64_t>(std::max<__int128>(wait, 1));
}

absl::StatusOr<std::unique_ptr<RateLimiter>> RateLimiter::Create(const RateLimiterConfig& cfg,
                                                                 Clock clock) {
  UniqueFd timer(timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
  if (!timer.valid()) return ErrnoError("rate limiter: timerfd_create");
  std::unique_ptr<RateLimiter> r(
      new RateLimiter(std::move(timer), clock ? std::move(clock) : Clock(MonotonicNs)));
  absl::MutexLock lock(&r->mu_);
  r->Configure(cfg);
  return r;
}

void RateLimiter::Configure(const RateLimiterConfig& cfg) {
  const int64_t now = clock_();
  cfg_ = cfg;
  bandwidth_.reset();
  ops_.reset();
  if (cfg.bandwidth.limits()) bandwidth_.emplace(cfg.bandwidth, now);
  if (cfg.ops.limits()) ops_.emplace(cfg.ops, now);
}

bool RateLimiter::Consume(uint64_t ops, uint64_t bytes) {
  absl::MutexLock lock(&mu_);
  if (blocked_) return false;
  if (!bandwidth_ && !ops_) return true;
  const int64_t now = clock_();
  // Both or neither: look at both before taking from either.
  const int64_t wait =
      std::max(ops_ ? ops_->WaitNs(ops, now) : 0, bandwidth_ ? bandwidth_->WaitNs(bytes, now) : 0);
  if (wait == 0) {
    if (ops_) ops_->TryTake(ops, now);
    if (bandwidth_) bandwidth_->TryTake(bytes, now);
    return true;
  }
  // Without the timer the queue would wait forever: the request goes through instead (the
  // rate is then not held, which the log says).
  if (!Arm(wait)) return true;
  blocked_ = true;
  throttled_++;
  return false;
}

bool RateLimiter::Arm(int64_t ns) {
  itimerspec t{};
  t.it_value.tv_sec = ns / 1'000'000'000;
  t.it_value.tv_nsec = ns % 1'000'000'000;
  if (timerfd_settime(timer_.get(), 0, &t, nullptr) == 0) return true;
  spdlog::error("rate limiter: timerfd_settime: {}; not limiting", strerror(errno));
  return false;
}

bool RateLimiter::blocked() const {
  absl::MutexLock lock(&mu_);
  return blocked_;
}

void RateLimiter::OnTimer() {
  DrainEventFd(timer_.get());
  absl::MutexLock lock(&mu_);
  blocked_ = false;
}

void RateLimiter::Update(const RateLimiterConfig& cfg) {
  absl::MutexLock lock(&mu_);
  Configure(cfg);
  // The waiting request tries again now, under the new limits.
  if (blocked_ && !Arm(1)) blocked_ = false;
}

RateLimiterConfig RateLimiter::config() const {
  absl::MutexLock lock(&mu_);
  return cfg_;
}

uint64_t RateLimiter::throttled() const {
  absl::MutexLock lock(&mu_);
  return throttled_;
}

}  // namespace edgevisor::virtio
