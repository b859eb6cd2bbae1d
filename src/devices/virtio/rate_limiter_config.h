// What a rate limiter is asked to be (Firecracker's RateLimiter object: two token buckets). The
// devices own this type; the VMM's config layer (config file, API) fills it in.
#pragma once

#include <cstdint>

namespace edgevisor {

// A token bucket: SIZE tokens, refilled from empty to full in REFILL_TIME_MS, plus a
// ONE_TIME_BURST spent first and never refilled. A size or refill time of 0 means no limit.
struct BucketConfig {
  uint64_t size = 0;
  uint64_t one_time_burst = 0;
  uint64_t refill_time_ms = 0;
  bool limits() const { return size != 0 && refill_time_ms != 0; }
  bool operator==(const BucketConfig&) const = default;
};

// Bytes (bandwidth) and requests (ops); either or both may be unlimited.
struct RateLimiterConfig {
  BucketConfig bandwidth;
  BucketConfig ops;
  bool limits() const { return bandwidth.limits() || ops.limits(); }
  bool operator==(const RateLimiterConfig&) const = default;
};

}  // namespace edgevisor
