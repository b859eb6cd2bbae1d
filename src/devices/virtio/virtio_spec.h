// Constants from the virtio 1.2 specification (OASIS, 2022), cited by section. The values come
// from the kernel's uapi headers (one source, shared with the guest payloads in firmware/); the
// names are ours, and the layouts are checked against the uapi structs.
#pragma once

#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_mmio.h>
// Without the legacy ring helpers (vring_init), which are C only.
#define VIRTIO_RING_NO_LEGACY
#include <linux/virtio_ring.h>

#include <cstddef>
#include <cstdint>

namespace edgevisor::virtio {

// §2.1 Device status field.
inline constexpr uint32_t kStatusAcknowledge = VIRTIO_CONFIG_S_ACKNOWLEDGE;
inline constexpr uint32_t kStatusDriver = VIRTIO_CONFIG_S_DRIVER;
inline constexpr uint32_t kStatusDriverOk = VIRTIO_CONFIG_S_DRIVER_OK;
inline constexpr uint32_t kStatusFeaturesOk = VIRTIO_CONFIG_S_FEATURES_OK;
inline constexpr uint32_t kStatusNeedsReset = VIRTIO_CONFIG_S_NEEDS_RESET;
inline constexpr uint32_t kStatusFailed = VIRTIO_CONFIG_S_FAILED;

// §6 Reserved feature bits.
inline constexpr int kFeatureRingIndirectDesc = VIRTIO_RING_F_INDIRECT_DESC;
inline constexpr int kFeatureRingEventIdx = VIRTIO_RING_F_EVENT_IDX;
inline constexpr int kFeatureVersion1 = VIRTIO_F_VERSION_1;

// §2.7.5 Split virtqueue descriptor flags.
inline constexpr uint16_t kDescFlagNext = VRING_DESC_F_NEXT;
inline constexpr uint16_t kDescFlagWrite = VRING_DESC_F_WRITE;
inline constexpr uint16_t kDescFlagIndirect = VRING_DESC_F_INDIRECT;
// §2.7.6 / §2.7.8 ring flags.
inline constexpr uint16_t kAvailFlagNoInterrupt = VRING_AVAIL_F_NO_INTERRUPT;
inline constexpr uint16_t kUsedFlagNoNotify = VRING_USED_F_NO_NOTIFY;

// §5 Device IDs.
inline constexpr uint32_t kDeviceIdBlock = VIRTIO_ID_BLOCK;
inline constexpr uint32_t kDeviceIdNet = VIRTIO_ID_NET;
inline constexpr uint32_t kDeviceIdRng = VIRTIO_ID_RNG;

// §4.2.4 Interrupt status bits.
inline constexpr uint32_t kInterruptUsedBuffer = VIRTIO_MMIO_INT_VRING;
inline constexpr uint32_t kInterruptConfigChange = VIRTIO_MMIO_INT_CONFIG;

inline constexpr uint64_t Bit(int n) { return uint64_t{1} << n; }

#pragma pack(push, 1)
struct Desc {  // §2.7.5
  uint64_t addr;
  uint32_t len;
  uint16_t flags;
  uint16_t next;
};
struct UsedElem {  // §2.7.8
  uint32_t id;
  uint32_t len;
};
#pragma pack(pop)
static_assert(sizeof(Desc) == sizeof(vring_desc) &&
              offsetof(Desc, addr) == offsetof(vring_desc, addr) &&
              offsetof(Desc, len) == offsetof(vring_desc, len) &&
              offsetof(Desc, flags) == offsetof(vring_desc, flags) &&
              offsetof(Desc, next) == offsetof(vring_desc, next));
static_assert(sizeof(UsedElem) == sizeof(vring_used_elem) &&
              offsetof(UsedElem, len) == offsetof(vring_used_elem, len));

}  // namespace edgevisor::virtio
