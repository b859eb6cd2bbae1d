// virtio-net constants and layouts (virtio 1.2 §5.1).
#pragma once

#include <cstdint>

namespace edgevisor::virtio_net {

// §5.1.3 feature bits.
inline constexpr int kFeatureCsum = 0;
inline constexpr int kFeatureGuestCsum = 1;
inline constexpr int kFeatureMtu = 3;
inline constexpr int kFeatureMac = 5;
inline constexpr int kFeatureGuestTso4 = 7;
inline constexpr int kFeatureGuestTso6 = 8;
inline constexpr int kFeatureGuestEcn = 9;
inline constexpr int kFeatureGuestUfo = 10;
inline constexpr int kFeatureHostTso4 = 11;
inline constexpr int kFeatureHostTso6 = 12;
inline constexpr int kFeatureHostEcn = 13;
inline constexpr int kFeatureHostUfo = 14;
inline constexpr int kFeatureMrgRxbuf = 15;
inline constexpr int kFeatureStatus = 16;
inline constexpr int kFeatureCtrlVq = 17;
inline constexpr int kFeatureMq = 22;

// §5.1.6 header.
inline constexpr uint8_t kHdrFlagNeedsCsum = 1;
inline constexpr uint8_t kHdrFlagDataValid = 2;
inline constexpr uint8_t kGsoNone = 0;
inline constexpr uint8_t kGsoTcpV4 = 1;
inline constexpr uint8_t kGsoUdp = 3;
inline constexpr uint8_t kGsoTcpV6 = 4;
inline constexpr uint8_t kGsoEcn = 0x80;

// §5.1.6.5 control queue.
inline constexpr uint8_t kCtrlMq = 4;
inline constexpr uint8_t kCtrlMqVqPairsSet = 0;
inline constexpr uint8_t kCtrlOk = 0;
inline constexpr uint8_t kCtrlErr = 1;

inline constexpr uint16_t kStatusLinkUp = 1;
// The largest frame: a 64 KiB GSO super-packet plus its Ethernet header (the TAP's limit).
inline constexpr uint32_t kMaxFrame = 65535 + 14 + 4;

#pragma pack(push, 1)
struct NetHdr {
  uint8_t flags;
  uint8_t gso_type;
  uint16_t hdr_len;
  uint16_t gso_size;
  uint16_t csum_start;
  uint16_t csum_offset;
  uint16_t num_buffers;
};
struct Config {
  uint8_t mac[6];
  uint16_t status;
  uint16_t max_virtqueue_pairs;
  uint16_t mtu;
};
#pragma pack(pop)
static_assert(sizeof(NetHdr) == 12 && sizeof(Config) == 12);

}  // namespace edgevisor::virtio_net
