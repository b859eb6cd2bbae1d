#include "src/vmm/metrics.h"

#include <chrono>

#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "src/base/append_file.h"
#include "src/base/errors.h"

namespace edgevisor {

absl::StatusOr<std::unique_ptr<MetricsWriter>> MetricsWriter::Open(const MetricsConfig& cfg,
                                                                   const std::string& vm_id) {
  // A named pipe (Firecracker's metrics_fifo) never blocks the VMM: src/base/append_file.h.
  absl::StatusOr<UniqueFd> fd = OpenForAppend(cfg.metrics_path);
  if (!fd.ok()) {
    return absl::InvalidArgumentError(absl::StrFormat("metrics_path: %s", fd.status().message()));
  }
  return std::unique_ptr<MetricsWriter>(new MetricsWriter(*std::move(fd), cfg, vm_id));
}

Json MetricsWriter::Delta(const Json& totals, const Json& previous) {
  Json out = Json::object();
  for (const auto& [key, value] : totals.items()) {
    const Json* prev = previous.is_object() && previous.contains(key) ? &previous[key] : nullptr;
    if (value.is_object()) {
      out[key] = Delta(value, prev ? *prev : Json::object());
    } else if (value.is_number_unsigned()) {
      const uint64_t now = value.get<uint64_t>();
      const uint64_t before = prev && prev->is_number_unsigned() ? prev->get<uint64_t>() : 0;
      out[key] = now >= before ? now - before : now;  // a device reset restarts its counters
    } else {
      out[key] = value;
    }
  }
  return out;
}

absl::Status MetricsWriter::Flush(const Json& totals) {
  absl::MutexLock lock(&mu_);
  Json line = Delta(totals, previous_);
  previous_ = totals;
  line["utc_timestamp_ms"] =
      static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                std::chrono::system_clock::now().time_since_epoch())
                                .count());
  if (cfg_.emit_id) line["id"] = vm_id_;
  if (!cfg_.properties.empty()) {
    Json p = Json::object();
    for (const auto& [k, v] : cfg_.properties) p[k] = v;
    line["properties"] = p;
  }
  const std::string text = line.dump() + "\n";
  absl::StatusOr<size_t> dropped = AppendOrDrop(fd_.get(), text);
  if (!dropped.ok()) {
    return Annotate(dropped.status(), absl::StrFormat("writing metrics to %s", cfg_.metrics_path));
  }
  if (*dropped != 0) {
    return absl::ResourceExhaustedError(
        absl::StrFormat("metrics: %s is full (nobody reads it?): %d of %d bytes dropped",
                        cfg_.metrics_path, *dropped, text.size()));
  }
  return absl::OkStatus();
}

}  // namespace edgevisor
