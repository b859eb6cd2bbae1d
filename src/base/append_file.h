// Files the VMM appends lines to, the log and the metrics, which a fleet manager may have made
// named pipes that it reads (Firecracker's log_fifo and metrics_fifo). A pipe is opened
// read-write and non-blocking, as Firecracker does: the open never waits for a reader, a write
// never blocks the VMM, and a reader that goes away raises no SIGPIPE (the VMM holds a read end
// itself). What a full pipe cannot take is dropped, never waited for. A regular file is opened
// for appending, created if missing.
#pragma once

#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "spdlog/sinks/base_sink.h"
#include "src/base/fd.h"

namespace edgevisor {

absl::StatusOr<UniqueFd> OpenForAppend(const std::string& path);

// Writes all of `data`, or as much as a full pipe takes; returns how many bytes were dropped.
// Writes of at most PIPE_BUF bytes (4096 on Linux) go into a pipe whole or not at all, so lines
// shorter than that are never cut.
absl::StatusOr<size_t> AppendOrDrop(int fd, std::string_view data);

// An spdlog sink on OpenForAppend's descriptor.
class AppendFileSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  explicit AppendFileSink(UniqueFd fd) : fd_(std::move(fd)) {}
  size_t dropped_bytes() const { return dropped_; }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override;
  void flush_() override {}

 private:
  UniqueFd fd_;
  size_t dropped_ = 0;
};

}  // namespace edgevisor
