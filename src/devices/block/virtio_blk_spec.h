// virtio-blk constants and layouts (virtio 1.2 §5.2).
#pragma once

#include <cstdint>

namespace edgevisor::virtio_blk {

// §5.2.3 feature bits.
inline constexpr int kFeatureSizeMax = 1;
inline constexpr int kFeatureSegMax = 2;
inline constexpr int kFeatureRo = 5;
inline constexpr int kFeatureBlkSize = 6;
inline constexpr int kFeatureFlush = 9;
inline constexpr int kFeatureMq = 12;
inline constexpr int kFeatureDiscard = 13;
inline constexpr int kFeatureWriteZeroes = 14;

// §5.2.6 request types and status values.
inline constexpr uint32_t kTypeIn = 0;
inline constexpr uint32_t kTypeOut = 1;
inline constexpr uint32_t kTypeFlush = 4;
inline constexpr uint32_t kTypeGetId = 8;
inline constexpr uint32_t kTypeDiscard = 11;
inline constexpr uint32_t kTypeWriteZeroes = 13;
inline constexpr uint8_t kStatusOk = 0;
inline constexpr uint8_t kStatusIoErr = 1;
inline constexpr uint8_t kStatusUnsupp = 2;

inline constexpr uint64_t kSectorSize = 512;
inline constexpr uint32_t kIdBytes = 20;
inline constexpr uint32_t kWriteZeroesFlagUnmap = 1;

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
static_assert(sizeof(Config) == 60);
static_assert(sizeof(ReqHeader) == 16 && sizeof(DiscardSegment) == 16);

}  // namespace edgevisor::virtio_blk
