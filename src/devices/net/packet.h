// Pure functions of the virtio-net data path: checking a guest TX header, and mapping the
// negotiated features to the TAP's receive offloads. Unit-tested and fuzzed.
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "src/devices/net/virtio_net_spec.h"

namespace edgevisor::net {

// Accepts a header only if every field is one the guest negotiated and that fits the frame
// (`frame_len` bytes after the header). The TAP would reject or mangle anything else.
absl::Status ValidateTxHeader(const virtio_net::NetHdr& hdr, uint64_t frame_len, uint64_t features);

// Gathers the 12-byte header from the start of a TX chain's buffers, however the driver split
// it across descriptors. False if the buffers hold fewer than 12 bytes.
bool GatherTxHeader(const std::vector<iovec>& iov, virtio_net::NetHdr* out);

// TUN_F_* flags for TUNSETOFFLOAD: what the guest can take on receive (GUEST_* features).
unsigned TapOffloadFlags(uint64_t features);

}  // namespace edgevisor::net
