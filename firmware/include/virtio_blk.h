// Polling virtio-blk driver (virtio 1.2 §5.2) on top of virtio_mmio.h.
//
// A request is a chain: a device-readable header {type, reserved, sector}, zero or more data
// buffers (device-writable for IN and GET_ID, device-readable otherwise), and one
// device-writable status byte (§5.2.6). Sectors are always 512 bytes, whatever blk_size says.
#ifndef EDGEVISOR_FW_VIRTIO_BLK_H
#define EDGEVISOR_FW_VIRTIO_BLK_H

#include "virtio_mmio.h"

// Feature bits (VIRTIO_BLK_F_*), request types (VIRTIO_BLK_T_*), status values
// (VIRTIO_BLK_S_*), the config layout (struct virtio_blk_config) and the discard/write-zeroes
// segment: the kernel's uapi header, as for edgevisor.
#include <linux/virtio_blk.h>

#define VIRTIO_BLK_SECTOR_SIZE 512

// What vblk_init accepts by default: the block features above, plus indirect descriptors.
#define VBLK_DEFAULT_FEATURES                                                         \
  (VIRTIO_FEATURE(VIRTIO_BLK_F_SIZE_MAX) | VIRTIO_FEATURE(VIRTIO_BLK_F_SEG_MAX) |     \
   VIRTIO_FEATURE(VIRTIO_BLK_F_RO) | VIRTIO_FEATURE(VIRTIO_BLK_F_BLK_SIZE) |          \
   VIRTIO_FEATURE(VIRTIO_BLK_F_FLUSH) | VIRTIO_FEATURE(VIRTIO_BLK_F_MQ) |             \
   VIRTIO_FEATURE(VIRTIO_BLK_F_DISCARD) | VIRTIO_FEATURE(VIRTIO_BLK_F_WRITE_ZEROES) | \
   VIRTIO_FEATURE(VIRTIO_RING_F_INDIRECT_DESC) | VIRTIO_FEATURE(VIRTIO_F_VERSION_1))

// §5.2.4 config space offsets.
#define VIRTIO_BLK_CFG(field) offsetof(struct virtio_blk_config, field)

struct virtio_blk_req_hdr {
  uint32_t type;
  uint32_t reserved;
  uint64_t sector;
};
_Static_assert(sizeof(struct virtio_blk_req_hdr) == sizeof(struct virtio_blk_outhdr) &&
                   offsetof(struct virtio_blk_req_hdr, sector) ==
                       offsetof(struct virtio_blk_outhdr, sector),
               "virtio_blk_req header (§5.2.6)");

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
