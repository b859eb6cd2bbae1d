// Small file-system steps the jailer repeats: writing a short string into a file (cgroup knobs,
// the pid file) and `mkdir -p`.
#pragma once

#include <fcntl.h>
#include <sys/types.h>

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace edgevisor::jailer {

// One write(2) of `data` (cgroup files take a value per write). Errors name the path.
absl::Status WriteString(const std::string& path, absl::string_view data,
                         int flags = O_WRONLY | O_CLOEXEC, mode_t mode = 0);

// Creates `path` and any missing parent with `mode`; an existing directory is fine.
absl::Status MakeDirs(const std::string& path, mode_t mode);

}  // namespace edgevisor::jailer
