// Polling virtio-blk driver (virtio 1.2 §5.2) on top of virtio_mmio.h.
//
// A request is a chain: a device-readable header {type, reserved, sector}, zero or more data
// buffers (device-writable for IN and GET_ID, device-readable otherwise), and one
// device-writable status byte (§5.2.6). Sectors are always 512 bytes, whatever blk_size says.
#ifndef EDGEVISOR_FW_VIRTIO_BLK_H
#define EDGEVISOR_FW_VIRTIO_BLK_H

#include "virtio_mmio.h"

#define VIRTIO_ID_BLOCK 2
#define VIRTIO_BLK_SECTOR_SIZE 512

// §5.2.3 feature bits.
#define VIRTIO_BLK_F_SIZE_MAX 1
#define VIRTIO_BLK_F_SEG_MAX 2
#define VIRTIO_BLK_F_RO 5
#define VIRTIO_BLK_F_BLK_SIZE 6
#define VIRTIO_BLK_F_FLUSH 9
#define VIRTIO_BLK_F_MQ 12
#define VIRTIO_BLK_F_DISCARD 13
#define VIRTIO_BLK_F_WRITE_ZEROES 14

// What vblk_init accepts by default: the block features above, plus indirect descriptors.
#define VBLK_DEFAULT_FEATURES                                                         \
  (VIRTIO_FEATURE(VIRTIO_BLK_F_SIZE_MAX) | VIRTIO_FEATURE(VIRTIO_BLK_F_SEG_MAX) |     \
   VIRTIO_FEATURE(VIRTIO_BLK_F_RO) | VIRTIO_FEATURE(VIRTIO_BLK_F_BLK_SIZE) |          \
   VIRTIO_FEATURE(VIRTIO_BLK_F_FLUSH) | VIRTIO_FEATURE(VIRTIO_BLK_F_MQ) |             \
   VIRTIO_FEATURE(VIRTIO_BLK_F_DISCARD) | VIRTIO_FEATURE(VIRTIO_BLK_F_WRITE_ZEROES) | \
   VIRTIO_FEATURE(VIRTIO_F_INDIRECT_DESC) | VIRTIO_FEATURE(VIRTIO_F_VERSION_1))

// §5.2.4 config space offsets.
#define VIRTIO_BLK_CFG_CAPACITY 0  // u64, in 512-byte sectors
#define VIRTIO_BLK_CFG_SIZE_MAX 8
#define VIRTIO_BLK_CFG_SEG_MAX 12
#define VIRTIO_BLK_CFG_BLK_SIZE 20
#define VIRTIO_BLK_CFG_NUM_QUEUES 34  // u16
#define VIRTIO_BLK_CFG_MAX_DISCARD_SECTORS 36
#define VIRTIO_BLK_CFG_MAX_DISCARD_SEG 40
#define VIRTIO_BLK_CFG_DISCARD_SECTOR_ALIGNMENT 44
#define VIRTIO_BLK_CFG_MAX_WRITE_ZEROES_SECTORS 48
#define VIRTIO_BLK_CFG_MAX_WRITE_ZEROES_SEG 52
#define VIRTIO_BLK_CFG_WRITE_ZEROES_MAY_UNMAP 56  // u8

// §5.2.6 request types and status values.
#define VIRTIO_BLK_T_IN 0
#define VIRTIO_BLK_T_OUT 1
#define VIRTIO_BLK_T_FLUSH 4
#define VIRTIO_BLK_T_GET_ID 8
#define VIRTIO_BLK_T_DISCARD 11
#define VIRTIO_BLK_T_WRITE_ZEROES 13
#define VIRTIO_BLK_S_OK 0
#define VIRTIO_BLK_S_IOERR 1
#define VIRTIO_BLK_S_UNSUPP 2
#define VIRTIO_BLK_ID_BYTES 20  // GET_ID buffer size

#define VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP 1u

struct virtio_blk_req_hdr {
  uint32_t type;
  uint32_t reserved;
  uint64_t sector;
};
_Static_assert(sizeof(struct virtio_blk_req_hdr) == 16, "virtio_blk_req header (§5.2.6)");

// Data of DISCARD / WRITE_ZEROES requests (one per segment).
struct virtio_blk_discard_write_zeroes {
  uint64_t sector;
  uint32_t num_sectors;
  uint32_t flags;
};
_Static_assert(sizeof(struct virtio_blk_discard_write_zeroes) == 16, "§5.2.6 layout");

// The config fields, read once at init (fields of features that were not negotiated are 0).
struct virtio_blk_cfg {
  uint64_t capacity;  // 512-byte sectors
  uint32_t size_max;
  uint32_t seg_max;
  uint32_t blk_size;
  uint16_t num_queues;  // 1 unless MQ was negotiated
  uint32_t max_discard_sectors;
  uint32_t max_discard_seg;
  uint32_t discard_sector_alignment;
  uint32_t max_write_zeroes_sectors;
  uint32_t max_write_zeroes_seg;
  uint8_t write_zeroes_may_unmap;
};

// Queues one vblk sets up at a time (larger num_queues: initialize again with first_queue).
#define VBLK_MAX_QUEUES 16

struct vblk_opts {
  uint64_t features;     // wanted features; 0 = VBLK_DEFAULT_FEATURES
  uint16_t first_queue;  // first queue to set up
  uint16_t max_queues;   // 0 = 1; capped at VBLK_MAX_QUEUES and the device's num_queues
  uint16_t queue_size;   // 0 = VIRTQ_MAX_SIZE (the device's QueueNumMax may lower it)
};

// One in-flight request: header and status must stay put until it completes.
struct vblk_req {
  struct virtio_blk_req_hdr hdr;  // device-readable
  uint8_t status;                 // device-writable; 0xff until the device writes it
  bool done;
  uint32_t used_len;  // from the used ring: bytes written (data + status for IN)
};

// Driver state for one device. Keep it in static storage: the synchronous requests' headers
// and status bytes live here, so a request the device completes late (after a timeout) never
// scribbles on a stack frame.
struct vblk {
  struct virtio_mmio_dev dev;
  struct virtio_blk_cfg cfg;
  uint16_t first_queue;  // vq[i] is queue first_queue + i
  uint16_t nqueues;
  struct virtq* vq[VBLK_MAX_QUEUES];
  uint64_t timeout_ticks;                     // per-request wait
  struct vblk_req sync_req[VBLK_MAX_QUEUES];  // used by vblk_do
};

struct vblk_seg {
  void* buf;
  uint32_t len;
};

// Negotiates features, reads the config, sets up queues and sets DRIVER_OK. `probed` comes
// from virtio_mmio_probe and must be a block device. On error the device is left FAILED.
int vblk_init(struct vblk* b, const struct virtio_mmio_dev* probed, const struct vblk_opts* opts);
// Resets the device and releases its queues.
void vblk_reset(struct vblk* b);
static inline bool vblk_has(const struct vblk* b, unsigned feature_bit) {
  return virtio_has_feature(&b->dev, feature_bit);
}

// Queues a request on vq[q] without notifying. Data buffers are device-writable for IN and
// GET_ID. With `indirect` (and the feature) the chain uses an indirect table when it has more
// than one descriptor. Returns the head index or an error (VIRTIO_ERR_NO_DESC when full).
int vblk_submit(struct vblk* b, unsigned q, struct vblk_req* r, uint32_t type, uint64_t sector,
                const struct vblk_seg* segs, unsigned nsegs, bool indirect);
void vblk_kick(struct vblk* b, unsigned q);
// Waits for at least one completion on vq[q] and returns it in *out (marks it done). Returns
// 1, or an error (timeout, needs reset, bad used entry).
int vblk_reap(struct vblk* b, unsigned q, struct vblk_req** out);
// Synchronous request: submit, kick, wait. Returns the status byte (VIRTIO_BLK_S_*, or any
// other value the device wrote) or a negative VIRTIO_ERR_*. used_len (may be NULL) receives
// the used length.
int vblk_do(struct vblk* b, unsigned q, uint32_t type, uint64_t sector, const struct vblk_seg* segs,
            unsigned nsegs, bool indirect, uint32_t* used_len);
// vblk_do with one data buffer (or none if len == 0).
int vblk_io(struct vblk* b, unsigned q, uint32_t type, uint64_t sector, void* buf, uint32_t len);

// "OK", "IOERR", "UNSUPP", or a virtio error / "status 0x.." description.
const char* vblk_status_str(int r);

#endif  // EDGEVISOR_FW_VIRTIO_BLK_H
