// A RunningVm that records what the API asked of it: for ApiController's unit tests and fuzzer.
#pragma once

#include <string>

#include "nlohmann/json.hpp"
#include "src/vmm/api/api.h"

namespace edgevisor::api::testing {

class FakeVm : public RunningVm {
 public:
  absl::Status Pause() override {
    ++pauses;
    paused_ = true;
    return absl::OkStatus();
  }
  absl::Status Resume() override {
    paused_ = false;
    return absl::OkStatus();
  }
  bool paused() const override { return paused_; }
  absl::Status SendCtrlAltDel() override {
    ++ctrl_alt_dels;
    return absl::OkStatus();
  }
  absl::Status ReplaceDriveBacking(const std::string&, const std::string& path) override {
    last_backing = path;
    return absl::OkStatus();
  }
  absl::Status UpdateDriveRateLimiter(const std::string& id,
                                      const RateLimiterConfig& cfg) override {
    last_limiter =
        id + ":" + std::to_string(cfg.ops.size) + "/" + std::to_string(cfg.bandwidth.size);
    return absl::OkStatus();
  }
  absl::Status UpdateNetRateLimiters(const std::string& id, const RateLimiterConfig* rx,
                                     const RateLimiterConfig* tx) override {
    last_limiter = id + ":rx " + (rx ? std::to_string(rx->ops.size) : "-") + " tx " +
                   (tx ? std::to_string(tx->ops.size) : "-");
    return absl::OkStatus();
  }
  absl::Status CreateSnapshot(const std::string& state, const std::string& mem,
                              bool diff) override {
    last_snapshot = state + "|" + mem + (diff ? "|diff" : "|full");
    return absl::OkStatus();
  }
  bool tracking_dirty_pages() const override { return tracking; }
  absl::Status UpdateBalloon(uint32_t amount_mib) override {
    if (amount_mib > 128) return absl::InvalidArgumentError("amount_mib: too big");
    balloon_mib = amount_mib;
    return absl::OkStatus();
  }
  absl::Status UpdateBalloonStatsInterval(uint32_t seconds) override {
    balloon_interval = seconds;
    return absl::OkStatus();
  }
  absl::StatusOr<balloon::BalloonStats> BalloonStatistics() const override {
    balloon::BalloonStats s;
    s.target_pages = balloon_mib * 256;
    s.actual_pages = 512;
    s.values[4] = 12345;  // free_memory
    return s;
  }
  Json Counters() const override { return Json{{"vcpu", {{"exit_io_out", exits}}}}; }

  int pauses = 0, ctrl_alt_dels = 0;
  uint64_t exits = 0;
  std::string last_backing, last_limiter;
  std::string last_snapshot;  // "STATE|MEM|full" or "STATE|MEM|diff" of the last CreateSnapshot
  bool tracking = false;
  uint32_t balloon_mib = 0, balloon_interval = 0;

 private:
  bool paused_ = false;
};

}  // namespace edgevisor::api::testing
