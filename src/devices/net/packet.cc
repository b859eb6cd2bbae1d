#include "src/devices/net/packet.h"

#include <linux/if_tun.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/str_format.h"
#include "src/devices/virtio/virtio_spec.h"

namespace edgevisor::net {

using namespace virtio_net;  // NOLINT(build/namespaces): spec constants
using virtio::Bit;

absl::Status ValidateTxHeader(const NetHdr& h, uint64_t frame_len, uint64_t features) {
  if (frame_len < 14) {
    return absl::InvalidArgumentError(absl::StrFormat("frame of %d bytes is too short", frame_len));
  }
  if (frame_len > kMaxFrame) {
    return absl::InvalidArgumentError(absl::StrFormat("frame of %d bytes is too long", frame_len));
  }
  if (h.flags & ~kHdrFlagNeedsCsum) {
    return absl::InvalidArgumentError(absl::StrFormat("unknown header flags 0x%x", h.flags));
  }
  if (h.flags & kHdrFlagNeedsCsum) {
    if (!(features & Bit(kFeatureCsum))) {
      return absl::InvalidArgumentError("NEEDS_CSUM without VIRTIO_NET_F_CSUM");
    }
    if (uint64_t{h.csum_start} + h.csum_offset + 2 > frame_len) {
      return absl::InvalidArgumentError("checksum field lies outside the frame");
    }
  }
  const uint8_t gso = h.gso_type & ~kGsoEcn;
  if ((h.gso_type & kGsoEcn) && !(features & Bit(kFeatureHostEcn))) {
    return absl::InvalidArgumentError("GSO ECN without VIRTIO_NET_F_HOST_ECN");
  }
  int needed = -1;
  switch (gso) {
    case kGsoNone:
      if (h.gso_type & kGsoEcn) return absl::InvalidArgumentError("ECN bit without GSO");
      return absl::OkStatus();
    case kGsoTcpV4:
      needed = kFeatureHostTso4;
      break;
    case kGsoTcpV6:
      needed = kFeatureHostTso6;
      break;
    case kGsoUdp:
      needed = kFeatureHostUfo;
      break;
    default:
      return absl::InvalidArgumentError(absl::StrFormat("unknown gso_type 0x%x", h.gso_type));
  }
  if (!(features & Bit(needed))) {
    return absl::InvalidArgumentError(
        absl::StrFormat("gso_type 0x%x was not negotiated", h.gso_type));
  }
  // §5.1.6.2: GSO packets need a checksum to fill in, a segment size, and their headers inside.
  if (!(h.flags & kHdrFlagNeedsCsum)) {
    return absl::InvalidArgumentError("GSO frame without NEEDS_CSUM");
  }
  if (h.gso_size == 0 || h.hdr_len > frame_len) {
    return absl::InvalidArgumentError("GSO frame with gso_size 0 or hdr_len past the frame");
  }
  return absl::OkStatus();
}

bool GatherTxHeader(const std::vector<iovec>& iov, NetHdr* out) {
  auto* dst = reinterpret_cast<uint8_t*>(out);
  size_t got = 0;
  for (const iovec& v : iov) {
    const size_t n = std::min(v.iov_len, sizeof(NetHdr) - got);
    std::memcpy(dst + got, v.iov_base, n);
    got += n;
    if (got == sizeof(NetHdr)) return true;
  }
  return false;
}

unsigned TapOffloadFlags(uint64_t features) {
  // Segmentation offloads need checksum offload first: a TSO frame carries a partial checksum.
  if (!(features & Bit(kFeatureGuestCsum))) return 0;
  unsigned f = TUN_F_CSUM;
  if (features & Bit(kFeatureGuestTso4)) f |= TUN_F_TSO4;
  if (features & Bit(kFeatureGuestTso6)) f |= TUN_F_TSO6;
  if ((features & Bit(kFeatureGuestEcn)) && (f & (TUN_F_TSO4 | TUN_F_TSO6))) f |= TUN_F_TSO_ECN;
  if (features & Bit(kFeatureGuestUfo)) f |= TUN_F_UFO;
  return f;
}

}  // namespace edgevisor::net
