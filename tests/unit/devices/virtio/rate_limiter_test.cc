// The token buckets and the rate limiter on a fake clock: refill arithmetic, the one-time burst,
// requests larger than the bucket, both buckets at once, a 0 bucket as no limit, the timer, and
// a new configuration while a request waits.
#include "src/devices/virtio/rate_limiter.h"

#include <gtest/gtest.h>
#include <poll.h>

#include <cstdint>

namespace edgevisor::virtio {
namespace {

constexpr int64_t kMs = 1'000'000;

TEST(TokenBucketTest, RefillsAtSizePerRefillTime) {
  TokenBucket b({.size = 1000, .one_time_burst = 0, .refill_time_ms = 100}, 0);
  EXPECT_TRUE(b.TryTake(1000, 0));
  EXPECT_FALSE(b.TryTake(1, 0));
  EXPECT_EQ(b.WaitNs(100, 0), 10 * kMs);  // 100 of 1000 tokens: a tenth of 100 ms
  EXPECT_FALSE(b.TryTake(100, 9 * kMs));
  EXPECT_TRUE(b.TryTake(100, 10 * kMs));
  EXPECT_EQ(b.budget(), 0);
  // Never above the size, however long it waits.
  EXPECT_TRUE(b.TryTake(0, 10'000 * kMs));
  EXPECT_EQ(b.budget(), 1000);
}

TEST(TokenBucketTest, FrequentSmallRefillsAddUpToTheRate) {
  // 3 tokens per 1000 ms: a refill every millisecond earns nothing alone; the fractions add up.
  TokenBucket b({.size = 3, .one_time_burst = 0, .refill_time_ms = 1000}, 0);
  ASSERT_TRUE(b.TryTake(3, 0));
  int taken = 0;
  for (int64_t t = 1; t <= 3000; ++t) {
    if (b.TryTake(1, t * kMs)) ++taken;
  }
  EXPECT_EQ(taken, 9);
}

TEST(TokenBucketTest, TheOneTimeBurstComesFirstAndNeverRefills) {
  TokenBucket b({.size = 100, .one_time_burst = 500, .refill_time_ms = 1000}, 0);
  EXPECT_TRUE(b.TryTake(500, 0));
  EXPECT_EQ(b.burst_left(), 0u);
  EXPECT_EQ(b.budget(), 100);
  EXPECT_TRUE(b.TryTake(100, 0));
  EXPECT_FALSE(b.TryTake(1, 0));
  EXPECT_TRUE(b.TryTake(100, 10'000 * kMs));
  EXPECT_EQ(b.burst_left(), 0u);
}

TEST(TokenBucketTest, ARequestLargerThanTheBucketPassesWhenFullAndLeavesADebt) {
  TokenBucket b({.size = 100, .one_time_burst = 0, .refill_time_ms = 100}, 0);
  EXPECT_TRUE(b.TryTake(50, 0));
  EXPECT_FALSE(b.TryTake(250, 0)) << "waits for a full bucket";
  EXPECT_EQ(b.WaitNs(250, 0), 50 * kMs);
  EXPECT_TRUE(b.TryTake(250, 50 * kMs));
  EXPECT_EQ(b.budget(), -150);
  // The debt is paid back at the rate: 150 ms, and then 1 token more takes 1 ms.
  EXPECT_EQ(b.WaitNs(1, 50 * kMs), 151 * kMs);
  EXPECT_FALSE(b.TryTake(1, 200 * kMs));
  EXPECT_TRUE(b.TryTake(1, 201 * kMs));
}

// A clock the test moves by hand.
struct FakeClock {
  int64_t now = 0;
  RateLimiter::Clock fn() {
    return [this] { return now; };
  }
};

bool TimerFired(const RateLimiter& r, int timeout_ms) {
  pollfd p{r.timer_fd(), POLLIN, 0};
  return poll(&p, 1, timeout_ms) == 1;
}

TEST(RateLimiterTest, ZeroBucketsMeanNoLimit) {
  FakeClock clock;
  for (const BucketConfig& b : {BucketConfig{0, 0, 100}, BucketConfig{100, 0, 0}}) {
    auto r = RateLimiter::Create({.bandwidth = b, .ops = b}, clock.fn());
    ASSERT_TRUE(r.ok()) << r.status();
    for (int i = 0; i < 1000; ++i) ASSERT_TRUE((*r)->Consume(1, 1 << 20));
    EXPECT_EQ((*r)->throttled(), 0u);
  }
}

TEST(RateLimiterTest, BothBucketsOrNeither) {
  FakeClock clock;
  auto r =
      RateLimiter::Create({.bandwidth = {.size = 1000, .one_time_burst = 0, .refill_time_ms = 1000},
                           .ops = {.size = 10, .one_time_burst = 0, .refill_time_ms = 1000}},
                          clock.fn());
  ASSERT_TRUE(r.ok());
  RateLimiter& rl = **r;
  ASSERT_TRUE(rl.Consume(1, 900));
  // 1 op is there, 900 bytes are not: nothing is taken, and the limiter blocks.
  EXPECT_FALSE(rl.Consume(1, 900));
  EXPECT_TRUE(rl.blocked());
  EXPECT_EQ(rl.throttled(), 1u);
  EXPECT_FALSE(rl.Consume(1, 1)) << "blocked until the timer";
  EXPECT_EQ(rl.throttled(), 1u) << "a refusal while blocked is not counted again";
  clock.now = 800 * kMs;  // 100 + 800 bytes
  rl.OnTimer();
  EXPECT_FALSE(rl.blocked());
  EXPECT_TRUE(rl.Consume(1, 900));
  // 8 ops are left: the 9th waits although bytes would be there.
  clock.now = 10'000 * kMs;
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(rl.Consume(1, 0)) << i;
  EXPECT_FALSE(rl.Consume(1, 0));
}

TEST(RateLimiterTest, TheTimerFiresWhenTheTokensAreThere) {
  // The real clock: 1000 bytes per 50 ms.
  auto r = RateLimiter::Create(
      {.bandwidth = {.size = 1000, .one_time_burst = 0, .refill_time_ms = 50}, .ops = {}});
  ASSERT_TRUE(r.ok());
  RateLimiter& rl = **r;
  ASSERT_TRUE(rl.Consume(1, 1000));
  ASSERT_FALSE(rl.Consume(1, 1000));
  EXPECT_FALSE(TimerFired(rl, 20)) << "not before about 50 ms";
  EXPECT_TRUE(TimerFired(rl, 1000));
  rl.OnTimer();
  EXPECT_TRUE(rl.Consume(1, 1000));
}

TEST(RateLimiterTest, ANewConfigurationWakesAWaitingQueue) {
  FakeClock clock;
  auto r = RateLimiter::Create(
      {.bandwidth = {}, .ops = {.size = 1, .one_time_burst = 0, .refill_time_ms = 3'600'000}},
      clock.fn());
  ASSERT_TRUE(r.ok());
  RateLimiter& rl = **r;
  ASSERT_TRUE(rl.Consume(1, 0));
  ASSERT_FALSE(rl.Consume(1, 0));  // an hour's wait
  rl.Update({});                   // PATCH to no limit
  EXPECT_TRUE(TimerFired(rl, 1000)) << "the waiting queue tries again at once";
  rl.OnTimer();
  EXPECT_TRUE(rl.Consume(1, 0));
  EXPECT_FALSE(rl.config().limits());
}

}  // namespace
}  // namespace edgevisor::virtio
