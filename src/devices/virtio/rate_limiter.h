// Token-bucket rate limiting for a device's queue (compare Firecracker's rate_limiter crate): a
// request takes one op token and its size in bandwidth tokens before the device serves it. When
// a bucket is short, the device leaves the request in the ring and stops taking requests from
// that queue; a timerfd, armed for the moment the tokens will be there, wakes its worker. So a
// limited guest waits (no busy loop, no dropped or reordered requests).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "src/base/fd.h"
#include "src/devices/virtio/rate_limiter_config.h"

namespace edgevisor::virtio {

// One bucket. Times are nanoseconds of a monotonic clock. A request larger than the bucket is
// let through once the bucket is full, and the budget goes below zero: the next request waits
// until the debt is paid back, so the long-run rate holds for any request size.
class TokenBucket {
 public:
  TokenBucket(const BucketConfig& cfg, int64_t now_ns);  // cfg.limits(); starts full

  // Takes N tokens (the one-time burst first), or none and returns false.
  bool TryTake(uint64_t n, int64_t now_ns);
  // Gives back N tokens that TryTake took (the other bucket said no).
  void Refund(uint64_t n);
  // Nanoseconds from NOW until TryTake(N) can succeed (0: now).
  int64_t WaitNs(uint64_t n, int64_t now_ns);

  const BucketConfig& config() const { return cfg_; }
  int64_t budget() const { return budget_; }
  uint64_t burst_left() const { return burst_; }

 private:
  void Refill(int64_t now_ns);
  uint64_t Needed(uint64_t n) const { return n < cfg_.size ? n : cfg_.size; }

  BucketConfig cfg_;
  int64_t budget_;  // may be negative after a request larger than the bucket
  uint64_t burst_;
  int64_t last_ns_;  // the time up to which refills are counted
};

class RateLimiter {
 public:
  using Clock = std::function<int64_t()>;  // monotonic nanoseconds
  // A limiter with its timerfd (non-blocking, close-on-exec). CLOCK: CLOCK_MONOTONIC by default.
  static absl::StatusOr<std::unique_ptr<RateLimiter>> Create(const RateLimiterConfig& cfg,
                                                             Clock clock = nullptr);

  // Takes OPS op tokens and BYTES bandwidth tokens, all or nothing. On false the limiter is
  // blocked and its timer armed: the caller leaves the request for later and stops taking more
  // until OnTimer. Counts the refusals (throttled()).
  bool Consume(uint64_t ops, uint64_t bytes) ABSL_LOCKS_EXCLUDED(mu_);
  // Whether a refused request is still waiting for the timer.
  bool blocked() const ABSL_LOCKS_EXCLUDED(mu_);
  // The timerfd to watch (readable when the tokens a refused request needs are there).
  int timer_fd() const { return timer_.get(); }
  // The timer fired (or was spurious): drains it and unblocks. The caller retries its request.
  void OnTimer() ABSL_LOCKS_EXCLUDED(mu_);
  // A new configuration (PATCH while running): buckets start full, and a blocked queue is woken
  // at once to try again under the new limits. Thread-safe.
  void Update(const RateLimiterConfig& cfg) ABSL_LOCKS_EXCLUDED(mu_);
  RateLimiterConfig config() const ABSL_LOCKS_EXCLUDED(mu_);
  uint64_t throttled() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  RateLimiter(UniqueFd timer, Clock clock) : timer_(std::move(timer)), clock_(std::move(clock)) {}
  void Configure(const RateLimiterConfig& cfg) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool Arm(int64_t ns) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);  // false: could not (logged)

  UniqueFd timer_;
  Clock clock_;
  mutable absl::Mutex mu_;
  RateLimiterConfig cfg_ ABSL_GUARDED_BY(mu_);
  std::optional<TokenBucket> bandwidth_ ABSL_GUARDED_BY(mu_);
  std::optional<TokenBucket> ops_ ABSL_GUARDED_BY(mu_);
  bool blocked_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t throttled_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace edgevisor::virtio
