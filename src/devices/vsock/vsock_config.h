// What the vsock device is asked to be (Firecracker's PUT /vsock). The device owns this type;
// the VMM's config layer (config file, API) fills it in.
#pragma once

#include <cstdint>
#include <string>

namespace edgevisor {

namespace vsock {
// The lowest CID a guest may have: 0 and 1 are reserved, 2 is the host (virtio 1.2 §5.10.4).
inline constexpr uint64_t kMinGuestCid = 3;
// CIDs are 64 bits in the header but 32 in the socket API; 0xffffffff is VMADDR_CID_ANY.
inline constexpr uint64_t kMaxGuestCid = 0xffffffffu - 1;
}  // namespace vsock

struct VsockConfig {
  std::string vsock_id;  // Firecracker's deprecated vsock_id: kept and reported, nothing more
  uint64_t guest_cid = 3;
  // The host side: host processes connect here and write "CONNECT <port>\n"; the guest's
  // connections to port P go to "<uds_path>_P".
  std::string uds_path;
};

}  // namespace edgevisor
