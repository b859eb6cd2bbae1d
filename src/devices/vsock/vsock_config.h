// What the vsock device is asked to be (Firecracker's PUT /vsock). The device owns this type;
// the VMM's config layer (config file, API) fills it in.
#pragma once

#include <cstdint>
#include <string>

namespace edgevisor {

struct VsockConfig {
  std::string vsock_id;  // Firecracker's deprecated vsock_id: kept and reported, nothing more
  uint64_t guest_cid = 3;
  // The host side: host processes connect here and write "CONNECT <port>\n"; the guest's
  // connections to port P go to "<uds_path>_P".
  std::string uds_path;
};

}  // namespace edgevisor
