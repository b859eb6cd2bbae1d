// Firecracker-style metrics: one JSON object per line, appended to the metrics path
// (`PUT /metrics`, the config file's "metrics", or --metrics-path), every 60 s while the VM runs
// and on the FlushMetrics action. Like Firecracker's counters, every number on a line is the
// increase since the previous line; "utc_timestamp_ms" says when the line was written.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "nlohmann/json.hpp"
#include "src/base/fd.h"
#include "src/vmm/config/fc_config.h"

namespace edgevisor {

class MetricsWriter {
 public:
  static constexpr int kPeriodSeconds = 60;

  // Opens (creating if needed) the file or named pipe for appending, non-blocking.
  static absl::StatusOr<std::unique_ptr<MetricsWriter>> Open(const MetricsConfig& cfg,
                                                             const std::string& vm_id);

  // `totals` holds cumulative counters (nested objects of unsigned integers). Writes one line
  // with the deltas since the previous call. Thread-safe.
  absl::Status Flush(const Json& totals);

  // The line Flush would write, without writing it or moving the baseline (tests).
  static Json Delta(const Json& totals, const Json& previous);

 private:
  MetricsWriter(UniqueFd fd, MetricsConfig cfg, std::string vm_id)
      : fd_(std::move(fd)), cfg_(std::move(cfg)), vm_id_(std::move(vm_id)) {}
  absl::Mutex mu_;
  UniqueFd fd_;
  MetricsConfig cfg_;
  std::string vm_id_;
  Json previous_ ABSL_GUARDED_BY(mu_) = Json::object();
};

}  // namespace edgevisor
