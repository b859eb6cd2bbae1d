// virtio-vsock (virtio 1.2 §5.10): the packet header, its operations and the device's
// constants, from the kernel's uapi header where it has them.
#pragma once

#include <linux/virtio_vsock.h>

#include <cstdint>

#include "src/devices/vsock/vsock_config.h"  // the CID limits

namespace edgevisor::vsock {

inline constexpr uint32_t kDeviceId = 19;  // VIRTIO_ID_VSOCK
inline constexpr uint16_t kRxQueue = 0, kTxQueue = 1, kEventQueue = 2;
inline constexpr uint64_t kHostCid = 2;  // VMADDR_CID_HOST

inline constexpr uint16_t kTypeStream = VIRTIO_VSOCK_TYPE_STREAM;
enum Op : uint16_t {
  kOpInvalid = VIRTIO_VSOCK_OP_INVALID,
  kOpRequest = VIRTIO_VSOCK_OP_REQUEST,
  kOpResponse = VIRTIO_VSOCK_OP_RESPONSE,
  kOpRst = VIRTIO_VSOCK_OP_RST,
  kOpShutdown = VIRTIO_VSOCK_OP_SHUTDOWN,
  kOpRw = VIRTIO_VSOCK_OP_RW,
  kOpCreditUpdate = VIRTIO_VSOCK_OP_CREDIT_UPDATE,
  kOpCreditRequest = VIRTIO_VSOCK_OP_CREDIT_REQUEST,
};
inline constexpr uint32_t kShutdownRcv = VIRTIO_VSOCK_SHUTDOWN_RCV;
inline constexpr uint32_t kShutdownSend = VIRTIO_VSOCK_SHUTDOWN_SEND;
inline constexpr uint32_t kShutdownBoth = kShutdownRcv | kShutdownSend;
inline constexpr uint32_t kEventTransportReset = VIRTIO_VSOCK_EVENT_TRANSPORT_RESET;

inline constexpr size_t kHeaderSize = sizeof(virtio_vsock_hdr);
static_assert(kHeaderSize == 44, "virtio_vsock_hdr is 44 bytes (§5.10.6)");

// The largest payload the device accepts in one packet or puts in one (Linux's own limit,
// VIRTIO_VSOCK_MAX_PKT_BUF_SIZE): a longer one is a hostile guest's.
inline constexpr uint32_t kMaxPayload = 64 * 1024;

// §5.10.4: the device configuration layout.
struct Config {
  uint64_t guest_cid;  // le64
};

}  // namespace edgevisor::vsock
