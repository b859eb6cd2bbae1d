#include "src/base/service_notify.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "src/base/errors.h"
#include "src/base/log.h"

namespace edgevisor {

absl::StatusOr<UniqueFd> ServiceNotifier::Connect(std::string_view path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const bool abstract = !path.empty() && path[0] == '@';
  if (path.empty() || (path[0] != '/' && !abstract) || path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s=%s: not an absolute socket path or an @abstract name shorter than %d bytes",
        kNotifySocketEnv, path, sizeof(addr.sun_path)));
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  if (abstract) addr.sun_path[0] = '\0';
  const socklen_t len =
      static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + (abstract ? 0 : 1));
  UniqueFd fd(socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return ErrnoError(absl::StrFormat("%s: socket", kNotifySocketEnv));
  if (connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), len) != 0) {
    return ErrnoError(absl::StrFormat("%s=%s: connect", kNotifySocketEnv, path));
  }
  return fd;
}

absl::StatusOr<ServiceNotifier> ServiceNotifier::FromEnvironment() {
  const char* fd_text = getenv(kNotifyFdEnv);
  const char* socket_path = getenv(kNotifySocketEnv);
  const std::string fd_value = fd_text ? fd_text : "";
  const std::string path = socket_path ? socket_path : "";
  unsetenv(kNotifyFdEnv);
  unsetenv(kNotifySocketEnv);
  if (fd_text != nullptr) {
    int fd = -1;
    struct stat st {};
    if (!absl::SimpleAtoi(fd_value, &fd) || fd < 3 || fstat(fd, &st) != 0 ||
        !S_ISSOCK(st.st_mode)) {
      return absl::InvalidArgumentError(
          absl::StrFormat("%s=%s: not an open socket descriptor", kNotifyFdEnv, fd_value));
    }
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    return ServiceNotifier(UniqueFd(fd));
  }
  if (socket_path == nullptr) return ServiceNotifier();
  EV_ASSIGN_OR_RETURN(UniqueFd fd, Connect(path));
  return ServiceNotifier(std::move(fd));
}

void ServiceNotifier::Notify(std::string_view state) const {
  if (!active()) return;
  if (write(fd_.get(), state.data(), state.size()) != static_cast<ssize_t>(state.size())) {
    spdlog::warn("service manager notification ({}) not sent: {}",
                 std::string(state.substr(0, state.find('\n'))), strerror(errno));
  }
}

}  // namespace edgevisor
