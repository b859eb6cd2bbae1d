#include "src/base/append_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/str_format.h"
#include "src/base/errors.h"

namespace edgevisor {

absl::StatusOr<UniqueFd> OpenForAppend(const std::string& path) {
  struct stat st {};
  const bool fifo = stat(path.c_str(), &st) == 0 && S_ISFIFO(st.st_mode);
  UniqueFd fd(
      fifo ? open(path.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC)
           : open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_NONBLOCK | O_CLOEXEC, 0644));
  if (!fd.valid()) return ErrnoError(absl::StrFormat("cannot open %s", path));
  return fd;
}

absl::StatusOr<size_t> AppendOrDrop(int fd, std::string_view data) {
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return data.size() - done;  // a full pipe
    if (n < 0) return ErrnoError("write");
    done += static_cast<size_t>(n);
  }
  return size_t{0};
}

void AppendFileSink::sink_it_(const spdlog::details::log_msg& msg) {
  spdlog::memory_buf_t line;
  formatter_->format(msg, line);
  // A log line that cannot be written has nowhere to be reported: it is counted as dropped.
  absl::StatusOr<size_t> dropped =
      AppendOrDrop(fd_.get(), std::string_view(line.data(), line.size()));
  dropped_ += dropped.ok() ? *dropped : line.size();
}

}  // namespace edgevisor
