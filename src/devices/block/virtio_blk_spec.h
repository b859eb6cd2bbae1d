// virtio-blk constants and layouts (virtio 1.2 §5.2). Values from the kernel's uapi header;
// layouts checked against its structs.
#pragma once

#include <linux/virtio_blk.h>

#include <cstddef>
#include <cstdint>

namespace edgevisor::virtio_blk {

// §5.2.3 feature bits.
inline constexpr int kFeatureSizeMax = VIRTIO_BLK_F_SIZE_MAX;
inline constexpr int kFeatureSegMax = VIRTIO_BLK_F_SEG_MAX;
inline constexpr int kFeatureRo = VIRTIO_BLK_F_RO;
inline constexpr int kFeatureBlkSize = VIRTIO_BLK_F_BLK_SIZE;
inline constexpr int kFeatureFlush = VIRTIO_BLK_F_FLUSH;
inline constexpr int kFeatureMq = VIRTIO_BLK_F_MQ;
inline constexpr int kFeatureDiscard = VIRTIO_BLK_F_DISCARD;
inline constexpr int kFeatureWriteZeroes = VIRTIO_BLK_F_WRITE_ZEROES;

// §5.2.6 request types and status values.
inline constexpr uint32_t kTypeIn = VIRTIO_BLK_T_IN;
inline constexpr uint32_t kTypeOut = VIRTIO_BLK_T_OUT;
inline constexpr uint32_t kTypeFlush = VIRTIO_BLK_T_FLUSH;
inline constexpr uint32_t kTypeGetId = VIRTIO_BLK_T_GET_ID;
inline constexpr uint32_t kTypeDiscard = VIRTIO_BLK_T_DISCARD;
inline constexpr uint32_t kTypeWriteZeroes = VIRTIO_BLK_T_WRITE_ZEROES;
inline constexpr uint8_t kStatusOk = VIRTIO_BLK_S_OK;
inline constexpr uint8_t kStatusIoErr = VIRTIO_BLK_S_IOERR;
inline constexpr uint8_t kStatusUnsupp = VIRTIO_BLK_S_UNSUPP;

inline constexpr uint64_t kSectorSize = 512;
inline constexpr uint32_t kIdBytes = VIRTIO_BLK_ID_BYTES;
inline constexpr uint32_t kWriteZeroesFlagUnmap = VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP;

#pragma pack(push, 1)
struct Config {  // §5.2.4
  uint64_t capacity;
  uint32_t size_max;
  uint32_t seg_max;
  struct {
    uint16_t cylinders;
    uint8_t heads;
    uint8_t sectors;
  } geometry;
  uint32_t blk_size;
  struct {
    uint8_t physical_block_exp;
    uint8_t alignment_offset;
    uint16_t min_io_size;
    uint32_t opt_io_size;
  } topology;
  uint8_t writeback;
  uint8_t unused0;
  uint16_t num_queues;
  uint32_t max_discard_sectors;
  uint32_t max_discard_seg;
  uint32_t discard_sector_alignment;
  uint32_t max_write_zeroes_sectors;
  uint32_t max_write_zeroes_seg;
  uint8_t write_zeroes_may_unmap;
  uint8_t unused1[3];
};
struct ReqHeader {  // §5.2.6
  uint32_t type;
  uint32_t reserved;
  uint64_t sector;
};
struct DiscardSegment {  // §5.2.6, discard and write-zeroes payload
  uint64_t sector;
  uint32_t num_sectors;
  uint32_t flags;
};
#pragma pack(pop)
// Our Config stops where virtio 1.2 §5.2.4 stops; newer uapi headers go on (secure erase).
static_assert(sizeof(Config) == 60 && sizeof(Config) <= sizeof(virtio_blk_config));
static_assert(offsetof(Config, capacity) == offsetof(virtio_blk_config, capacity) &&
              offsetof(Config, seg_max) == offsetof(virtio_blk_config, seg_max) &&
              offsetof(Config, blk_size) == offsetof(virtio_blk_config, blk_size) &&
              offsetof(Config, num_queues) == offsetof(virtio_blk_config, num_queues) &&
              offsetof(Config, max_discard_sectors) ==
                  offsetof(virtio_blk_config, max_discard_sectors) &&
              offsetof(Config, write_zeroes_may_unmap) ==
                  offsetof(virtio_blk_config, write_zeroes_may_unmap));
static_assert(sizeof(ReqHeader) == sizeof(virtio_blk_outhdr) &&
              offsetof(ReqHeader, sector) == offsetof(virtio_blk_outhdr, sector));
static_assert(sizeof(DiscardSegment) == sizeof(virtio_blk_discard_write_zeroes) &&
              offsetof(DiscardSegment, num_sectors) ==
                  offsetof(virtio_blk_discard_write_zeroes, num_sectors));

}  // namespace edgevisor::virtio_blk
