// Polling virtio-mmio (version 2) transport and split virtqueues. See include/virtio_mmio.h.
#include "virtio_mmio.h"

#include "rt.h"

// ---- Queue memory pool ---------------------------------------------------------------------

// One queue's memory. §2.7 alignment rules for split virtqueues: descriptor table 16 bytes,
// avail ring 2 bytes, used ring 4 bytes; the used ring gets its own page anyway so that the
// device's writes never share a cache line with the driver's. Indirect tables need 16 bytes.
struct virtq_mem {
  struct virtq_desc desc[VIRTQ_MAX_SIZE];  // 2 KiB at offset 0
  struct virtq_avail avail;                // 262 B right after
  struct virtq_used used __attribute__((aligned(4096)));
  struct virtq_desc indirect[VIRTQ_MAX_SIZE][VIRTQ_INDIRECT_MAX] __attribute__((aligned(4096)));
} __attribute__((aligned(4096)));

static struct virtq_mem g_vq_mem[VIRTQ_POOL_SLOTS];
static struct virtq g_vq[VIRTQ_POOL_SLOTS];

static void pool_release(const struct virtio_mmio_dev* dev) {
  for (unsigned i = 0; i < VIRTQ_POOL_SLOTS; i++) {
    if (g_vq[i].dev == dev) g_vq[i].dev = NULL;
  }
}

// ---- Errors --------------------------------------------------------------------------------

const char* virtio_strerror(int err) {
  switch (err) {
    case VIRTIO_OK:
      return "ok";
    case VIRTIO_ERR_TIMEOUT:
      return "timeout";
    case VIRTIO_ERR_NEEDS_RESET:
      return "device needs reset";
    case VIRTIO_ERR_NO_DESC:
      return "no free descriptors";
    case VIRTIO_ERR_BAD_USED:
      return "bad used ring entry";
    case VIRTIO_ERR_NO_DEVICE:
      return "no device";
    case VIRTIO_ERR_LEGACY:
      return "not a version 2 (modern) virtio-mmio device";
    case VIRTIO_ERR_FEATURES:
      return "feature negotiation failed";
    case VIRTIO_ERR_QUEUE:
      return "queue unavailable";
    case VIRTIO_ERR_NO_MEM:
      return "queue pool exhausted";
    case VIRTIO_ERR_INVAL:
      return "invalid argument";
    case VIRTIO_ERR_RESET_STUCK:
      return "reset did not complete";
    default:
      return "unknown error";
  }
}

// ---- Discovery -----------------------------------------------------------------------------

bool virtio_mmio_parse_token(const char* v, size_t len, struct virtio_mmio_token* out) {
  uint64_t size, base, irq;
  size_t p = rt_parse_u64_prefix(v, len, &size);
  if (p == 0 || p >= len || v[p] != '@') return false;
  p++;
  const size_t q = rt_parse_u64_prefix(v + p, len - p, &base);
  if (q == 0 || p + q >= len || v[p + q] != ':') return false;
  p += q + 1;
  const size_t r = rt_parse_u64_prefix(v + p, len - p, &irq);
  if (r == 0) return false;
  p += r;
  if (p < len) {  // optional ":<platform device id>" (Linux syntax); ignored
    uint64_t id;
    if (v[p] != ':' || !rt_parse_u64(v + p + 1, len - p - 1, &id)) return false;
  }
  if (size == 0 || irq > UINT32_MAX) return false;
  out->base = base;
  out->size = size;
  out->irq = (uint32_t)irq;
  return true;
}

struct discover_ctx {
  struct virtio_mmio_token* out;
  int max;
  int n;
};

static void discover_one(const char* val, size_t len, void* p) {
  struct discover_ctx* ctx = p;
  struct virtio_mmio_token t;
  if (!virtio_mmio_parse_token(val, len, &t)) {
    rt_printf("virtio: ignoring malformed virtio_mmio.device=%.*s\n", (int)len, val);
    return;
  }
  if (ctx->n >= ctx->max) {
    rt_printf("virtio: ignoring virtio_mmio.device=%.*s (more than %d devices)\n", (int)len, val,
              ctx->max);
    return;
  }
  ctx->out[ctx->n++] = t;
}

int virtio_mmio_discover(struct virtio_mmio_token* out, int max) {
  // Where the platform describes its devices (the arm64 device tree), that is the source.
  struct rt_device devs[VIRTIO_MMIO_MAX_DEVICES];
  const int found = rt_find_devices("virtio,mmio", devs, VIRTIO_MMIO_MAX_DEVICES);
  if (found >= 0) {
    int n = 0;
    for (int i = 0; i < found && i < VIRTIO_MMIO_MAX_DEVICES; i++) {
      if (n >= max) {
        rt_printf("virtio: ignoring virtio,mmio node at 0x%lx (more than %d devices)\n",
                  devs[i].base, max);
        continue;
      }
      out[n++] = (struct virtio_mmio_token){devs[i].base, devs[i].size, devs[i].irq};
    }
    if (found > VIRTIO_MMIO_MAX_DEVICES) {
      rt_printf("virtio: ignoring %d virtio,mmio nodes past the first %d\n",
                found - VIRTIO_MMIO_MAX_DEVICES, VIRTIO_MMIO_MAX_DEVICES);
    }
    return n;
  }
  struct discover_ctx ctx = {out, max, 0};
  rt_cmdline_each("virtio_mmio.device", discover_one, &ctx);
  return ctx.n;
}

// ---- Registers -----------------------------------------------------------------------------

uint32_t virtio_read32(const struct virtio_mmio_dev* dev, uint32_t off) {
  return rt_mmio_read32(dev->base + off);
}

void virtio_write32(const struct virtio_mmio_dev* dev, uint32_t off, uint32_t v) {
  rt_mmio_write32(dev->base + off, v);
}

int virtio_mmio_probe(struct virtio_mmio_dev* dev, const struct virtio_mmio_token* tok) {
  memset(dev, 0, sizeof(*dev));
  // The runtime identity-maps only the low 4 GiB (the MMIO hole at 3-4 GiB uncached).
  if (tok->base >= 0x100000000ull || tok->size < 0x100 || tok->base + tok->size > 0x100000000ull) {
    return VIRTIO_ERR_NO_DEVICE;
  }
  dev->base = (uintptr_t)tok->base;
  dev->size = tok->size;
  dev->irq = tok->irq;
  if (virtio_read32(dev, VIRTIO_MMIO_MAGIC_VALUE) != VIRTIO_MMIO_MAGIC) return VIRTIO_ERR_NO_DEVICE;
  dev->version = virtio_read32(dev, VIRTIO_MMIO_VERSION);
  dev->device_id = virtio_read32(dev, VIRTIO_MMIO_DEVICE_ID);
  dev->vendor_id = virtio_read32(dev, VIRTIO_MMIO_VENDOR_ID);
  // §4.2.3.1.1: a driver MUST NOT use a device whose Version is not 2 (legacy is §4.2.4), and
  // DeviceID 0 is a placeholder transport with no device behind it.
  if (dev->device_id == 0) return VIRTIO_ERR_NO_DEVICE;
  if (dev->version != 2) return VIRTIO_ERR_LEGACY;
  return VIRTIO_OK;
}

bool virtio_mmio_find(uint32_t device_id, struct virtio_mmio_dev* out, const char* who) {
  struct virtio_mmio_token tokens[VIRTIO_MMIO_MAX_DEVICES];
  const int ntok = virtio_mmio_discover(tokens, VIRTIO_MMIO_MAX_DEVICES);
  for (int i = 0; i < ntok; i++) {
    const int err = virtio_mmio_probe(out, &tokens[i]);
    if (out->device_id != device_id) continue;
    if (err == VIRTIO_OK) return true;
    if (err == VIRTIO_ERR_LEGACY) {
      rt_printf("%s: virtio-mmio 0x%lx: version %u, not 2 (modern)\n", who, tokens[i].base,
                out->version);
    }
  }
  rt_printf("%s: FAIL - no (modern) device of type %u among %d virtio_mmio.device tokens\n", who,
            device_id, ntok);
  return false;
}

uint32_t virtio_dev_status(const struct virtio_mmio_dev* dev) {
  return virtio_read32(dev, VIRTIO_MMIO_STATUS);
}

bool virtio_dev_needs_reset(const struct virtio_mmio_dev* dev) {
  return (virtio_dev_status(dev) & VIRTIO_CONFIG_S_NEEDS_RESET) != 0;
}

static void add_status(struct virtio_mmio_dev* dev, uint32_t bits) {
  virtio_write32(dev, VIRTIO_MMIO_STATUS, virtio_dev_status(dev) | bits);
}

void virtio_dev_fail(struct virtio_mmio_dev* dev) { add_status(dev, VIRTIO_CONFIG_S_FAILED); }

int virtio_dev_reset(struct virtio_mmio_dev* dev) {
  pool_release(dev);
  virtio_write32(dev, VIRTIO_MMIO_STATUS, 0);
  // §2.4.2: after writing 0 the driver MUST wait for Status to read back 0 before
  // re-initializing. Devices normally reset synchronously; bound the wait anyway.
  const uint64_t t0 = rt_ticks();
  const uint64_t limit = rt_ms_to_ticks(VIRTIO_DEFAULT_TIMEOUT_MS);
  while (virtio_dev_status(dev) != 0) {
    if (rt_ticks() - t0 > limit) return VIRTIO_ERR_RESET_STUCK;
    rt_cpu_relax();
  }
  return VIRTIO_OK;
}

int virtio_dev_negotiate(struct virtio_mmio_dev* dev, uint64_t wanted) {
  // §3.1.1 steps 1-3.
  int err = virtio_dev_reset(dev);
  if (err != VIRTIO_OK) return err;
  add_status(dev, VIRTIO_CONFIG_S_ACKNOWLEDGE);
  add_status(dev, VIRTIO_CONFIG_S_DRIVER);

  // Step 4: read the 64 feature bits (two 32-bit windows), accept a subset.
  virtio_write32(dev, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
  uint64_t offered = virtio_read32(dev, VIRTIO_MMIO_DEVICE_FEATURES);
  virtio_write32(dev, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
  offered |= (uint64_t)virtio_read32(dev, VIRTIO_MMIO_DEVICE_FEATURES) << 32;
  dev->device_features = offered;
  // §6.1: a modern device offers VERSION_1 and the driver MUST accept it; without it the device
  // would be speaking the legacy interface.
  if (!(offered & VIRTIO_FEATURE(VIRTIO_F_VERSION_1))) {
    virtio_dev_fail(dev);
    return VIRTIO_ERR_FEATURES;
  }
  const uint64_t accepted = (offered & wanted) | VIRTIO_FEATURE(VIRTIO_F_VERSION_1);
  virtio_write32(dev, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
  virtio_write32(dev, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)accepted);
  virtio_write32(dev, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
  virtio_write32(dev, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(accepted >> 32));
  dev->features = accepted;

  // Steps 5-6: FEATURES_OK, then re-read: if it did not stick the device rejected the subset.
  add_status(dev, VIRTIO_CONFIG_S_FEATURES_OK);
  if (!(virtio_dev_status(dev) & VIRTIO_CONFIG_S_FEATURES_OK)) {
    virtio_dev_fail(dev);
    return VIRTIO_ERR_FEATURES;
  }
  return VIRTIO_OK;
}

int virtio_dev_driver_ok(struct virtio_mmio_dev* dev) {
  add_status(dev, VIRTIO_CONFIG_S_DRIVER_OK);
  const uint32_t st = virtio_dev_status(dev);
  if (st & VIRTIO_CONFIG_S_NEEDS_RESET) return VIRTIO_ERR_NEEDS_RESET;
  if (!(st & VIRTIO_CONFIG_S_DRIVER_OK)) return VIRTIO_ERR_FEATURES;
  return VIRTIO_OK;
}

uint32_t virtio_dev_ack_interrupt(struct virtio_mmio_dev* dev) {
  const uint32_t isr = virtio_read32(dev, VIRTIO_MMIO_INTERRUPT_STATUS);
  if (isr != 0) virtio_write32(dev, VIRTIO_MMIO_INTERRUPT_ACK, isr);
  dev->isr_seen |= isr;
  return isr;
}

// ---- Config space --------------------------------------------------------------------------

uint32_t virtio_config_generation(const struct virtio_mmio_dev* dev) {
  return virtio_read32(dev, VIRTIO_MMIO_CONFIG_GENERATION);
}

uint8_t virtio_config_read8(const struct virtio_mmio_dev* dev, uint32_t off) {
  return rt_mmio_read8(dev->base + VIRTIO_MMIO_CONFIG + off);
}

uint16_t virtio_config_read16(const struct virtio_mmio_dev* dev, uint32_t off) {
  return rt_mmio_read16(dev->base + VIRTIO_MMIO_CONFIG + off);
}

uint32_t virtio_config_read32(const struct virtio_mmio_dev* dev, uint32_t off) {
  return rt_mmio_read32(dev->base + VIRTIO_MMIO_CONFIG + off);
}

void virtio_config_write32(const struct virtio_mmio_dev* dev, uint32_t off, uint32_t v) {
  rt_mmio_write32(dev->base + VIRTIO_MMIO_CONFIG + off, v);
}

uint64_t virtio_config_read64(const struct virtio_mmio_dev* dev, uint32_t off) {
  // §2.5.1 / §4.2.2.2: a 64-bit field is read as two 32-bit halves; retry if the device
  // changed its config (ConfigGeneration moved) in between. Bounded: a device that keeps
  // changing gets the last value read.
  uint64_t v = 0;
  for (int tries = 0; tries < 16; tries++) {
    const uint32_t gen = virtio_config_generation(dev);
    v = virtio_config_read32(dev, off) | (uint64_t)virtio_config_read32(dev, off + 4) << 32;
    if (virtio_config_generation(dev) == gen) break;
  }
  return v;
}

// ---- Virtqueues ----------------------------------------------------------------------------

int virtq_setup(struct virtio_mmio_dev* dev, uint16_t index, uint16_t max_size,
                struct virtq** out) {
  struct virtq* vq = NULL;
  unsigned slot = 0;
  for (; slot < VIRTQ_POOL_SLOTS; slot++) {
    if (g_vq[slot].dev == NULL) {
      vq = &g_vq[slot];
      break;
    }
  }
  if (vq == NULL) return VIRTIO_ERR_NO_MEM;

  // §4.2.3.2 steps 1-3: select the queue, check it is not in use, read its maximum size.
  virtio_write32(dev, VIRTIO_MMIO_QUEUE_SEL, index);
  if (virtio_read32(dev, VIRTIO_MMIO_QUEUE_READY) != 0) return VIRTIO_ERR_QUEUE;
  const uint32_t num_max = virtio_read32(dev, VIRTIO_MMIO_QUEUE_NUM_MAX);
  if (num_max == 0) return VIRTIO_ERR_QUEUE;
  uint32_t want = num_max;
  if (want > VIRTQ_MAX_SIZE) want = VIRTQ_MAX_SIZE;
  if (max_size != 0 && want > max_size) want = max_size;
  // §2.7: the split virtqueue size is a power of two.
  uint16_t size = 1;
  while ((uint32_t)size * 2 <= want) size = (uint16_t)(size * 2);

  // Step 4: zeroed rings. memset works on 8-byte words, so this is ~3 KiB of stores (the
  // indirect tables are rewritten before each use and need no clearing).
  struct virtq_mem* m = &g_vq_mem[slot];
  memset(m->desc, 0, sizeof(m->desc));
  memset(&m->avail, 0, sizeof(m->avail));
  memset(&m->used, 0, sizeof(m->used));
  memset(vq, 0, sizeof(*vq));
  vq->dev = dev;
  vq->index = index;
  vq->size = size;
  vq->desc = m->desc;
  vq->avail = &m->avail;
  vq->used = &m->used;
  vq->indirect = m->indirect;
  // Free list: every descriptor, linked through `next`.
  for (uint16_t i = 0; i < size; i++) m->desc[i].next = (uint16_t)(i + 1);
  vq->free_head = 0;
  vq->num_free = size;

  // Steps 5-8: size, ring addresses, ready.
  virtio_write32(dev, VIRTIO_MMIO_QUEUE_NUM, size);
  const uint64_t desc = (uintptr_t)m->desc, avail = (uintptr_t)&m->avail;
  const uint64_t used = (uintptr_t)&m->used;
  virtio_write32(dev, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)desc);
  virtio_write32(dev, VIRTIO_MMIO_QUEUE_DESC_HIGH, (uint32_t)(desc >> 32));
  virtio_write32(dev, VIRTIO_MMIO_QUEUE_AVAIL_LOW, (uint32_t)avail);
  virtio_write32(dev, VIRTIO_MMIO_QUEUE_AVAIL_HIGH, (uint32_t)(avail >> 32));
  virtio_write32(dev, VIRTIO_MMIO_QUEUE_USED_LOW, (uint32_t)used);
  virtio_write32(dev, VIRTIO_MMIO_QUEUE_USED_HIGH, (uint32_t)(used >> 32));
  virtio_write32(dev, VIRTIO_MMIO_QUEUE_READY, 1);
  *out = vq;
  return VIRTIO_OK;
}

int virtq_add(struct virtq* vq, const struct virtq_buf* bufs, unsigned n, bool indirect,
              void* cookie) {
  if (n == 0 || n > vq->size) return VIRTIO_ERR_INVAL;
  const bool use_ind = indirect && n > 1 && n <= VIRTQ_INDIRECT_MAX &&
                       virtio_has_feature(vq->dev, VIRTIO_RING_F_INDIRECT_DESC);
  const unsigned needed = use_ind ? 1 : n;
  if (vq->num_free < needed) return VIRTIO_ERR_NO_DESC;

  const uint16_t head = vq->free_head;
  if (use_ind) {
    // §2.7.5.3: the table is a chain of its own, indices relative to the table; the head
    // descriptor carries only INDIRECT (its WRITE flag would be ignored, §2.7.5.3.2).
    struct virtq_desc* t = vq->indirect[head];
    for (unsigned i = 0; i < n; i++) {
      t[i].addr = bufs[i].addr;
      t[i].len = bufs[i].len;
      t[i].flags = (uint16_t)((bufs[i].write ? VRING_DESC_F_WRITE : 0) |
                              (i + 1 < n ? VRING_DESC_F_NEXT : 0));
      t[i].next = (uint16_t)(i + 1 < n ? i + 1 : 0);
    }
    struct virtq_desc* d = &vq->desc[head];
    vq->free_head = d->next;  // unlink before overwriting
    d->addr = (uintptr_t)t;
    d->len = n * (uint32_t)sizeof(struct virtq_desc);
    d->flags = VRING_DESC_F_INDIRECT;
  } else {
    // Take n descriptors off the free list; their `next` links already form the chain.
    uint16_t idx = head;
    for (unsigned i = 0; i < n; i++) {
      struct virtq_desc* d = &vq->desc[idx];
      d->addr = bufs[i].addr;
      d->len = bufs[i].len;
      d->flags = (uint16_t)((bufs[i].write ? VRING_DESC_F_WRITE : 0) |
                            (i + 1 < n ? VRING_DESC_F_NEXT : 0));
      idx = d->next;
    }
    vq->free_head = idx;
  }
  vq->num_free = (uint16_t)(vq->num_free - needed);
  vq->chain_len[head] = (uint16_t)needed;
  vq->cookie[head] = cookie;
  virtq_publish(vq, head);
  return head;
}

void virtq_publish(struct virtq* vq, uint16_t head) {
  // §2.7.13.2-3: write the ring entry, then (after a write barrier) the new index.
  vq->avail->ring[vq->avail_idx & (vq->size - 1)] = head;
  vq->avail_idx++;
  __atomic_store_n(&vq->avail->idx, vq->avail_idx, __ATOMIC_RELEASE);
}

void virtq_kick(struct virtq* vq) {
  // §2.7.13.4: the index update must be visible before the notification.
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
  virtio_write32(vq->dev, VIRTIO_MMIO_QUEUE_NOTIFY, vq->index);
}

bool virtq_has_used(const struct virtq* vq) {
  return __atomic_load_n(&vq->used->idx, __ATOMIC_ACQUIRE) != vq->last_used;
}

int virtq_pop_used_raw(struct virtq* vq, struct virtq_used_elem* out) {
  if (!virtq_has_used(vq)) return 0;
  // The acquire load of used->idx orders the element read after it (§2.7.14).
  *out = vq->used->ring[vq->last_used & (vq->size - 1)];
  vq->last_used++;
  return 1;
}

int virtq_get_used(struct virtq* vq, void** cookie, uint32_t* len) {
  struct virtq_used_elem e;
  if (!virtq_pop_used_raw(vq, &e)) return 0;
  if (e.id >= vq->size || vq->chain_len[e.id] == 0) return VIRTIO_ERR_BAD_USED;
  const uint16_t head = (uint16_t)e.id;
  // Return the chain to the free list. Only our own descriptor table is walked (the device
  // never writes it), for exactly the number of descriptors we linked.
  uint16_t last = head;
  for (uint16_t i = 1; i < vq->chain_len[head]; i++) last = vq->desc[last].next;
  vq->desc[last].next = vq->free_head;
  vq->free_head = head;
  vq->num_free = (uint16_t)(vq->num_free + vq->chain_len[head]);
  vq->chain_len[head] = 0;
  if (cookie != NULL) *cookie = vq->cookie[head];
  if (len != NULL) *len = e.len;
  return 1;
}

// How often a waiting driver looks at Status for DEVICE_NEEDS_RESET. Each look is an MMIO exit
// (~15 us on a software-virtualized host), so not on every spin.
#define STATUS_POLL_MS 2
// Hard cap on spins, in case the tick counter does not advance.
#define MAX_SPINS (1ull << 32)

int virtq_wait(struct virtq* vq, uint64_t timeout_ticks) {
  const uint64_t t0 = rt_ticks();
  const uint64_t status_every = rt_ms_to_ticks(STATUS_POLL_MS);
  uint64_t next_status = t0 + status_every;
  for (uint64_t spins = 0;; spins++) {
    if (virtq_has_used(vq)) {
      virtio_dev_ack_interrupt(vq->dev);
      return VIRTIO_OK;
    }
    const uint64_t now = rt_ticks();
    const bool expired = now - t0 > timeout_ticks || spins > MAX_SPINS;
    if (expired || (int64_t)(now - next_status) >= 0) {
      // §2.1.2: a device that hit an error it cannot recover from sets DEVICE_NEEDS_RESET
      // (and typically raises a config-change interrupt) instead of completing requests.
      if (virtio_dev_needs_reset(vq->dev)) return VIRTIO_ERR_NEEDS_RESET;
      next_status = now + status_every;
    }
    if (expired) {
      if (!virtq_has_used(vq)) return VIRTIO_ERR_TIMEOUT;
      virtio_dev_ack_interrupt(vq->dev);
      return VIRTIO_OK;
    }
    rt_cpu_relax();
  }
}
