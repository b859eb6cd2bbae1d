// Polling virtio-blk driver. See include/virtio_blk.h.
#include "virtio_blk.h"

#include "rt.h"

static void read_config(struct vblk* b) {
  const struct virtio_mmio_dev* d = &b->dev;
  struct virtio_blk_cfg* c = &b->cfg;
  memset(c, 0, sizeof(*c));
  // §5.2.4: fields beyond capacity are only valid when their feature was negotiated.
  c->capacity = virtio_config_read64(d, VIRTIO_BLK_CFG(capacity));
  if (vblk_has(b, VIRTIO_BLK_F_SIZE_MAX)) {
    c->size_max = virtio_config_read32(d, VIRTIO_BLK_CFG(size_max));
  }
  if (vblk_has(b, VIRTIO_BLK_F_SEG_MAX)) {
    c->seg_max = virtio_config_read32(d, VIRTIO_BLK_CFG(seg_max));
  }
  if (vblk_has(b, VIRTIO_BLK_F_BLK_SIZE)) {
    c->blk_size = virtio_config_read32(d, VIRTIO_BLK_CFG(blk_size));
  }
  c->num_queues = 1;
  if (vblk_has(b, VIRTIO_BLK_F_MQ)) {
    c->num_queues = virtio_config_read16(d, VIRTIO_BLK_CFG(num_queues));
    if (c->num_queues == 0) c->num_queues = 1;
  }
  if (vblk_has(b, VIRTIO_BLK_F_DISCARD)) {
    c->max_discard_sectors = virtio_config_read32(d, VIRTIO_BLK_CFG(max_discard_sectors));
    c->max_discard_seg = virtio_config_read32(d, VIRTIO_BLK_CFG(max_discard_seg));
    c->discard_sector_alignment = virtio_config_read32(d, VIRTIO_BLK_CFG(discard_sector_alignment));
  }
  if (vblk_has(b, VIRTIO_BLK_F_WRITE_ZEROES)) {
    c->max_write_zeroes_sectors = virtio_config_read32(d, VIRTIO_BLK_CFG(max_write_zeroes_sectors));
    c->max_write_zeroes_seg = virtio_config_read32(d, VIRTIO_BLK_CFG(max_write_zeroes_seg));
    c->write_zeroes_may_unmap = virtio_config_read8(d, VIRTIO_BLK_CFG(write_zeroes_may_unmap));
  }
}

int vblk_init(struct vblk* b, const struct virtio_mmio_dev* probed, const struct vblk_opts* opts) {
  memset(b, 0, sizeof(*b));
  b->dev = *probed;
  b->timeout_ticks = rt_ms_to_ticks(VIRTIO_DEFAULT_TIMEOUT_MS);
  if (b->dev.device_id != VIRTIO_ID_BLOCK) return VIRTIO_ERR_NO_DEVICE;
  const struct vblk_opts none = {0, 0, 0, 0};
  if (opts == NULL) opts = &none;

  int err =
      virtio_dev_negotiate(&b->dev, opts->features != 0 ? opts->features : VBLK_DEFAULT_FEATURES);
  if (err != VIRTIO_OK) return err;
  read_config(b);  // §3.1.1 step 7: device-specific setup

  unsigned want = opts->max_queues != 0 ? opts->max_queues : 1;
  if (want > VBLK_MAX_QUEUES) want = VBLK_MAX_QUEUES;
  if (opts->first_queue >= b->cfg.num_queues) {
    virtio_dev_fail(&b->dev);
    return VIRTIO_ERR_QUEUE;
  }
  if (want > (unsigned)(b->cfg.num_queues - opts->first_queue)) {
    want = b->cfg.num_queues - opts->first_queue;
  }
  b->first_queue = opts->first_queue;
  for (unsigned i = 0; i < want; i++) {
    err = virtq_setup(&b->dev, (uint16_t)(opts->first_queue + i), opts->queue_size, &b->vq[i]);
    if (err != VIRTIO_OK) {
      virtio_dev_fail(&b->dev);
      return err;
    }
    b->nqueues = (uint16_t)(i + 1);
  }
  err = virtio_dev_driver_ok(&b->dev);
  if (err != VIRTIO_OK) virtio_dev_fail(&b->dev);
  return err;
}

void vblk_reset(struct vblk* b) {
  virtio_dev_reset(&b->dev);
  b->nqueues = 0;
}

static bool data_is_device_writable(uint32_t type) {
  return type == VIRTIO_BLK_T_IN || type == VIRTIO_BLK_T_GET_ID;
}

int vblk_submit(struct vblk* b, unsigned q, struct vblk_req* r, uint32_t type, uint64_t sector,
                const struct vblk_seg* segs, unsigned nsegs, bool indirect) {
  if (q >= b->nqueues || nsegs + 2 > VIRTQ_MAX_SIZE) return VIRTIO_ERR_INVAL;
  struct virtq_buf bufs[VIRTQ_MAX_SIZE];
  r->hdr.type = type;
  r->hdr.reserved = 0;
  r->hdr.sector = sector;
  r->status = 0xff;  // anything but a valid status, so "not written" is visible
  r->done = false;
  r->used_len = 0;
  // §5.2.6: header (device-readable), data, status (device-writable). §2.7.4.2: all readable
  // descriptors precede the writable ones, which holds for both data directions.
  unsigned n = 0;
  bufs[n++] = (struct virtq_buf){(uintptr_t)&r->hdr, sizeof(r->hdr), false};
  const bool w = data_is_device_writable(type);
  for (unsigned i = 0; i < nsegs; i++) {
    bufs[n++] = (struct virtq_buf){(uintptr_t)segs[i].buf, segs[i].len, w};
  }
  bufs[n++] = (struct virtq_buf){(uintptr_t)&r->status, 1, true};
  return virtq_add(b->vq[q], bufs, n, indirect, r);
}

void vblk_kick(struct vblk* b, unsigned q) { virtq_kick(b->vq[q]); }

int vblk_reap(struct vblk* b, unsigned q, struct vblk_req** out) {
  struct virtq* vq = b->vq[q];
  // Returns at once if something is already there; either way it reads and acknowledges
  // InterruptStatus, as an interrupt handler would.
  const int err = virtq_wait(vq, b->timeout_ticks);
  if (err != VIRTIO_OK) return err;
  void* cookie = NULL;
  uint32_t len = 0;
  const int r = virtq_get_used(vq, &cookie, &len);
  if (r <= 0) return r == 0 ? VIRTIO_ERR_TIMEOUT : r;
  struct vblk_req* req = cookie;
  req->used_len = len;
  req->done = true;
  *out = req;
  return 1;
}

int vblk_do(struct vblk* b, unsigned q, uint32_t type, uint64_t sector, const struct vblk_seg* segs,
            unsigned nsegs, bool indirect, uint32_t* used_len) {
  if (q >= b->nqueues) return VIRTIO_ERR_INVAL;
  struct vblk_req* req = &b->sync_req[q];
  int err = vblk_submit(b, q, req, type, sector, segs, nsegs, indirect);
  if (err < 0) return err;
  vblk_kick(b, q);
  // Only this request is outstanding on the queue (synchronous use), so the first completion
  // must be it; anything else is a device bug.
  struct vblk_req* done = NULL;
  err = vblk_reap(b, q, &done);
  if (err < 0) return err;
  if (done != req) return VIRTIO_ERR_BAD_USED;
  if (used_len != NULL) *used_len = req->used_len;
  // Read the status byte through a volatile access: the device wrote it behind the compiler's
  // back (the acquire load in virtq_has_used already orders it after the used index).
  return *(volatile uint8_t*)&req->status;
}

int vblk_io(struct vblk* b, unsigned q, uint32_t type, uint64_t sector, void* buf, uint32_t len) {
  const struct vblk_seg seg = {buf, len};
  return vblk_do(b, q, type, sector, &seg, len != 0 ? 1 : 0, false, NULL);
}

const char* vblk_status_str(int r) {
  static char buf[24];
  if (r < 0) return virtio_strerror(r);
  switch (r) {
    case VIRTIO_BLK_S_OK:
      return "OK";
    case VIRTIO_BLK_S_IOERR:
      return "IOERR";
    case VIRTIO_BLK_S_UNSUPP:
      return "UNSUPP";
    case 0xff:
      return "status not written (0xff)";
    default:
      rt_snprintf(buf, sizeof(buf), "status 0x%x", (unsigned)r);
      return buf;
  }
}
