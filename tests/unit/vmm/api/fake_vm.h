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
  Json Counters() const override { return Json{{"vcpu", {{"exit_io_out", exits}}}}; }

  int pauses = 0, ctrl_alt_dels = 0;
  uint64_t exits = 0;
  std::string last_backing, last_limiter;
  std::string last_snapshot;  // "STATE|MEM|full" or "STATE|MEM|diff" of the last CreateSnapshot
  bool tracking = false;

 private:
  bool paused_ = false;
};

}  // namespace edgevisor::api::testing
