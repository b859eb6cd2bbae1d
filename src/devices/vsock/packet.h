// vsock packets (virtio 1.2 §5.10.6) as the device reads them from the guest's TX queue and
// writes them into its RX queue. The header's every field is the guest's: ParseHeader and
// CheckPayload are the only ways from guest bytes to a Packet, and both check what they read.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "src/devices/vsock/vsock_spec.h"

namespace edgevisor::vsock {

// virtio_vsock_hdr in host byte order.
struct Header {
  uint64_t src_cid = 0;
  uint64_t dst_cid = 0;
  uint32_t src_port = 0;
  uint32_t dst_port = 0;
  uint32_t len = 0;
  uint16_t type = kTypeStream;
  uint16_t op = kOpInvalid;
  uint32_t flags = 0;
  uint32_t buf_alloc = 0;
  uint32_t fwd_cnt = 0;
};

struct Packet {
  Header hdr;
  std::vector<uint8_t> data;  // hdr.len bytes
};

// The header at the start of BYTES (little-endian), or nullopt when BYTES is shorter than one.
std::optional<Header> ParseHeader(absl::Span<const uint8_t> bytes);
// HDR's encoding, kHeaderSize bytes.
void EncodeHeader(const Header& hdr, absl::Span<uint8_t> out);

// Whether HDR's payload length is one the device takes, given that AVAILABLE bytes follow the
// header in the guest's chain: at most kMaxPayload, and no more than the chain holds.
absl::Status CheckPayload(const Header& hdr, uint64_t available);

// "RW 3:1024 -> 2:5000 len 16" for logs.
std::string Describe(const Header& hdr);

}  // namespace edgevisor::vsock
