// virtio-blk data-integrity payload. For every virtio-blk device on the command line
// (virtio_mmio.device=...): prints the config, then checks writes/flush/read-back of patterned
// data (first and last sector, a spread in between, multi-sector and multi-segment requests,
// direct and indirect chains), WRITE_ZEROES, DISCARD, GET_ID, out-of-range reads and every
// queue when MQ is offered. One line per check; finally "blk_integrity: N passed, M failed";
// returns 0 iff nothing failed.
//
// Command line (all optional):
//   seed=<n>                 pattern seed (default: from the TSC)
//   expect_serial=<s>        the k-th such token must equal the k-th blk device's GET_ID serial
//   expect_ro[=<i>]          device i (bare: every device) must offer RO, reject writes with
//                            IOERR and still serve reads
//   expect_ioerr_write[=<i>] device i (bare: every device) sits on a full backing store:
//                            writes must fail with IOERR and reads must still work afterwards
//   persist=<seed>           only write the pattern to sectors 0..7 of the first blk device,
//                            FLUSH, print "persist: flushed" and spin forever (the host kills
//                            the VMM and inspects the disk image)
//   swap                     backing-file replacement (PATCH /drives): on the first blk device,
//                            print word 0 of sector 0 and the capacity, wait (up to 60 s) for the
//                            config generation to change, print them again, then write
//                            0x5157a99ed at word 0 of sector 1, FLUSH and return 0
//
// Pattern: the little-endian 64-bit word w (0..63) of 512-byte sector s holds
//   (seed << 32) ^ (s << 8) ^ w      (mod 2^64)
// Written fully; checked sparsely (3 words per sector): the guest may run at only a few
// million instructions per second on a software-virtualized host.
#include "rt.h"
#include "virtio_blk.h"

#define SECTOR VIRTIO_BLK_SECTOR_SIZE
#define WORDS_PER_SECTOR (SECTOR / 8)
#define BUF_BYTES (64u * 1024u)
#define BUF_SECTORS (BUF_BYTES / SECTOR)

static uint8_t g_wbuf[BUF_BYTES] __attribute__((aligned(4096)));
static uint8_t g_rbuf[BUF_BYTES] __attribute__((aligned(4096)));
static uint8_t g_id[VIRTIO_BLK_ID_BYTES + 4] __attribute__((aligned(64)));
static struct virtio_blk_discard_write_zeroes g_range __attribute__((aligned(64)));
static struct vblk g_blk;
static struct vblk_req g_mq_req[VBLK_MAX_QUEUES];
static struct virtio_mmio_token g_tokens[VIRTIO_MMIO_MAX_DEVICES];

static uint64_t g_seed;
static unsigned g_dev_index;  // index among blk devices, for names and per-device flags
static uint64_t g_unit;       // sectors per logical block (blk_size / 512, at least 1)
static uint64_t g_cap;        // capacity in sectors
static uint64_t g_cap_u;      // capacity rounded down to a whole number of units

// ---- Helpers -------------------------------------------------------------------------------

// Check names: "blk<i>: <text>". rt_check_report prints the name right away, so one buffer is
// enough.
static const char* nm(const char* fmt, ...) RT_PRINTF(1, 2);
static const char* nm(const char* fmt, ...) {
  static char buf[128];
  const int n = rt_snprintf(buf, sizeof(buf), "blk%u: ", g_dev_index);
  va_list ap;
  va_start(ap, fmt);
  rt_vsnprintf(buf + n, sizeof(buf) - (size_t)n, fmt, ap);
  va_end(ap);
  return buf;
}

static inline uint64_t pattern(uint64_t seed, uint64_t sector, unsigned w) {
  return (seed << 32) ^ (sector << 8) ^ w;
}

static void fill(void* buf, uint64_t sector, uint64_t nsect, uint64_t seed) {
  uint64_t* p = buf;
  for (uint64_t s = 0; s < nsect; s++) {
    const uint64_t base = (seed << 32) ^ ((sector + s) << 8);
    for (unsigned w = 0; w < WORDS_PER_SECTOR; w++) *p++ = base ^ w;
  }
}

// The words checked in each sector: first, last and one that moves with the sector number.
static inline unsigned probe_word(uint64_t sector, unsigned k) {
  return k == 0 ? 0 : k == 1 ? WORDS_PER_SECTOR - 1 : (unsigned)((sector * 5 + 1) & 63);
}
#define PROBES 3

static inline uint64_t expected(bool zero, uint64_t sector, unsigned w) {
  return zero ? 0 : pattern(g_seed, sector, w);
}

// Sets the probed words to something other than what the device should return.
static void poison(void* buf, uint64_t sector, uint64_t nsect, bool zero) {
  uint64_t* p = buf;
  for (uint64_t s = 0; s < nsect; s++) {
    for (unsigned k = 0; k < PROBES; k++) {
      const unsigned w = probe_word(sector + s, k);
      p[s * WORDS_PER_SECTOR + w] = ~expected(zero, sector + s, w);
    }
  }
}

struct mismatch {
  uint64_t sector;
  unsigned word;
  uint64_t got, want;
};

static bool verify(const void* buf, uint64_t sector, uint64_t nsect, bool zero,
                   struct mismatch* bad) {
  const uint64_t* p = buf;
  for (uint64_t s = 0; s < nsect; s++) {
    for (unsigned k = 0; k < PROBES; k++) {
      const unsigned w = probe_word(sector + s, k);
      const uint64_t got = p[s * WORDS_PER_SECTOR + w], want = expected(zero, sector + s, w);
      if (got != want) {
        *bad = (struct mismatch){sector + s, w, got, want};
        return false;
      }
    }
  }
  return true;
}

// Splits buf[0 .. nsect sectors) into about `nsegs` segments of whole units (sizes differ by at
// most one unit), honouring size_max / seg_max when negotiated. Returns the segment count, or
// 0 if the device's limits cannot be met.
static unsigned make_segs(struct vblk* b, uint8_t* buf, uint64_t nsect, unsigned nsegs,
                          struct vblk_seg* segs, unsigned max_segs) {
  const uint64_t units = nsect / g_unit;
  const uint64_t unit_bytes = g_unit * SECTOR;
  if (nsegs > units) nsegs = (unsigned)units;
  if (nsegs == 0) return 0;
  const uint32_t size_max = b->cfg.size_max;
  while (size_max != 0 && (units + nsegs - 1) / nsegs * unit_bytes > size_max && nsegs < units) {
    nsegs++;
  }
  if (size_max != 0 && (units + nsegs - 1) / nsegs * unit_bytes > size_max) return 0;
  if (b->cfg.seg_max != 0 && nsegs > b->cfg.seg_max) return 0;
  if (nsegs > max_segs) return 0;
  uint64_t off = 0;
  for (unsigned i = 0; i < nsegs; i++) {
    const uint64_t u = units / nsegs + (i < units % nsegs ? 1 : 0);
    segs[i].buf = buf + off;
    segs[i].len = (uint32_t)(u * unit_bytes);
    off += u * unit_bytes;
  }
  return nsegs;
}

static uint64_t round_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

// A sector at about num/den of the disk where n sectors fit, aligned to `align` sectors.
static uint64_t place(uint64_t num, uint64_t den, uint64_t n, uint64_t align) {
  uint64_t s = g_cap_u / den * num;
  if (s + n > g_cap_u) s = g_cap_u - n;
  return s / align * align;
}

// True for a bare `key` token or `key=<g_dev_index>`.
struct flag_ctx {
  bool hit;
};
static void flag_cb(const char* v, size_t len, void* p) {
  struct flag_ctx* ctx = p;
  uint64_t i;
  if (len == 0 || (rt_parse_u64(v, len, &i) && i == g_dev_index)) ctx->hit = true;
}
static bool flag_applies(const char* key) {
  struct flag_ctx ctx = {false};
  rt_cmdline_each(key, flag_cb, &ctx);
  return ctx.hit;
}

// The value of the k-th `key=` token.
struct nth_ctx {
  unsigned want, seen;
  char* out;
  size_t outlen;
  bool found;
};
static void nth_cb(const char* v, size_t len, void* p) {
  struct nth_ctx* ctx = p;
  if (ctx->seen++ != ctx->want) return;
  if (len > ctx->outlen - 1) len = ctx->outlen - 1;
  memcpy(ctx->out, v, len);
  ctx->out[len] = '\0';
  ctx->found = true;
}
static bool nth_value(const char* key, unsigned k, char* out, size_t outlen) {
  struct nth_ctx ctx = {k, 0, out, outlen, false};
  rt_cmdline_each(key, nth_cb, &ctx);
  return ctx.found;
}

// ---- Config --------------------------------------------------------------------------------

static void print_features(const char* what, uint64_t f) {
  static const struct {
    unsigned bit;
    const char* name;
  } kNames[] = {
      {VIRTIO_BLK_F_SIZE_MAX, "SIZE_MAX"},
      {VIRTIO_BLK_F_SEG_MAX, "SEG_MAX"},
      {VIRTIO_BLK_F_RO, "RO"},
      {VIRTIO_BLK_F_BLK_SIZE, "BLK_SIZE"},
      {VIRTIO_BLK_F_FLUSH, "FLUSH"},
      {VIRTIO_BLK_F_MQ, "MQ"},
      {VIRTIO_BLK_F_DISCARD, "DISCARD"},
      {VIRTIO_BLK_F_WRITE_ZEROES, "WRITE_ZEROES"},
      {VIRTIO_RING_F_INDIRECT_DESC, "INDIRECT_DESC"},
      {VIRTIO_RING_F_EVENT_IDX, "EVENT_IDX"},
      {VIRTIO_F_VERSION_1, "VERSION_1"},
  };
  rt_printf("blk%u: %s 0x%lx:", g_dev_index, what, f);
  for (size_t i = 0; i < RT_ARRAY_SIZE(kNames); i++) {
    if (f & VIRTIO_FEATURE(kNames[i].bit)) rt_printf(" %s", kNames[i].name);
  }
  rt_printf("\n");
}

static void print_config(const struct vblk* b) {
  const struct virtio_blk_cfg* c = &b->cfg;
  rt_printf("blk%u: virtio-mmio base=0x%lx size=0x%lx irq=%u version=%u vendor=0x%x\n", g_dev_index,
            (uint64_t)b->dev.base, b->dev.size, b->dev.irq, b->dev.version, b->dev.vendor_id);
  print_features("device features", b->dev.device_features);
  print_features("negotiated", b->dev.features);
  rt_printf(
      "blk%u: capacity=%lu sectors (%lu MiB) size_max=%u seg_max=%u blk_size=%u "
      "num_queues=%u queue_size=%u\n",
      g_dev_index, c->capacity, c->capacity >> 11, c->size_max, c->seg_max, c->blk_size,
      c->num_queues, b->vq[0]->size);
  if (vblk_has(b, VIRTIO_BLK_F_DISCARD)) {
    rt_printf("blk%u: max_discard_sectors=%u max_discard_seg=%u discard_sector_alignment=%u\n",
              g_dev_index, c->max_discard_sectors, c->max_discard_seg, c->discard_sector_alignment);
  }
  if (vblk_has(b, VIRTIO_BLK_F_WRITE_ZEROES)) {
    rt_printf(
        "blk%u: max_write_zeroes_sectors=%u max_write_zeroes_seg=%u "
        "write_zeroes_may_unmap=%u\n",
        g_dev_index, c->max_write_zeroes_sectors, c->max_write_zeroes_seg,
        c->write_zeroes_may_unmap);
  }
}

// ---- Read/write checks ---------------------------------------------------------------------

struct extent {
  const char* what;
  uint64_t sector;
  uint64_t nsect;
  unsigned nsegs;
};

// Writes e with the pattern (indirect chain if asked and possible). Returns true on success.
static bool write_extent(struct vblk* b, const struct extent* e, bool indirect, bool check_len) {
  struct vblk_seg segs[VIRTQ_MAX_SIZE];
  const unsigned n = make_segs(b, g_wbuf, e->nsect, e->nsegs, segs, VIRTQ_MAX_SIZE - 2);
  if (n == 0) {
    rt_check_skip(nm("write %s", e->what), "device limits (size_max/seg_max) rule it out");
    return false;
  }
  fill(g_wbuf, e->sector, e->nsect, g_seed);
  uint32_t len = 0;
  const int r = vblk_do(b, 0, VIRTIO_BLK_T_OUT, e->sector, segs, n, indirect, &len);
  const bool ok = RT_CHECKF(r == VIRTIO_BLK_S_OK,
                            nm("write %s: sector %lu, %lu sectors, %u segs%s", e->what, e->sector,
                               e->nsect, n, indirect ? ", indirect" : ""),
                            "%s", vblk_status_str(r));
  // §2.7.8: len is the number of bytes written into the chain's device-writable buffers: for
  // OUT that is just the status byte.
  if (ok && check_len) {
    RT_CHECKF(len == 1, nm("used len of a write is 1 (status byte)"), "len=%u", len);
  }
  return ok;
}

static void read_extent(struct vblk* b, const struct extent* e, bool indirect, bool zero,
                        bool check_len) {
  struct vblk_seg segs[VIRTQ_MAX_SIZE];
  const unsigned n = make_segs(b, g_rbuf, e->nsect, e->nsegs, segs, VIRTQ_MAX_SIZE - 2);
  if (n == 0) return;  // already reported as skipped by write_extent
  poison(g_rbuf, e->sector, e->nsect, zero);
  uint32_t len = 0;
  const int r = vblk_do(b, 0, VIRTIO_BLK_T_IN, e->sector, segs, n, indirect, &len);
  const char* name =
      nm("read back %s%s: sector %lu, %lu sectors, %u segs%s", e->what, zero ? " as zeros" : "",
         e->sector, e->nsect, n, indirect ? ", indirect" : "");
  if (r != VIRTIO_BLK_S_OK) {
    RT_CHECKF(false, name, "%s", vblk_status_str(r));
    return;
  }
  struct mismatch bad = {0, 0, 0, 0};
  RT_CHECKF(verify(g_rbuf, e->sector, e->nsect, zero, &bad), name,
            "sector %lu word %u: got 0x%016lx want 0x%016lx", bad.sector, bad.word, bad.got,
            bad.want);
  if (check_len) {
    const uint32_t want = (uint32_t)(e->nsect * SECTOR + 1);
    RT_CHECKF(len == want, nm("used len of a read is data + status (%u)", want), "len=%u", len);
  }
}

static void test_flush(struct vblk* b) {
  if (!vblk_has(b, VIRTIO_BLK_F_FLUSH)) {
    rt_check_skip(nm("flush"), "VIRTIO_BLK_F_FLUSH not offered");
    return;
  }
  const int r = vblk_io(b, 0, VIRTIO_BLK_T_FLUSH, 0, NULL, 0);
  RT_CHECKF(r == VIRTIO_BLK_S_OK, nm("flush"), "%s", vblk_status_str(r));
}

static void test_patterns(struct vblk* b) {
  const uint64_t u = g_unit;
  const bool ind = vblk_has(b, VIRTIO_RING_F_INDIRECT_DESC);
  unsigned many = 6;  // data segments of the "many segments" request
  if (b->cfg.seg_max != 0 && many > b->cfg.seg_max) many = b->cfg.seg_max;
  struct extent ext[] = {
      {"first sector", 0, u, 1},
      {"last sector", g_cap_u - u, u, 1},
      {"sector at 1/3", 0, u, 1},
      {"4 KiB at sector 8", 8 * u, round_up(8, u), 1},
      {"12 KiB at 1/2", 0, round_up(24, u), 3},
      {"9 KiB at 2/3", 0, round_up(18, u), 4},
      {"last 8 KiB", 0, round_up(16, u), 2},
      {"32 KiB at 3/4", 0, round_up(64, u), 1},
      {"many segments at 7/8", 0, round_up(6, u), many},
  };
  ext[2].sector = place(1, 3, ext[2].nsect, u);
  ext[4].sector = place(1, 2, ext[4].nsect, u);
  ext[5].sector = place(2, 3, ext[5].nsect, u);
  ext[6].sector = g_cap_u - ext[6].nsect;
  ext[7].sector = place(3, 4, ext[7].nsect, u);
  ext[8].sector = place(7, 8, ext[8].nsect, u);

  bool written[RT_ARRAY_SIZE(ext)];
  for (size_t i = 0; i < RT_ARRAY_SIZE(ext); i++) {
    written[i] = false;
    if (ext[i].nsect > g_cap_u || ext[i].sector + ext[i].nsect > g_cap_u ||
        ext[i].nsect > BUF_SECTORS) {
      rt_check_skip(nm("write %s", ext[i].what), "disk too small");
      continue;
    }
    // Alternate direct and indirect chains (when offered); read back the other way.
    written[i] = write_extent(b, &ext[i], ind && (i & 1), i == 0);
  }
  test_flush(b);
  for (size_t i = 0; i < RT_ARRAY_SIZE(ext); i++) {
    if (written[i]) read_extent(b, &ext[i], ind && !(i & 1), false, i == 0);
  }
}

static void test_write_zeroes(struct vblk* b) {
  if (!vblk_has(b, VIRTIO_BLK_F_WRITE_ZEROES)) {
    rt_check_skip(nm("write zeroes"), "VIRTIO_BLK_F_WRITE_ZEROES not offered");
    return;
  }
  uint64_t n = round_up(16, g_unit);
  const uint64_t max = b->cfg.max_write_zeroes_sectors;
  if (max != 0 && n > max) n = max / g_unit * g_unit;
  if (n > g_cap_u) n = g_cap_u;
  if (n == 0) {
    rt_check_skip(nm("write zeroes"), "max_write_zeroes_sectors=%lu", max);
    return;
  }
  const struct extent e = {"write-zeroes range", place(1, 4, n, g_unit), n, 1};
  if (!write_extent(b, &e, false, false)) return;  // non-zero data first
  g_range = (struct virtio_blk_discard_write_zeroes){e.sector, (uint32_t)n, 0};
  const int r = vblk_io(b, 0, VIRTIO_BLK_T_WRITE_ZEROES, 0, &g_range, sizeof(g_range));
  if (!RT_CHECKF(r == VIRTIO_BLK_S_OK, nm("write zeroes: sector %lu, %lu sectors", e.sector, n),
                 "%s", vblk_status_str(r))) {
    return;
  }
  read_extent(b, &e, false, true, false);
}

static void test_discard(struct vblk* b) {
  if (!vblk_has(b, VIRTIO_BLK_F_DISCARD)) {
    rt_check_skip(nm("discard"), "VIRTIO_BLK_F_DISCARD not offered");
    return;
  }
  uint64_t align = b->cfg.discard_sector_alignment;
  if (align < g_unit) align = g_unit;
  uint64_t n = round_up(16, align);
  const uint64_t max = b->cfg.max_discard_sectors;
  if (max != 0 && n > max) n = max / align * align;
  if (n > g_cap_u) n = g_cap_u / align * align;
  if (n == 0) {
    rt_check_skip(nm("discard"), "max_discard_sectors=%lu alignment=%lu", max, align);
    return;
  }
  const uint64_t s = place(3, 8, n, align);
  // §5.2.6: flags must be 0 for DISCARD (the unmap flag is only for WRITE_ZEROES).
  g_range = (struct virtio_blk_discard_write_zeroes){s, (uint32_t)n, 0};
  const int r = vblk_io(b, 0, VIRTIO_BLK_T_DISCARD, 0, &g_range, sizeof(g_range));
  RT_CHECKF(r == VIRTIO_BLK_S_OK, nm("discard: sector %lu, %lu sectors", s, n), "%s",
            vblk_status_str(r));
}

static void test_get_id(struct vblk* b) {
  memset(g_id, 0, sizeof(g_id));
  const int r = vblk_io(b, 0, VIRTIO_BLK_T_GET_ID, 0, g_id, VIRTIO_BLK_ID_BYTES);
  char serial[VIRTIO_BLK_ID_BYTES + 1];
  size_t len = 0;
  // §5.2.6: the ID is at most 20 bytes, NUL-padded (not terminated if exactly 20 long).
  while (len < VIRTIO_BLK_ID_BYTES && g_id[len] != 0) {
    const char c = (char)g_id[len];
    serial[len++] = c >= 0x20 && c < 0x7f ? c : '.';
  }
  serial[len] = '\0';
  if (!RT_CHECKF(r == VIRTIO_BLK_S_OK, nm("get id"), "%s", vblk_status_str(r))) return;
  rt_printf("blk%u: serial \"%s\"\n", g_dev_index, serial);
  char want[64];
  if (nth_value("expect_serial", g_dev_index, want, sizeof(want))) {
    RT_CHECKF(strcmp(serial, want) == 0, nm("serial is \"%s\"", want), "got \"%s\"", serial);
  }
}

static void test_out_of_range(struct vblk* b) {
  // §5.2.6.1: a request beyond the end of the device fails with IOERR. Both a request that
  // starts at capacity and one that starts inside but runs past the end.
  int r = vblk_io(b, 0, VIRTIO_BLK_T_IN, g_cap, g_rbuf, (uint32_t)(g_unit * SECTOR));
  RT_CHECKF(r == VIRTIO_BLK_S_IOERR, nm("read at sector %lu (= capacity) fails with IOERR", g_cap),
            "%s", vblk_status_str(r));
  if (g_cap_u >= g_unit) {
    r = vblk_io(b, 0, VIRTIO_BLK_T_IN, g_cap_u - g_unit, g_rbuf, (uint32_t)(2 * g_unit * SECTOR));
    RT_CHECKF(r == VIRTIO_BLK_S_IOERR,
              nm("read of sectors %lu..%lu (past the end) fails with IOERR", g_cap_u - g_unit,
                 g_cap_u + g_unit - 1),
              "%s", vblk_status_str(r));
  }
}

static void test_readonly(struct vblk* b) {
  const uint32_t bytes = (uint32_t)(g_unit * SECTOR);
  memset(g_rbuf, 0x5a, bytes);
  int r = vblk_io(b, 0, VIRTIO_BLK_T_IN, 0, g_rbuf, bytes);
  RT_CHECKF(r == VIRTIO_BLK_S_OK, nm("read-only: read sector 0"), "%s", vblk_status_str(r));
  fill(g_wbuf, 0, g_unit, g_seed);
  r = vblk_io(b, 0, VIRTIO_BLK_T_OUT, 0, g_wbuf, bytes);
  RT_CHECKF(r == VIRTIO_BLK_S_IOERR, nm("read-only: write to sector 0 fails with IOERR"), "%s",
            vblk_status_str(r));
  uint8_t* again = g_rbuf + BUF_BYTES / 2;
  memset(again, 0xa5, bytes);
  r = vblk_io(b, 0, VIRTIO_BLK_T_IN, 0, again, bytes);
  RT_CHECKF(r == VIRTIO_BLK_S_OK, nm("read-only: reads still work after the rejected write"), "%s",
            vblk_status_str(r));
  if (r == VIRTIO_BLK_S_OK) {
    const uint64_t* x = (const uint64_t*)(const void*)g_rbuf;
    const uint64_t* y = (const uint64_t*)(const void*)again;
    size_t i = 0;
    while (i < bytes / 8 && x[i] == y[i]) i++;
    RT_CHECKF(i == bytes / 8, nm("read-only: sector 0 unchanged by the rejected write"),
              "word %zu: 0x%016lx then 0x%016lx", i, x[i], y[i]);
  }
}

static void test_ioerr_write(struct vblk* b) {
  const uint64_t n = round_up(8, g_unit);
  if (n > g_cap_u) return;
  const uint64_t s = place(1, 2, n, g_unit);
  fill(g_wbuf, s, n, g_seed);
  int r = vblk_io(b, 0, VIRTIO_BLK_T_OUT, s, g_wbuf, (uint32_t)(n * SECTOR));
  RT_CHECKF(r == VIRTIO_BLK_S_IOERR,
            nm("write to sector %lu fails with IOERR (backing store full)", s), "%s",
            vblk_status_str(r));
  r = vblk_io(b, 0, VIRTIO_BLK_T_IN, 0, g_rbuf, (uint32_t)(g_unit * SECTOR));
  RT_CHECKF(r == VIRTIO_BLK_S_OK, nm("reads still work after the failed write"), "%s",
            vblk_status_str(r));
}

// ---- Multiqueue ----------------------------------------------------------------------------

// Writes (rw) and reads back 4 KiB through every set-up queue: all submissions of a round
// first, then all completions, so the queues are busy at the same time.
static void mq_batch(struct vblk* b, bool rw, uint64_t base) {
  const uint64_t n = round_up(8, g_unit);
  const uint32_t bytes = (uint32_t)(n * SECTOR);
  const unsigned nq = b->nqueues;
  int res[VBLK_MAX_QUEUES];
  uint64_t sec[VBLK_MAX_QUEUES];
  const uint64_t slots = g_cap_u / n;
  if (slots == 0) {
    rt_check_skip(nm("multiqueue"), "disk too small");
    return;
  }
  for (unsigned i = 0; i < nq; i++) {
    sec[i] = (base / n + b->first_queue + i) % slots * n;
    res[i] = VIRTIO_BLK_S_OK;
  }
  // Rounds of as many queues as the buffers hold (all of them unless blocks are > 4 KiB).
  unsigned per_round = BUF_BYTES / bytes;
  if (per_round == 0) per_round = 1;
  for (unsigned r0 = 0; r0 < nq; r0 += per_round) {
    const unsigned r1 = r0 + per_round < nq ? r0 + per_round : nq;
    for (int phase = rw ? 0 : 1; phase < 2; phase++) {
      const uint32_t type = phase == 0 ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN;
      bool submitted[VBLK_MAX_QUEUES];
      for (unsigned i = r0; i < r1; i++) {
        submitted[i] = false;
        if (res[i] != VIRTIO_BLK_S_OK) continue;
        uint8_t* buf = (phase == 0 ? g_wbuf : g_rbuf) + (size_t)(i - r0) * bytes;
        if (phase == 0) fill(buf, sec[i], n, g_seed);
        if (phase == 1 && rw) poison(buf, sec[i], n, false);
        const struct vblk_seg seg = {buf, bytes};
        const int h = vblk_submit(b, i, &g_mq_req[i], type, sec[i], &seg, 1, false);
        if (h < 0) {
          res[i] = h;
          continue;
        }
        vblk_kick(b, i);
        submitted[i] = true;
      }
      for (unsigned i = r0; i < r1; i++) {
        if (!submitted[i]) continue;
        struct vblk_req* done = NULL;
        const int err = vblk_reap(b, i, &done);
        if (err < 0) {
          res[i] = err;
        } else if (done != &g_mq_req[i]) {
          res[i] = VIRTIO_ERR_BAD_USED;
        } else {
          res[i] = *(volatile uint8_t*)&done->status;
        }
      }
    }
    for (unsigned i = r0; i < r1; i++) {
      const unsigned q = b->first_queue + i;
      const char* name = rw ? nm("queue %u: write + read 4 KiB at sector %lu", q, sec[i])
                            : nm("queue %u: read 4 KiB at sector %lu", q, sec[i]);
      if (res[i] != VIRTIO_BLK_S_OK) {
        RT_CHECKF(false, name, "%s", vblk_status_str(res[i]));
        continue;
      }
      struct mismatch bad = {0, 0, 0, 0};
      RT_CHECKF(!rw || verify(g_rbuf + (size_t)(i - r0) * bytes, sec[i], n, false, &bad), name,
                "sector %lu word %u: got 0x%016lx want 0x%016lx", bad.sector, bad.word, bad.got,
                bad.want);
    }
  }
}

static void test_multiqueue(struct vblk* b, const struct virtio_mmio_dev* probed, bool rw) {
  const unsigned total = b->cfg.num_queues;
  if (!vblk_has(b, VIRTIO_BLK_F_MQ) || total <= 1) {
    rt_check_skip(
        nm("multiqueue"), "%s",
        vblk_has(b, VIRTIO_BLK_F_MQ) ? "device has a single queue" : "VIRTIO_BLK_F_MQ not offered");
    return;
  }
  const uint64_t base = place(5, 8, 0, 1);
  rt_printf("blk%u: exercising %u queues\n", g_dev_index, total);
  // §5.2.5: queues 0..num_queues-1. VBLK_MAX_QUEUES at a time: for more, initialize the device
  // again with the next range of queues.
  for (unsigned first = 0; first < total; first += VBLK_MAX_QUEUES) {
    if (first > 0) {
      vblk_reset(b);
      const struct vblk_opts o = {0, (uint16_t)first, VBLK_MAX_QUEUES, 0};
      const int err = vblk_init(b, probed, &o);
      if (!RT_CHECKF(err == VIRTIO_OK, nm("re-initialize with queues %u..", first), "%s",
                     virtio_strerror(err))) {
        return;
      }
    }
    mq_batch(b, rw, base);
  }
}

// ---- Per device ----------------------------------------------------------------------------

static void test_device(const struct virtio_mmio_dev* probed) {
  struct vblk* b = &g_blk;
  const struct vblk_opts opts = {0, 0, VBLK_MAX_QUEUES, 0};
  int err = vblk_init(b, probed, &opts);
  if (!RT_CHECKF(err == VIRTIO_OK, nm("initialize (features, queues, DRIVER_OK)"), "%s",
                 virtio_strerror(err))) {
    vblk_reset(b);
    return;
  }
  print_config(b);
  g_cap = b->cfg.capacity;
  g_unit = 1;
  const uint32_t bs = b->cfg.blk_size;
  if (bs >= SECTOR && bs <= 65536 && (bs & (bs - 1)) == 0) g_unit = bs / SECTOR;
  g_cap_u = g_cap / g_unit * g_unit;
  if (!RT_CHECKF(g_cap_u >= g_unit, nm("capacity is at least one block"), "capacity=%lu", g_cap)) {
    vblk_reset(b);
    return;
  }

  const bool ro = vblk_has(b, VIRTIO_BLK_F_RO);
  const bool expect_ro = flag_applies("expect_ro");
  const bool expect_ioerr = flag_applies("expect_ioerr_write");
  if (expect_ro || ro) {
    RT_CHECKF(ro == expect_ro, nm("VIRTIO_BLK_F_RO %s", expect_ro ? "offered" : "not offered"),
              "device %s RO%s", ro ? "offers" : "does not offer",
              ro ? " (pass expect_ro if that is intended)" : "");
    test_readonly(b);
  } else if (expect_ioerr) {
    test_ioerr_write(b);
  } else {
    test_patterns(b);
    test_write_zeroes(b);
    test_discard(b);
  }
  test_get_id(b);
  test_out_of_range(b);

  // The device signals used buffers through InterruptStatus bit 0 (§4.2.2), which every
  // completion above read and acknowledged.
  RT_CHECKF(b->dev.isr_seen & VIRTIO_MMIO_INT_VRING,
            nm("InterruptStatus reported used-buffer notifications"), "isr_seen=0x%x",
            b->dev.isr_seen);
  const uint32_t st = virtio_dev_status(&b->dev);
  RT_CHECKF((st & (VIRTIO_CONFIG_S_NEEDS_RESET | VIRTIO_CONFIG_S_FAILED)) == 0 &&
                (st & VIRTIO_CONFIG_S_DRIVER_OK),
            nm("device status healthy"), "status=0x%x", st);

  test_multiqueue(b, probed, !(expect_ro || ro) && !expect_ioerr);
  vblk_reset(b);
}

// ---- swap ------------------------------------------------------------------------------------

static int swap_watch(const struct virtio_mmio_dev* probed) {
  struct vblk* b = &g_blk;
  int r = vblk_init(b, probed, NULL);
  if (r != VIRTIO_OK) {
    rt_printf("swap: FAIL - init: %s\n", virtio_strerror(r));
    return 1;
  }
  const uint64_t* w = (const uint64_t*)(void*)g_rbuf;
  r = vblk_io(b, 0, VIRTIO_BLK_T_IN, 0, g_rbuf, SECTOR);
  const uint32_t gen = virtio_config_generation(&b->dev);
  rt_printf("swap: before word=%lx capacity=%lu status=%s\n", w[0],
            virtio_config_read64(&b->dev, 0), vblk_status_str(r));
  const uint64_t deadline = rt_ticks() + rt_ms_to_ticks(60000);
  while (virtio_config_generation(&b->dev) == gen) {
    if (rt_ticks() > deadline) {
      rt_printf("swap: FAIL - the config generation never changed\n");
      return 1;
    }
    rt_cpu_relax();
  }
  const uint32_t isr = virtio_dev_ack_interrupt(&b->dev);
  r = vblk_io(b, 0, VIRTIO_BLK_T_IN, 0, g_rbuf, SECTOR);
  rt_printf("swap: after word=%lx capacity=%lu status=%s config_change=%u\n", w[0],
            virtio_config_read64(&b->dev, 0), vblk_status_str(r), (isr >> 1) & 1);
  uint64_t* out = (uint64_t*)(void*)g_wbuf;
  out[0] = 0x5157a99edull;
  r = vblk_io(b, 0, VIRTIO_BLK_T_OUT, 1, g_wbuf, SECTOR);
  if (r == VIRTIO_BLK_S_OK) r = vblk_io(b, 0, VIRTIO_BLK_T_FLUSH, 0, NULL, 0);
  rt_printf("swap: wrote sector 1: %s\n", vblk_status_str(r));
  return r == VIRTIO_BLK_S_OK ? 0 : 1;
}

// ---- persist=<seed> ------------------------------------------------------------------------

static int persist(const struct virtio_mmio_dev* probed, uint64_t seed) {
  struct vblk* b = &g_blk;
  const int err = vblk_init(b, probed, NULL);
  if (err != VIRTIO_OK) {
    rt_printf("persist: FAIL - init: %s\n", virtio_strerror(err));
    return 1;
  }
  fill(g_wbuf, 0, 8, seed);
  int r = vblk_io(b, 0, VIRTIO_BLK_T_OUT, 0, g_wbuf, 8 * SECTOR);
  if (r != VIRTIO_BLK_S_OK) {
    rt_printf("persist: FAIL - write sectors 0..7: %s\n", vblk_status_str(r));
    return 1;
  }
  if (vblk_has(b, VIRTIO_BLK_F_FLUSH)) {
    r = vblk_io(b, 0, VIRTIO_BLK_T_FLUSH, 0, NULL, 0);
    if (r != VIRTIO_BLK_S_OK) {
      rt_printf("persist: FAIL - flush: %s\n", vblk_status_str(r));
      return 1;
    }
  } else {
    rt_printf("persist: note: VIRTIO_BLK_F_FLUSH not offered (write-through device)\n");
  }
  rt_printf("persist: flushed\n");
  // Spin, not hlt: a halted vCPU with interrupts off is a clean stop for edgevisor.
  for (;;) rt_cpu_relax();
}

int payload_main(const char* cmdline) {
  rt_printf("edgevisor blk_integrity payload\n");
  rt_printf("cmdline: %s\n", cmdline);
  const int ntok = virtio_mmio_discover(g_tokens, VIRTIO_MMIO_MAX_DEVICES);

  uint64_t persist_seed = 0;
  const bool persist_mode = rt_cmdline_get_u64("persist", &persist_seed);
  if (!rt_cmdline_get_u64("seed", &g_seed)) g_seed = (rt_ticks() >> 4) & 0xffffffffull;
  if (!persist_mode) {
    rt_printf("blk_integrity: seed=0x%lx tsc_hz=%lu, %d virtio-mmio device(s)\n", g_seed,
              rt_ticks_hz(), ntok);
  }

  unsigned nblk = 0;
  for (int i = 0; i < ntok; i++) {
    struct virtio_mmio_dev dev;
    const int err = virtio_mmio_probe(&dev, &g_tokens[i]);
    if (err == VIRTIO_ERR_LEGACY && dev.device_id == VIRTIO_ID_BLOCK) {
      g_dev_index = nblk++;
      RT_CHECKF(false, nm("virtio-mmio version 2 at 0x%lx", g_tokens[i].base), "version=%u",
                dev.version);
      continue;
    }
    if (err != VIRTIO_OK) {
      rt_printf("virtio-mmio 0x%lx: %s\n", g_tokens[i].base, virtio_strerror(err));
      continue;
    }
    if (dev.device_id != VIRTIO_ID_BLOCK) {
      rt_printf("virtio-mmio 0x%lx: device id %u, not a block device\n", g_tokens[i].base,
                dev.device_id);
      continue;
    }
    g_dev_index = nblk++;
    if (persist_mode) return persist(&dev, persist_seed);
    if (rt_cmdline_get("swap", NULL, 0)) return swap_watch(&dev);
    test_device(&dev);
  }
  if (persist_mode) {
    rt_printf("persist: FAIL - no virtio-blk device\n");
    return 1;
  }
  RT_CHECKF(nblk > 0, "found a virtio-blk device", "%d virtio_mmio.device tokens, no block device",
            ntok);
  return rt_check_summary("blk_integrity");
}
