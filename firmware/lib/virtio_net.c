// Polling virtio-net driver. See include/virtio_net.h.
//
// The RX and TX queues run in the transport's "raw" mode: every descriptor is bound for the
// life of the device to one RX buffer or TX slot, so posting a buffer or sending a packet is a
// single avail-ring entry (virtq_publish) and completions are matched by head index. The
// transport's free-descriptor list is used only by the control queue (virtq_add).
#include "virtio_net.h"

#include "inet.h"
#include "rt.h"
#if defined(__aarch64__)
#include "rt_aarch64.h"
#else
#include "rt_x86_64.h"
#endif

// Buffer states (rxq->state / txq->state), to reject used entries that name buffers the
// device does not own (a device bug the driver must survive, and which tests should see).
enum {
  RX_IDLE = 0,    // not set up
  RX_POSTED = 1,  // on the avail ring (device-owned)
  RX_HELD = 2,    // delivered by vnet_rx, not yet released
  RX_LENT = 3,    // being transmitted by vnet_tx_reply
};
enum {
  TX_FREE = 0,
  TX_ALLOC = 1,     // handed out by vnet_tx_alloc
  TX_INFLIGHT = 2,  // on the avail ring (device-owned), sending the slot's own buffer
  TX_LENT = 3,      // on the avail ring, sending from an RX buffer (vnet_tx_reply, zero copy)
};

// Lowest address of the buffer region: above the largest payload image (link.ld asserts
// __image_end <= 4 MiB). The region stays below 3 GiB: the runtime maps the top GiB uncached.
#define REGION_MIN (4ull << 20)
#define REGION_LIMIT (3ull << 30)
#define REGION_ALIGN (1ull << 20)

// Bytes of buffer memory one pair can use: RX buffers, TX slots, one reassembly buffer.
#define PAIR_BYTES ((2ull * VIRTQ_MAX_SIZE + 1) * VNET_BUF_SIZE)

#define CTRL_TIMEOUT_MS 2000

// ---- Options -------------------------------------------------------------------------------

void vnet_opts_from_cmdline(struct vnet_opts* o) {
  memset(o, 0, sizeof(*o));
  o->mq = rt_cmdline_get("mq", NULL, 0);
  o->csum = rt_cmdline_get("csum", NULL, 0);
  o->no_mrg = rt_cmdline_get("nomrg", NULL, 0);
  o->split = rt_cmdline_get("split", NULL, 0);
  uint64_t v;
  if (rt_cmdline_get_u64("rxbuf", &v) && v <= VNET_BUF_SIZE) o->rx_buf_len = (uint16_t)v;
  if (rt_cmdline_get_u64("qsize", &v) && v <= VIRTQ_MAX_SIZE) o->queue_size = (uint16_t)v;
}

const char* vnet_strerror(int err) {
  if (err == VNET_ERR_CTRL) return "control command failed";
  return virtio_strerror(err);
}

// ---- Buffer memory -------------------------------------------------------------------------

static uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) & ~(a - 1); }

#if defined(__aarch64__)
// End of the device tree if it overlaps [a, a + len), or 0. The VMM puts it in RAM (the last
// 2 MiB) and the runtime keeps reading it. Its header's totalsize is big-endian.
static uint64_t boot_info_overlap(uint64_t a, uint64_t len) {
  const void* fdt = rt_fdt();
  if (fdt == NULL) return 0;
  const uint64_t start = (uintptr_t)fdt;
  const uint64_t size = __builtin_bswap32(((const volatile uint32_t*)fdt)[1]);
  return a < start + size && start < a + len ? start + size : 0;
}
#else
// End of the first boot-info structure overlapping [a, a + len), or 0 if none does. The
// runtime keeps copies of the command line and memory map, but the originals (and any modules)
// are left intact.
static uint64_t boot_info_overlap(uint64_t a, uint64_t len) {
  const struct hvm_start_info* si = rt_start_info();
  if (si == NULL || !rt_boot_ok()) return 0;
  uint64_t ranges[4][2] = {
      {(uintptr_t)si, sizeof(*si)},
      {si->cmdline_paddr, si->cmdline_paddr != 0 ? strlen(rt_cmdline()) + 1 : 0},
      {si->memmap_paddr, (uint64_t)si->memmap_entries * sizeof(struct hvm_memmap_table_entry)},
      {si->modlist_paddr, (uint64_t)si->nr_modules * sizeof(struct hvm_modlist_entry)},
  };
  for (unsigned i = 0; i < 4; i++) {
    if (ranges[i][1] != 0 && a < ranges[i][0] + ranges[i][1] && ranges[i][0] < a + len) {
      return ranges[i][0] + ranges[i][1];
    }
  }
  // Modules (an initrd, say) are data the VMM loaded: keep clear of them too.
  if (si->modlist_paddr != 0 && si->modlist_paddr < (1ull << 32)) {
    const struct hvm_modlist_entry* m = (const void*)(uintptr_t)si->modlist_paddr;
    for (uint32_t i = 0; i < si->nr_modules && i < 16; i++) {
      if (m[i].size != 0 && a < m[i].paddr + m[i].size && m[i].paddr < a + len) {
        return m[i].paddr + m[i].size;
      }
    }
  }
  return 0;
}
#endif

// First 1 MiB-aligned range of `len` bytes at or above REGION_MIN and the image, inside one RAM
// entry of the PVH memory map and clear of the boot info. Walks the map entries rather than
// probing candidate addresses: cheap on a slow guest.
static uint64_t find_region(uint64_t len) {
  uint32_t count = 0;
  const struct hvm_memmap_table_entry* map = rt_memmap(&count);
  uintptr_t img_start, img_end;
  rt_image_range(&img_start, &img_end);
  const uint64_t floor = img_end > REGION_MIN ? img_end : REGION_MIN;
  for (uint32_t i = 0; i < count; i++) {
    if (map[i].type != HVM_MEMMAP_TYPE_RAM) continue;
    const uint64_t end = map[i].addr + map[i].size;
    uint64_t cand = align_up(map[i].addr > floor ? map[i].addr : floor, REGION_ALIGN);
    for (int tries = 0; tries < 8; tries++) {
      if (cand + len > end || cand + len > REGION_LIMIT) break;
      const uint64_t bump = boot_info_overlap(cand, len);
      if (bump == 0) return cand;
      cand = align_up(bump, REGION_ALIGN);
    }
  }
  return 0;
}

// ---- Negotiation and setup -----------------------------------------------------------------

static uint64_t wanted_features(const struct vnet_opts* o) {
  // §5.1.5: a minimal driver needs only MAC; STATUS and MTU are informational and MRG_RXBUF
  // only changes how the device fills our buffers. No GSO/TSO/UFO (§5.1.6.3: then 1526-byte
  // buffers suffice), no EVENT_IDX, no indirect descriptors.
  uint64_t f = VIRTIO_FEATURE(VIRTIO_F_VERSION_1) | VIRTIO_FEATURE(VIRTIO_NET_F_MAC) |
               VIRTIO_FEATURE(VIRTIO_NET_F_STATUS) | VIRTIO_FEATURE(VIRTIO_NET_F_MTU);
  if (!o->no_mrg) f |= VIRTIO_FEATURE(VIRTIO_NET_F_MRG_RXBUF);
  if (o->csum) f |= VIRTIO_FEATURE(VIRTIO_NET_F_CSUM) | VIRTIO_FEATURE(VIRTIO_NET_F_GUEST_CSUM);
  if (o->mq) f |= VIRTIO_FEATURE(VIRTIO_NET_F_CTRL_VQ) | VIRTIO_FEATURE(VIRTIO_NET_F_MQ);
  return f;
}

// Features the negotiated set must drop: returns the corrected set (== f if nothing to fix).
static uint64_t fix_features(const struct virtio_mmio_dev* dev, uint64_t f) {
  // §5.1.3.1: MQ requires CTRL_VQ; CTRL_VQ alone is of no use to us.
  if ((f & VIRTIO_FEATURE(VIRTIO_NET_F_MQ)) && !(f & VIRTIO_FEATURE(VIRTIO_NET_F_CTRL_VQ))) {
    f &= ~VIRTIO_FEATURE(VIRTIO_NET_F_MQ);
  }
  if ((f & VIRTIO_FEATURE(VIRTIO_NET_F_CTRL_VQ)) && !(f & VIRTIO_FEATURE(VIRTIO_NET_F_MQ))) {
    f &= ~VIRTIO_FEATURE(VIRTIO_NET_F_CTRL_VQ);
  }
  // §5.1.6.3.1: with MTU negotiated and no MRG_RXBUF, each buffer must hold a packet of mtu
  // bytes plus the Ethernet and virtio headers. Ours are 2048 bytes: a larger MTU is declined
  // (the device then sends at most 1514-byte frames).
  if ((f & VIRTIO_FEATURE(VIRTIO_NET_F_MTU)) && !(f & VIRTIO_FEATURE(VIRTIO_NET_F_MRG_RXBUF))) {
    const uint16_t mtu = virtio_config_read16(dev, VIRTIO_NET_CFG(mtu));
    if ((uint32_t)mtu + ETH_HLEN + VNET_HDR_LEN > VNET_BUF_SIZE) {
      f &= ~VIRTIO_FEATURE(VIRTIO_NET_F_MTU);
    }
  }
  return f;
}

static void read_config(struct vnet* n) {
  const struct virtio_mmio_dev* d = &n->dev;
  // §5.1.4: each field is valid only with its feature. The mac is six byte-wide fields
  // (§4.2.2.2: accesses as wide as the field), so the reads run inside a ConfigGeneration loop
  // (§2.5.1) to get a consistent snapshot; bounded, like virtio_config_read64.
  for (int tries = 0; tries < 16; tries++) {
    const uint32_t gen = virtio_config_generation(d);
    if (vnet_has(n, VIRTIO_NET_F_MAC)) {
      for (unsigned i = 0; i < 6; i++) {
        n->mac[i] = virtio_config_read8(d, VIRTIO_NET_CFG(mac) + i);
      }
    }
    n->status = vnet_has(n, VIRTIO_NET_F_STATUS)
                    ? virtio_config_read16(d, VIRTIO_NET_CFG(status))
                    : VIRTIO_NET_S_LINK_UP;  // §5.1.5: without STATUS assume the link is up
    n->max_pairs = vnet_has(n, VIRTIO_NET_F_MQ)
                       ? virtio_config_read16(d, VIRTIO_NET_CFG(max_virtqueue_pairs))
                       : 1;
    n->mtu = vnet_has(n, VIRTIO_NET_F_MTU) ? virtio_config_read16(d, VIRTIO_NET_CFG(mtu)) : 1500;
    if (virtio_config_generation(d) == gen) break;
  }
  n->mac_from_device = vnet_has(n, VIRTIO_NET_F_MAC);
  if (!n->mac_from_device) {
    // §5.1.5: "otherwise, the driver typically generates a random local MAC address".
    const uint64_t t = rt_ticks() * 0x9e3779b97f4a7c15ull;
    n->mac[0] = 0x02;  // locally administered, unicast
    for (unsigned i = 1; i < 6; i++) n->mac[i] = (uint8_t)(t >> (8 * i));
  }
}

static void rx_post(struct vnet_rxq* r, uint16_t b, bool split) {
  r->state[b] = RX_POSTED;
  virtq_publish(r->vq, (uint16_t)(split ? 2 * b : b));
  r->pending++;
}

static int setup_pair(struct vnet* n, unsigned k, uint8_t* mem, uint16_t qsize) {
  struct vnet_rxq* r = &n->rx[k];
  struct vnet_txq* t = &n->tx[k];
  int err = virtq_setup(&n->dev, (uint16_t)(2 * k), qsize, &r->vq);
  if (err != VIRTIO_OK) return err;
  err = virtq_setup(&n->dev, (uint16_t)(2 * k + 1), qsize, &t->vq);
  if (err != VIRTIO_OK) return err;
  if (n->split && (r->vq->size < 2 || t->vq->size < 2)) return VIRTIO_ERR_QUEUE;
  // §2.7.7: we poll, so ask the device not to interrupt (it may anyway).
  r->vq->avail->flags = VRING_AVAIL_F_NO_INTERRUPT;
  t->vq->avail->flags = VRING_AVAIL_F_NO_INTERRUPT;

  r->nbufs = (uint16_t)(n->split ? r->vq->size / 2 : r->vq->size);
  t->nslots = (uint16_t)(n->split ? t->vq->size / 2 : t->vq->size);
  // §5.1.6.3.1: the posted buffers together must hold an MTU-sized packet, or a device that
  // waits for room (QEMU does) stalls the queue for good. Small queues get full-size buffers.
  if ((uint32_t)r->nbufs * n->rx_buf_len < VNET_HDR_LEN + ETH_HLEN + (uint32_t)n->mtu) {
    if (k != 0) return VIRTIO_ERR_INVAL;  // rx_buf_len is already in use by pair 0
    n->rx_buf_len = VNET_BUF_SIZE;
  }
  r->mem = mem;
  t->mem = mem + (size_t)VIRTQ_MAX_SIZE * VNET_BUF_SIZE;
  r->reasm = mem + (size_t)2 * VIRTQ_MAX_SIZE * VNET_BUF_SIZE;
  r->reasm_busy = false;
  r->pending = 0;
  t->pending = 0;
  t->inflight = 0;

  // RX descriptors are written once: always device-writable, always the same buffer.
  for (uint16_t b = 0; b < r->nbufs; b++) {
    const uint64_t a = (uintptr_t)(r->mem + (size_t)b * VNET_BUF_SIZE);
    struct virtq_desc* d = r->vq->desc;
    if (n->split) {
      d[2 * b] = (struct virtq_desc){a, VNET_HDR_LEN, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT,
                                     (uint16_t)(2 * b + 1)};
      d[2 * b + 1] = (struct virtq_desc){a + VNET_HDR_LEN, n->rx_buf_len - VNET_HDR_LEN,
                                         VRING_DESC_F_WRITE, 0};
    } else {
      d[b] = (struct virtq_desc){a, n->rx_buf_len, VRING_DESC_F_WRITE, 0};
    }
    rx_post(r, b, n->split);
  }
  // TX descriptors: addresses and lengths are written per packet; the links are fixed.
  t->nfree = 0;
  for (uint16_t s = 0; s < t->nslots; s++) {
    struct virtq_desc* d = t->vq->desc;
    if (n->split) {
      d[2 * s] = (struct virtq_desc){0, 0, VRING_DESC_F_NEXT, (uint16_t)(2 * s + 1)};
      d[2 * s + 1] = (struct virtq_desc){0, 0, 0, 0};
    } else {
      d[s] = (struct virtq_desc){0, 0, 0, 0};
    }
    t->state[s] = TX_FREE;
    t->lent[s] = -1;
  }
  // Free stack with slot 0 on top.
  for (uint16_t s = t->nslots; s > 0; s--) t->free[t->nfree++] = (uint16_t)(s - 1);
  return VIRTIO_OK;
}

// Writes QueueNotify for vq if buffers were made available since the last call and the device
// has not suppressed notifications (§2.7.10: VRING_USED_F_NO_NOTIFY, no EVENT_IDX).
static void notify(struct vnet* n, struct virtq* vq, uint16_t* pending, uint64_t* counter,
                   bool force) {
  if (*pending == 0 && !force) return;
  *pending = 0;
  // §2.7.13.4: the avail->idx store must be visible to the device before we read the flag
  // (and before the notification).
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
  if (!force &&
      (__atomic_load_n(&vq->used->flags, __ATOMIC_RELAXED) & VRING_USED_F_NO_NOTIFY) != 0) {
    n->st.notify_skipped++;
    return;
  }
  virtio_write32(vq->dev, VIRTIO_MMIO_QUEUE_NOTIFY, vq->index);
  (*counter)++;
}

// §5.1.6.5.5: VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET. Chain [class, command][le16 pairs][ack], the
// first two device-readable, the ack device-writable (§5.1.6.5).
static struct {
  uint8_t cls;
  uint8_t cmd;
} g_ctrl_hdr;
static uint16_t g_ctrl_pairs;
static uint8_t g_ctrl_ack;

static int ctrl_mq_pairs_set(struct vnet* n, uint16_t pairs) {
  g_ctrl_hdr.cls = VIRTIO_NET_CTRL_MQ;
  g_ctrl_hdr.cmd = VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET;
  g_ctrl_pairs = pairs;
  g_ctrl_ack = 0xff;
  const struct virtq_buf bufs[3] = {
      {(uintptr_t)&g_ctrl_hdr, sizeof(g_ctrl_hdr), false},
      {(uintptr_t)&g_ctrl_pairs, sizeof(g_ctrl_pairs), false},
      {(uintptr_t)&g_ctrl_ack, sizeof(g_ctrl_ack), true},
  };
  int err = virtq_add(n->ctrl, bufs, 3, false, &g_ctrl_ack);
  if (err < 0) return err;
  virtq_kick(n->ctrl);
  err = virtq_wait(n->ctrl, rt_ms_to_ticks(CTRL_TIMEOUT_MS));
  if (err != VIRTIO_OK) return err;
  void* cookie = NULL;
  uint32_t len = 0;
  const int r = virtq_get_used(n->ctrl, &cookie, &len);
  if (r < 0) return r;
  if (r == 0 || cookie != &g_ctrl_ack) return VIRTIO_ERR_BAD_USED;
  const uint8_t ack = *(volatile uint8_t*)&g_ctrl_ack;
  if (ack != VIRTIO_NET_OK) {
    rt_printf("virtio-net: VQ_PAIRS_SET %u: ack %u (used len %u)\n", pairs, ack, len);
    return VNET_ERR_CTRL;
  }
  return VIRTIO_OK;
}

int vnet_init(struct vnet* n, const struct virtio_mmio_dev* probed, const struct vnet_opts* o) {
  memset(n, 0, sizeof(*n));
  n->dev = *probed;
  if (n->dev.device_id != VIRTIO_ID_NET) return VIRTIO_ERR_NO_DEVICE;
  const struct vnet_opts none = {false, false, false, false, 0, 0};
  if (o == NULL) o = &none;

  // §3.1.1 steps 1-6. If the accepted set breaks a dependency (or an MTU we cannot buffer
  // for), start over with the corrected set: FEATURES_OK is only written once per attempt.
  uint64_t want = wanted_features(o);
  int err = VIRTIO_OK;
  for (int attempt = 0; attempt < 2; attempt++) {
    err = virtio_dev_negotiate(&n->dev, want);
    if (err != VIRTIO_OK) return err;
    const uint64_t fixed = fix_features(&n->dev, n->dev.features);
    if (fixed == n->dev.features) break;
    want = fixed;
    if (attempt == 1) {
      virtio_dev_fail(&n->dev);
      return VIRTIO_ERR_FEATURES;
    }
  }
  read_config(n);  // step 7 (device-specific setup) starts here

  n->split = o->split;
  // RX buffer size (§5.1.6.3.1): >= 1526 bytes without MRG_RXBUF (and room for an MTU-sized
  // frame if MTU was negotiated); with MRG_RXBUF anything that holds the header.
  uint32_t rxlen = o->rx_buf_len != 0 ? o->rx_buf_len : VNET_BUF_SIZE;
  uint32_t min = VNET_MIN_RX_BUF_MRG;
  if (!vnet_has(n, VIRTIO_NET_F_MRG_RXBUF)) {
    min = VNET_MIN_RX_BUF_NO_MRG;
    if ((uint32_t)n->mtu + ETH_HLEN + VNET_HDR_LEN > min) {
      min = n->mtu + ETH_HLEN + VNET_HDR_LEN;
    }
  }
  if (rxlen < min) rxlen = VNET_BUF_SIZE;
  if (rxlen > VNET_BUF_SIZE) rxlen = VNET_BUF_SIZE;
  n->rx_buf_len = (uint16_t)rxlen;

  // §5.1.5 step 1: N = max_virtqueue_pairs with MQ. We set up (and enable, below) at most
  // VNET_MAX_PAIRS of them, fewer if the buffer memory is not there.
  unsigned pairs = n->max_pairs;
  if (pairs == 0) {
    // §5.1.4: max_virtqueue_pairs is 1..0x8000; 0 would also put the control queue on rx 0.
    rt_printf("virtio-net: max_virtqueue_pairs is 0\n");
    virtio_dev_fail(&n->dev);
    return VIRTIO_ERR_INVAL;
  }
  if (pairs > VNET_MAX_PAIRS) pairs = VNET_MAX_PAIRS;
  uint64_t base = 0;
  for (; pairs > 0; pairs--) {
    base = find_region(pairs * PAIR_BYTES);
    if (base != 0) break;
  }
  if (base == 0) {
    virtio_dev_fail(&n->dev);
    return VIRTIO_ERR_NO_MEM;
  }
  n->mem_base = (uintptr_t)base;
  n->mem_len = pairs * PAIR_BYTES;

  for (unsigned k = 0; k < pairs; k++) {
    err = setup_pair(n, k, (uint8_t*)(uintptr_t)(base + k * PAIR_BYTES), o->queue_size);
    if (err != VIRTIO_OK) {
      virtio_dev_fail(&n->dev);
      return err;
    }
    n->npairs = (uint16_t)(k + 1);
  }
  if (vnet_has(n, VIRTIO_NET_F_CTRL_VQ)) {
    // §5.1.2: controlq is queue 2N, N = max_virtqueue_pairs (not the number of pairs we use).
    n->ctrl_index = (uint16_t)(2 * (vnet_has(n, VIRTIO_NET_F_MQ) ? n->max_pairs : 1));
    err = virtq_setup(&n->dev, n->ctrl_index, 0, &n->ctrl);
    if (err != VIRTIO_OK) {
      virtio_dev_fail(&n->dev);
      return err;
    }
    n->ctrl->avail->flags = VRING_AVAIL_F_NO_INTERRUPT;
  }

  // Step 8. RX buffers are already on the rings (§5.1.5 step 3 "fill the receive queues").
  err = virtio_dev_driver_ok(&n->dev);
  if (err != VIRTIO_OK) {
    virtio_dev_fail(&n->dev);
    return err;
  }
  // §5.1.6.5.5: until VQ_PAIRS_SET only receiveq1/transmitq1 carry traffic; the command needs
  // a live device (after DRIVER_OK).
  if (vnet_has(n, VIRTIO_NET_F_MQ)) {
    err = ctrl_mq_pairs_set(n, n->npairs);
    if (err != VIRTIO_OK) {
      virtio_dev_fail(&n->dev);
      return err;
    }
  }
  // Tell every receive queue about its buffers once, whatever the flags say: a device may
  // only start looking at a queue when notified.
  for (unsigned k = 0; k < n->npairs; k++) {
    notify(n, n->rx[k].vq, &n->rx[k].pending, &n->st.notify_rx, true);
  }
  return VIRTIO_OK;
}

void vnet_reset(struct vnet* n) {
  virtio_dev_reset(&n->dev);
  n->npairs = 0;
  n->ctrl = NULL;
}

int vnet_check_health(struct vnet* n) {
  virtio_dev_ack_interrupt(&n->dev);
  // §2.1.2: DEVICE_NEEDS_RESET means the device stopped processing.
  if (virtio_dev_needs_reset(&n->dev)) return VIRTIO_ERR_NEEDS_RESET;
  return VIRTIO_OK;
}

// ---- Receive -------------------------------------------------------------------------------

// RX buffer a used entry names, or -1 if it names none the device owns.
static int rx_buf_of(const struct vnet* n, const struct vnet_rxq* r, uint32_t id) {
  if (id >= r->vq->size) return -1;
  if (n->split) {
    if (id & 1) return -1;
    id /= 2;
  }
  if (r->state[id] != RX_POSTED) return -1;
  return (int)id;
}

static void count_rx(struct vnet* n, const struct vnet_pkt* p) {
  n->st.rx_packets++;
  if (p->hdr_flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) n->st.rx_csum_partial++;
  if (p->hdr_flags & VIRTIO_NET_HDR_F_DATA_VALID) n->st.rx_csum_valid++;
}

// A packet that spans nb buffers (§5.1.6.4: MRG_RXBUF, num_buffers > 1): the nb used entries
// are consecutive. Copies them into the reassembly buffer and re-posts them all. Returns 1 with
// *p filled, or 0 if the packet was dropped (counted).
static int rx_merge(struct vnet* n, unsigned q, uint16_t nb, struct vnet_pkt* p) {
  struct vnet_rxq* r = &n->rx[q];
  struct virtq* vq = r->vq;
  uint16_t held[VIRTQ_MAX_SIZE];
  unsigned nheld = 0;
  uint32_t total = 0;
  bool bad = false;
  for (uint16_t k = 0; k < nb; k++) {
    const struct virtq_used_elem e = vq->used->ring[(uint16_t)(vq->last_used + k) & (vq->size - 1)];
    const int b = rx_buf_of(n, r, e.id);
    if (b < 0) {
      bad = true;
      continue;
    }
    r->state[b] = RX_HELD;  // so a duplicate id later in this packet is caught
    held[nheld++] = (uint16_t)b;
    if (e.len > n->rx_buf_len || (k == 0 && e.len < VNET_HDR_LEN)) {
      bad = true;
      continue;
    }
    if (total + e.len <= VNET_BUF_SIZE) {
      memcpy(r->reasm + total, r->mem + (size_t)b * VNET_BUF_SIZE, e.len);
    }
    total += e.len;
  }
  vq->last_used = (uint16_t)(vq->last_used + nb);
  for (unsigned i = 0; i < nheld; i++) rx_post(r, held[i], n->split);
  if (bad) {
    n->st.rx_bad++;
    return 0;
  }
  if (total > VNET_BUF_SIZE) {
    n->st.rx_oversize++;
    return 0;
  }
  const struct virtio_net_hdr_v1* h = (const void*)r->reasm;
  p->frame = r->reasm + VNET_HDR_LEN;
  p->len = total - VNET_HDR_LEN;
  p->hdr_flags = h->flags;
  p->csum_start = h->csum_start;
  p->csum_offset = h->csum_offset;
  p->num_buffers = nb;
  p->queue = (uint16_t)q;
  p->buf = 0;
  p->merged = true;
  r->reasm_busy = true;
  n->st.rx_merged++;
  count_rx(n, p);
  return 1;
}

int vnet_rx(struct vnet* n, unsigned q, struct vnet_pkt* p) {
  struct vnet_rxq* r = &n->rx[q];
  struct virtq* vq = r->vq;
  const bool mrg = vnet_has(n, VIRTIO_NET_F_MRG_RXBUF);
  for (;;) {
    // The acquire load orders the ring entry and buffer reads after it (§2.7.14).
    const uint16_t used_idx = __atomic_load_n(&vq->used->idx, __ATOMIC_ACQUIRE);
    const uint16_t ready = (uint16_t)(used_idx - vq->last_used);
    if (ready == 0) return 0;
    const struct virtq_used_elem e = vq->used->ring[vq->last_used & (vq->size - 1)];
    const int b = rx_buf_of(n, r, e.id);
    if (b < 0) {
      vq->last_used++;
      n->st.rx_bad++;
      continue;
    }
    uint8_t* base = r->mem + (size_t)b * VNET_BUF_SIZE;
    if (e.len < VNET_HDR_LEN || e.len > n->rx_buf_len) {
      vq->last_used++;
      n->st.rx_bad++;
      rx_post(r, (uint16_t)b, n->split);
      continue;
    }
    const struct virtio_net_hdr_v1* h = (const void*)base;
    // §5.1.6.4: without MRG_RXBUF the packet is in one buffer (num_buffers reads 1).
    const uint16_t nb = mrg ? h->num_buffers : 1;
    if (nb == 0 || nb > r->nbufs) {
      vq->last_used++;
      n->st.rx_bad++;
      rx_post(r, (uint16_t)b, n->split);
      continue;
    }
    if (nb > 1) {
      // Wait until all of its buffers are on the used ring (a device publishes them with one
      // used->idx update in practice), and for the reassembly buffer to be free.
      if (ready < nb || r->reasm_busy) return 0;
      if (rx_merge(n, q, nb, p)) return 1;
      continue;
    }
    vq->last_used++;
    r->state[b] = RX_HELD;
    p->frame = base + VNET_HDR_LEN;
    p->len = e.len - VNET_HDR_LEN;
    p->hdr_flags = h->flags;
    p->csum_start = h->csum_start;
    p->csum_offset = h->csum_offset;
    p->num_buffers = nb;
    p->queue = (uint16_t)q;
    p->buf = (uint16_t)b;
    p->merged = false;
    count_rx(n, p);
    return 1;
  }
}

void vnet_rx_done(struct vnet* n, const struct vnet_pkt* p) {
  struct vnet_rxq* r = &n->rx[p->queue];
  if (p->merged) {
    r->reasm_busy = false;
  } else if (r->state[p->buf] == RX_HELD) {
    rx_post(r, p->buf, n->split);
  }
}

// ---- Transmit ------------------------------------------------------------------------------

// Puts [hdr | frame] at `base` (header) on the TX ring as slot s (§5.1.6.2).
static void tx_submit(struct vnet* n, unsigned q, uint16_t s, uint8_t* base, uint32_t len,
                      const struct vnet_csum* csum) {
  struct vnet_txq* t = &n->tx[q];
  // §5.1.6.2.1: flags 0 or NEEDS_CSUM (never DATA_VALID), gso_type NONE without HOST_TSO/UFO,
  // num_buffers 0.
  struct virtio_net_hdr_v1* h = (void*)base;
  if (csum != NULL && vnet_has(n, VIRTIO_NET_F_CSUM)) {
    h->flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
    h->csum_start = csum->start;
    h->csum_offset = csum->offset;
  } else {
    h->flags = 0;
    h->csum_start = 0;
    h->csum_offset = 0;
  }
  h->gso_type = VIRTIO_NET_HDR_GSO_NONE;
  h->hdr_len = 0;
  h->gso_size = 0;
  h->num_buffers = 0;
  struct virtq_desc* d = t->vq->desc;
  uint16_t head = s;
  if (n->split) {
    head = (uint16_t)(2 * s);
    d[head].addr = (uintptr_t)base;
    d[head].len = VNET_HDR_LEN;
    d[head + 1].addr = (uintptr_t)base + VNET_HDR_LEN;
    d[head + 1].len = len;
  } else {
    d[head].addr = (uintptr_t)base;
    d[head].len = VNET_HDR_LEN + len;
  }
  t->state[s] = t->lent[s] >= 0 ? TX_LENT : TX_INFLIGHT;
  t->inflight++;
  virtq_publish(t->vq, head);
  t->pending++;
  n->st.tx_packets++;
}

unsigned vnet_tx_reclaim(struct vnet* n, unsigned q) {
  struct vnet_txq* t = &n->tx[q];
  struct virtq* vq = t->vq;
  unsigned done = 0;
  const uint16_t used_idx = __atomic_load_n(&vq->used->idx, __ATOMIC_ACQUIRE);
  while (vq->last_used != used_idx) {
    const uint32_t id = vq->used->ring[vq->last_used & (vq->size - 1)].id;
    vq->last_used++;
    uint32_t s = id;
    if (n->split) s = (id & 1) ? VIRTQ_MAX_SIZE : id / 2;
    if (id >= vq->size || s >= t->nslots ||
        (t->state[s] != TX_INFLIGHT && t->state[s] != TX_LENT)) {
      n->st.tx_bad++;
      continue;
    }
    if (t->lent[s] >= 0) {
      struct vnet_rxq* r = &n->rx[q];
      if (r->state[t->lent[s]] == RX_LENT) rx_post(r, (uint16_t)t->lent[s], n->split);
      t->lent[s] = -1;
    }
    t->state[s] = TX_FREE;
    t->free[t->nfree++] = (uint16_t)s;
    t->inflight--;
    done++;
  }
  n->st.tx_completed += done;
  return done;
}

unsigned vnet_tx_recycle(struct vnet* n, unsigned q) {
  struct vnet_txq* t = &n->tx[q];
  struct virtq* vq = t->vq;
  const uint16_t used_idx = __atomic_load_n(&vq->used->idx, __ATOMIC_ACQUIRE);
  const uint16_t first = vq->last_used;
  if (used_idx == first) return 0;
  // At a few million guest instructions per second every instruction here shows in the packet
  // rate: everything in locals (no reloads through vq), no header or descriptor writes, the used
  // id is the head to republish, one avail->idx store per batch.
  const uint16_t mask = (uint16_t)(vq->size - 1);
  const struct virtq_used_elem* used = vq->used->ring;
  uint16_t* ring = vq->avail->ring;
  const uint8_t* state = t->state;
  const uint32_t nslots = t->nslots;
  const uint32_t shift = n->split ? 1 : 0;  // split: heads are the even descriptors 2s
  uint16_t avail = vq->avail_idx;
  unsigned bad = 0;
  for (uint16_t u = first; u != used_idx; u++) {
    const uint32_t id = used[u & mask].id;
    const uint32_t s = id >> shift;
    // Only slots sent from their own buffer: a zero-copy reply (TX_LENT) must go back to RX.
    if ((id & shift) != 0 || s >= nslots || state[s] != TX_INFLIGHT) {
      bad++;
      continue;
    }
    ring[avail & mask] = (uint16_t)id;
    avail++;
  }
  vq->last_used = used_idx;
  const unsigned resent = (uint16_t)(used_idx - first) - bad;
  n->st.tx_bad += bad;
  if (resent != 0) {
    vq->avail_idx = avail;
    __atomic_store_n(&vq->avail->idx, avail, __ATOMIC_RELEASE);  // §2.7.13.3
    t->pending = (uint16_t)(t->pending + resent);
    n->st.tx_completed += resent;
    n->st.tx_packets += resent;
  }
  return resent;
}

static int take_slot(struct vnet* n, unsigned q) {
  struct vnet_txq* t = &n->tx[q];
  if (t->nfree == 0) vnet_tx_reclaim(n, q);
  if (t->nfree == 0) return -1;
  const uint16_t s = t->free[--t->nfree];
  t->state[s] = TX_ALLOC;
  return s;
}

uint8_t* vnet_tx_alloc(struct vnet* n, unsigned q, uint16_t* slot) {
  const int s = take_slot(n, q);
  if (s < 0) return NULL;
  *slot = (uint16_t)s;
  return vnet_tx_slot_frame(n, q, (uint16_t)s);
}

void vnet_tx_send(struct vnet* n, unsigned q, uint16_t slot, uint32_t len,
                  const struct vnet_csum* csum) {
  struct vnet_txq* t = &n->tx[q];
  if (slot >= t->nslots || t->state[slot] != TX_ALLOC) return;
  if (len > VNET_MAX_FRAME) len = VNET_MAX_FRAME;
  tx_submit(n, q, slot, t->mem + (size_t)slot * VNET_BUF_SIZE, len, csum);
}

int vnet_tx_reply(struct vnet* n, const struct vnet_pkt* p, uint8_t* start, uint32_t len,
                  const struct vnet_csum* csum) {
  const unsigned q = p->queue;
  // The frame area of the packet's buffer: [buffer + 12, buffer + VNET_BUF_SIZE).
  const uint8_t* area_end = p->frame + VNET_MAX_FRAME;
  if (start < p->frame || start > area_end || len > (uint32_t)(area_end - start)) {
    vnet_rx_done(n, p);
    return VIRTIO_ERR_INVAL;
  }
  const int s = take_slot(n, q);
  if (s < 0) {
    n->st.tx_full++;
    vnet_rx_done(n, p);
    return VIRTIO_ERR_NO_DESC;
  }
  struct vnet_txq* t = &n->tx[q];
  if (p->merged) {
    // The reassembly buffer is needed for the next merged packet: copy into the slot.
    uint8_t* base = t->mem + (size_t)s * VNET_BUF_SIZE;
    memcpy(base + VNET_HDR_LEN, start, len);
    n->rx[q].reasm_busy = false;
    tx_submit(n, q, (uint16_t)s, base, len, csum);
  } else {
    // Zero copy: the header goes into the 12 bytes before `start`, which lie inside the RX
    // buffer (they held its virtio header or bytes of the frame that are not sent).
    n->rx[q].state[p->buf] = RX_LENT;
    t->lent[s] = (int16_t)p->buf;
    tx_submit(n, q, (uint16_t)s, start - VNET_HDR_LEN, len, csum);
  }
  return VIRTIO_OK;
}

void vnet_kick(struct vnet* n, unsigned q) {
  notify(n, n->rx[q].vq, &n->rx[q].pending, &n->st.notify_rx, false);
  notify(n, n->tx[q].vq, &n->tx[q].pending, &n->st.notify_tx, false);
}

int vnet_tx_flush(struct vnet* n, uint64_t timeout_ms) {
  const uint64_t t0 = rt_ticks();
  const uint64_t limit = rt_ms_to_ticks(timeout_ms);
  const uint64_t status_every = rt_ms_to_ticks(50);
  uint64_t next_status = t0 + status_every;
  for (;;) {
    bool busy = false;
    for (unsigned q = 0; q < n->npairs; q++) {
      vnet_tx_reclaim(n, q);
      vnet_kick(n, q);
      if (n->tx[q].inflight != 0) busy = true;
    }
    if (!busy) return VIRTIO_OK;
    const uint64_t now = rt_ticks();
    if ((int64_t)(now - next_status) >= 0) {
      if (virtio_dev_needs_reset(&n->dev)) return VIRTIO_ERR_NEEDS_RESET;
      next_status = now + status_every;
    }
    if (now - t0 > limit) return VIRTIO_ERR_TIMEOUT;
    rt_cpu_relax();
  }
}
