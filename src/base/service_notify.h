// Readiness for a service manager: systemd's notification protocol (sd_notify(3)), one
// datagram of NAME=VALUE lines on the Unix socket the manager names in NOTIFY_SOCKET.
//
// A jailed VMM cannot reach that socket (the jail hides its path) and gets no environment, so
// the jailer connects it before entering the jail and hands the VMM the descriptor, named by
// the one variable it passes, EDGEVISOR_NOTIFY_FD. The VMM then writes its states on that
// descriptor: a write on a connected socket, which every thread's seccomp filter allows.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "src/base/fd.h"

namespace edgevisor {

inline constexpr char kNotifyFdEnv[] = "EDGEVISOR_NOTIFY_FD";
inline constexpr char kNotifySocketEnv[] = "NOTIFY_SOCKET";

class ServiceNotifier {
 public:
  ServiceNotifier() = default;  // notifies no one
  explicit ServiceNotifier(UniqueFd fd) : fd_(std::move(fd)) {}

  // EDGEVISOR_NOTIFY_FD (a connected socket the jailer passed), else NOTIFY_SOCKET; neither is
  // left in the environment, so nothing this process starts inherits them. No manager: an
  // inactive notifier. Errors name the variable.
  static absl::StatusOr<ServiceNotifier> FromEnvironment();

  // A close-on-exec datagram socket connected to PATH, as NOTIFY_SOCKET gives it: a file
  // system path, or an abstract name after '@'.
  static absl::StatusOr<UniqueFd> Connect(std::string_view path);

  bool active() const { return fd_.valid(); }
  int fd() const { return fd_.get(); }

  // Sends STATE ("READY=1\nSTATUS=..."); a manager that went away is logged, never fatal.
  void Notify(std::string_view state) const;

 private:
  UniqueFd fd_;
};

}  // namespace edgevisor
