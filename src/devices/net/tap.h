// A Linux TAP interface opened for a virtio-net backend: IFF_TAP | IFF_NO_PI | IFF_VNET_HDR
// (+ IFF_MULTI_QUEUE with several queues), one non-blocking fd per queue pair, and the 12-byte
// virtio_net_hdr_v1 as the vnet header, so frames pass between guest and TAP unchanged.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "src/base/fd.h"

namespace edgevisor::net {

class Tap {
 public:
  // Attaches to the TAP `name`, creating it if it does not exist (that needs CAP_NET_ADMIN).
  // Errors say what is wrong: no /dev/net/tun, name taken, permission denied.
  static absl::StatusOr<Tap> Open(const std::string& name, int queues);

  int fd(int queue) const { return fds_[static_cast<size_t>(queue)].get(); }
  int queues() const { return static_cast<int>(fds_.size()); }
  const std::string& name() const { return name_; }
  // TUNSETOFFLOAD on every queue: what the guest accepts on receive (TUN_F_* flags).
  absl::Status SetOffload(unsigned flags) const;
  // Whether the kernel's TAP accepts these TUN_F_* flags (probed, then restored to 0).
  bool SupportsOffload(unsigned flags) const;
  int mtu() const { return mtu_; }

 private:
  std::string name_;
  std::vector<UniqueFd> fds_;
  int mtu_ = 1500;
};

}  // namespace edgevisor::net
