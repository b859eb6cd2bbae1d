// Constants and layouts of the virtio 1.2 memory balloon device (§5.5), from the kernel's uapi
// header (one source, shared with the guest payloads in firmware/).
#pragma once

#include <linux/virtio_balloon.h>
#include <linux/virtio_ids.h>

#include <cstddef>
#include <cstdint>

namespace edgevisor::balloon {

inline constexpr uint32_t kDeviceIdBalloon = VIRTIO_ID_BALLOON;

// §5.5.3 Feature bits.
inline constexpr int kFeatureStatsVq = VIRTIO_BALLOON_F_STATS_VQ;
inline constexpr int kFeatureDeflateOnOom = VIRTIO_BALLOON_F_DEFLATE_ON_OOM;
inline constexpr int kFeatureReporting = VIRTIO_BALLOON_F_REPORTING;

// §5.5.6: page frame numbers are in 4 KiB units, whatever the guest's page size.
inline constexpr int kPfnShift = VIRTIO_BALLOON_PFN_SHIFT;
inline constexpr uint64_t kPageSize = uint64_t{1} << kPfnShift;
inline constexpr uint64_t kPagesPerMib = (uint64_t{1} << 20) / kPageSize;

// §5.5.4 Device configuration layout (the fields this device has; the hint command id and the
// poison value belong to features it does not offer and read as 0).
struct Config {
  uint32_t num_pages;  // device -> driver: the target, in 4 KiB pages
  uint32_t actual;     // driver -> device: the pages the balloon holds now
};
static_assert(offsetof(Config, num_pages) == offsetof(virtio_balloon_config, num_pages) &&
              offsetof(Config, actual) == offsetof(virtio_balloon_config, actual));

// §5.5.6.3 Memory statistics: an array of packed {le16 tag, le64 value}.
inline constexpr size_t kStatSize = 10;
static_assert(sizeof(virtio_balloon_stat) == kStatSize);
// The tags the statistics name, in tag order (the later ones are Linux 6.12's, past the uapi
// header Debian 12 has).
inline constexpr uint16_t kStatTags = 16;

}  // namespace edgevisor::balloon
