#include "src/vmm/metrics.h"

#include <fcntl.h>
#include <unistd.h>

#include <chrono>

#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "src/base/errors.h"

namespace edgevisor {

absl::StatusOr<std::unique_ptr<MetricsWriter>> MetricsWriter::Open(const MetricsConfig& cfg,
                                                                   const std::string& vm_id) {
  UniqueFd fd(
      open(cfg.metrics_path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_NONBLOCK | O_CLOEXEC, 0644));
  if (!fd.valid()) {
    const int err = errno;
    return absl::InvalidArgumentError(
        absl::StrFormat("metrics_path: cannot open %s: %s", cfg.metrics_path, strerror(err)));
  }
  return std::unique_ptr<MetricsWriter>(new MetricsWriter(std::move(fd), cfg, vm_id));
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
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = write(fd_.get(), text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoError(absl::StrFormat("writing metrics to %s", cfg_.metrics_path));
    done += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

}  // namespace edgevisor
