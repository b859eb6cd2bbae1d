// Constants from the virtio 1.2 specification (OASIS, 2022), cited by section.
#pragma once

#include <cstdint>

namespace edgevisor::virtio {

// §2.1 Device status field.
inline constexpr uint32_t kStatusAcknowledge = 1;
inline constexpr uint32_t kStatusDriver = 2;
inline constexpr uint32_t kStatusDriverOk = 4;
inline constexpr uint32_t kStatusFeaturesOk = 8;
inline constexpr uint32_t kStatusNeedsReset = 0x40;
inline constexpr uint32_t kStatusFailed = 0x80;

// §6 Reserved feature bits.
inline constexpr int kFeatureRingIndirectDesc = 28;
inline constexpr int kFeatureRingEventIdx = 29;
inline constexpr int kFeatureVersion1 = 32;

// §2.7.5 Split virtqueue descriptor flags.
inline constexpr uint16_t kDescFlagNext = 1;
inline constexpr uint16_t kDescFlagWrite = 2;
inline constexpr uint16_t kDescFlagIndirect = 4;
// §2.7.6 / §2.7.8 ring flags.
inline constexpr uint16_t kAvailFlagNoInterrupt = 1;
inline constexpr uint16_t kUsedFlagNoNotify = 1;

// §5 Device IDs.
inline constexpr uint32_t kDeviceIdBlock = 2;
inline constexpr uint32_t kDeviceIdNet = 1;

// §4.2.4 Interrupt status bits.
inline constexpr uint32_t kInterruptUsedBuffer = 1;
inline constexpr uint32_t kInterruptConfigChange = 2;

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
static_assert(sizeof(Desc) == 16 && sizeof(UsedElem) == 8);

}  // namespace edgevisor::virtio
