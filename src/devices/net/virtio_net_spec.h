// virtio-net constants and layouts (virtio 1.2 §5.1). Values from the kernel's uapi header;
// layouts checked against its structs.
#pragma once

// The header names a field of struct virtio_net_ctrl_hdr `class`, a C++ keyword.
#define class class_
#include <linux/virtio_net.h>
#undef class

#include <cstddef>
#include <cstdint>

namespace edgevisor::virtio_net {

// §5.1.3 feature bits.
inline constexpr int kFeatureCsum = VIRTIO_NET_F_CSUM;
inline constexpr int kFeatureGuestCsum = VIRTIO_NET_F_GUEST_CSUM;
inline constexpr int kFeatureMtu = VIRTIO_NET_F_MTU;
inline constexpr int kFeatureMac = VIRTIO_NET_F_MAC;
inline constexpr int kFeatureGuestTso4 = VIRTIO_NET_F_GUEST_TSO4;
inline constexpr int kFeatureGuestTso6 = VIRTIO_NET_F_GUEST_TSO6;
inline constexpr int kFeatureGuestEcn = VIRTIO_NET_F_GUEST_ECN;
inline constexpr int kFeatureGuestUfo = VIRTIO_NET_F_GUEST_UFO;
inline constexpr int kFeatureHostTso4 = VIRTIO_NET_F_HOST_TSO4;
inline constexpr int kFeatureHostTso6 = VIRTIO_NET_F_HOST_TSO6;
inline constexpr int kFeatureHostEcn = VIRTIO_NET_F_HOST_ECN;
inline constexpr int kFeatureHostUfo = VIRTIO_NET_F_HOST_UFO;
inline constexpr int kFeatureMrgRxbuf = VIRTIO_NET_F_MRG_RXBUF;
inline constexpr int kFeatureStatus = VIRTIO_NET_F_STATUS;
inline constexpr int kFeatureCtrlVq = VIRTIO_NET_F_CTRL_VQ;
inline constexpr int kFeatureMq = VIRTIO_NET_F_MQ;

// §5.1.6 header.
inline constexpr uint8_t kHdrFlagNeedsCsum = VIRTIO_NET_HDR_F_NEEDS_CSUM;
inline constexpr uint8_t kHdrFlagDataValid = VIRTIO_NET_HDR_F_DATA_VALID;
inline constexpr uint8_t kGsoNone = VIRTIO_NET_HDR_GSO_NONE;
inline constexpr uint8_t kGsoTcpV4 = VIRTIO_NET_HDR_GSO_TCPV4;
inline constexpr uint8_t kGsoUdp = VIRTIO_NET_HDR_GSO_UDP;
inline constexpr uint8_t kGsoTcpV6 = VIRTIO_NET_HDR_GSO_TCPV6;
inline constexpr uint8_t kGsoEcn = VIRTIO_NET_HDR_GSO_ECN;

// §5.1.6.5 control queue.
inline constexpr uint8_t kCtrlMq = VIRTIO_NET_CTRL_MQ;
inline constexpr uint8_t kCtrlMqVqPairsSet = VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET;
inline constexpr uint8_t kCtrlOk = VIRTIO_NET_OK;
inline constexpr uint8_t kCtrlErr = VIRTIO_NET_ERR;

inline constexpr uint16_t kStatusLinkUp = VIRTIO_NET_S_LINK_UP;
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
static_assert(sizeof(NetHdr) == sizeof(virtio_net_hdr_mrg_rxbuf) &&
              offsetof(NetHdr, gso_size) == offsetof(virtio_net_hdr_mrg_rxbuf, hdr.gso_size) &&
              offsetof(NetHdr, num_buffers) == offsetof(virtio_net_hdr_mrg_rxbuf, num_buffers));
static_assert(offsetof(Config, status) == offsetof(virtio_net_config, status) &&
              offsetof(Config, max_virtqueue_pairs) ==
                  offsetof(virtio_net_config, max_virtqueue_pairs) &&
              offsetof(Config, mtu) == offsetof(virtio_net_config, mtu) && sizeof(Config) == 12);

}  // namespace edgevisor::virtio_net
