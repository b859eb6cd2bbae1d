#include "src/jailer/files.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "src/base/errors.h"
#include "src/base/fd.h"

namespace edgevisor::jailer {

absl::Status WriteString(const std::string& path, absl::string_view data, int flags, mode_t mode) {
  UniqueFd fd(open(path.c_str(), flags, mode));
  if (!fd.valid()) return ErrnoError(absl::StrCat("open ", path));
  const ssize_t n = write(fd.get(), data.data(), data.size());
  if (n < 0) return ErrnoError(absl::StrCat("write ", path));
  if (static_cast<size_t>(n) != data.size()) {
    return absl::DataLossError(absl::StrCat("write ", path, ": short write"));
  }
  return absl::OkStatus();
}

absl::Status MakeDirs(const std::string& path, mode_t mode) {
  for (size_t slash = path.find('/', 1);; slash = path.find('/', slash + 1)) {
    const std::string prefix = path.substr(0, slash);
    if (mkdir(prefix.c_str(), mode) != 0 && errno != EEXIST) {
      return ErrnoError(absl::StrCat("mkdir ", prefix));
    }
    if (slash == std::string::npos) break;
  }
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) return ErrnoError(absl::StrCat("stat ", path));
  if (!S_ISDIR(st.st_mode)) return absl::FailedPreconditionError(path + ": not a directory");
  return absl::OkStatus();
}

}  // namespace edgevisor::jailer
