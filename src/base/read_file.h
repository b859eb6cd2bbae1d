// Reading a whole small file (a config file, a key): one place for the size limit and errors.
#pragma once

#include <cstddef>
#include <string>

#include "absl/status/statusor.h"

namespace edgevisor {

// The file's bytes. NotFound/PermissionDenied/... from errno, prefixed with the path; a file
// larger than `max_bytes` is FailedPrecondition ("PATH: larger than N bytes").
absl::StatusOr<std::string> ReadSmallFile(const std::string& path, size_t max_bytes = 1 << 20);

}  // namespace edgevisor
