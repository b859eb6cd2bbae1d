#include "src/devices/net/tap.h"

#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "absl/strings/str_format.h"
#include "src/base/errors.h"

namespace edgevisor::net {

absl::StatusOr<Tap> Tap::Open(const std::string& name, int queues) {
  if (name.empty() || name.size() >= IFNAMSIZ) {
    return UsageError(
        absl::StrFormat("tap=%s: interface names are 1 to %d characters", name, IFNAMSIZ - 1));
  }
  Tap tap;
  tap.name_ = name;
  for (int q = 0; q < queues; ++q) {
    UniqueFd fd(open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC));
    if (!fd.valid()) {
      const int err = errno;
      if (err == ENOENT || err == ENODEV) {
        return UsageError("/dev/net/tun is missing: load the tun module (modprobe tun)");
      }
      return UsageError(absl::StrFormat("open /dev/net/tun: %s", strerror(err)));
    }
    ifreq ifr{};
    std::strncpy(ifr.ifr_name, name.c_str(), IFNAMSIZ - 1);
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR | (queues > 1 ? IFF_MULTI_QUEUE : 0);
    if (ioctl(fd.get(), TUNSETIFF, &ifr) < 0) {
      const int err = errno;
      if (err == EPERM || err == EACCES) {
        return UsageError(absl::StrFormat(
            "tap=%s: permission denied (creating a TAP needs CAP_NET_ADMIN; or create it with "
            "`ip tuntap add %s mode tap user $USER`)",
            name, name));
      }
      if (err == EBUSY || err == EINVAL) {
        return UsageError(absl::StrFormat(
            "tap=%s: the name is taken (another device, a TAP in use, or a TAP created %s "
            "multi_queue)",
            name, queues > 1 ? "without" : "with"));
      }
      return UsageError(absl::StrFormat("tap=%s: TUNSETIFF: %s", name, strerror(err)));
    }
    // virtio 1.x always has the 12-byte header (num_buffers included), §5.1.6.
    int hdr = 12;
    if (ioctl(fd.get(), TUNSETVNETHDRSZ, &hdr) < 0) {
      return ErrnoError(absl::StrFormat("tap=%s: TUNSETVNETHDRSZ", name));
    }
    tap.fds_.push_back(std::move(fd));
  }
  UniqueFd sock(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, name.c_str(), IFNAMSIZ - 1);
  if (sock.valid() && ioctl(sock.get(), SIOCGIFMTU, &ifr) == 0) tap.mtu_ = ifr.ifr_mtu;
  return tap;
}

absl::Status Tap::SetOffload(unsigned flags) const {
  for (const UniqueFd& fd : fds_) {
    if (ioctl(fd.get(), TUNSETOFFLOAD, flags) < 0) {
      return ErrnoError(absl::StrFormat("tap=%s: TUNSETOFFLOAD 0x%x", name_, flags));
    }
  }
  return absl::OkStatus();
}

bool Tap::SupportsOffload(unsigned flags) const {
  if (fds_.empty()) return false;
  const bool ok = ioctl(fds_[0].get(), TUNSETOFFLOAD, flags) == 0;
  ioctl(fds_[0].get(), TUNSETOFFLOAD, 0u);
  return ok;
}

}  // namespace edgevisor::net
