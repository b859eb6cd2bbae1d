// virtio-blk micro-benchmark on the first virtio-blk device: 4 KiB random reads, then random
// writes, at queue depth 1 and at queue depth 32 (32 requests kept in flight on queue 0).
//
// For each phase it prints exactly "bench: <phase> start" right before the first request and
// "bench: <phase> done ops=<n> tsc=<delta>" right after the last completion, and nothing in
// between: the host times the phase by the arrival of those two console lines. Phases:
// randread-qd1, randwrite-qd1, randread-qd32, randwrite-qd32. Ends with "blk_bench: done";
// returns 0, or 1 if any request failed.
//
// Command line: ops=<n> requests per phase (default 2000); span=<MiB> region of the disk used
// (default 64, capped at the capacity); seed=<n> PRNG seed; indirect: use indirect descriptors.
// Sectors are 4 KiB aligned (multiples of 8) from an xorshift64 PRNG.
//
// `verify` turns the benchmark into a data-integrity run (used to check that pausing and
// resuming the VM loses or corrupts no I/O): a "fill" phase first writes every block of the span
// sequentially; every write puts a pattern that depends only on the sector into its buffer, and
// every completed read is checked against it. Ends with "verify: checked=<n> mismatches=<m>";
// any mismatch makes the payload return 1.
#include "rt.h"
#include "virtio_blk.h"

#define SECTOR VIRTIO_BLK_SECTOR_SIZE
#define IO_BYTES 4096u
#define IO_SECTORS (IO_BYTES / SECTOR)
#define MAX_QD 32

static struct vblk g_blk;
static uint8_t g_buf[MAX_QD][IO_BYTES] __attribute__((aligned(4096)));
static struct vblk_req g_req[MAX_QD];

static uint64_t g_rng;
static uint64_t g_blocks;  // 4 KiB blocks in the span
static bool g_indirect;
static bool g_verify;
static bool g_sequential;  // the verify fill phase
static uint64_t g_seq_next;
static uint64_t g_sector[MAX_QD];  // the sector each slot's request targets
static uint64_t g_checked, g_mismatches;

// Verify mode checks these words of each 4 KiB block (a full compare would cost the guest more
// than the I/O on a software-virtualized host).
static const unsigned kProbe[] = {0, 1, 63, 64, 255, 256, 448, 511};

static inline uint64_t pattern(uint64_t sector, unsigned word) {
  return 0xb10c000000000000ull ^ (sector << 12) ^ word;
}

static inline uint64_t xorshift64(void) {
  uint64_t x = g_rng;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  g_rng = x;
  return x;
}

static inline uint64_t next_sector(void) { return xorshift64() % g_blocks * IO_SECTORS; }

struct phase_result {
  uint64_t done;
  uint64_t errors;
  int first_error;  // status byte or VIRTIO_ERR_*
};

static inline void note(struct phase_result* r, int st) {
  if (st == VIRTIO_BLK_S_OK) return;
  if (r->errors++ == 0) r->first_error = st;
}

static int submit(unsigned slot, uint32_t type) {
  const struct vblk_seg seg = {g_buf[slot], IO_BYTES};
  const uint64_t sector = g_sequential ? g_seq_next++ % g_blocks * IO_SECTORS : next_sector();
  g_sector[slot] = sector;
  if (g_verify && type == VIRTIO_BLK_T_OUT) {
    uint64_t* w = (uint64_t*)(void*)g_buf[slot];
    for (unsigned i = 0; i < sizeof(kProbe) / sizeof(kProbe[0]); i++)
      w[kProbe[i]] = pattern(sector, kProbe[i]);
  }
  return vblk_submit(&g_blk, 0, &g_req[slot], type, sector, &seg, 1, g_indirect);
}

// A completed request in `slot`: in verify mode, a successful read must hold the pattern.
static void check(unsigned slot, uint32_t type, int status) {
  if (!g_verify || type != VIRTIO_BLK_T_IN || status != VIRTIO_BLK_S_OK) return;
  const volatile uint64_t* w = (const volatile uint64_t*)(void*)g_buf[slot];
  g_checked++;
  for (unsigned i = 0; i < sizeof(kProbe) / sizeof(kProbe[0]); i++) {
    if (w[kProbe[i]] != pattern(g_sector[slot], kProbe[i])) {
      if (g_mismatches++ < 5) {
        rt_printf("verify: MISMATCH sector %lu word %u: %lx\n", g_sector[slot], kProbe[i],
                  w[kProbe[i]]);
      }
      break;
    }
  }
}

// Queue depth 1: submit, notify, wait, repeat.
static void run_qd1(uint32_t type, uint64_t ops, struct phase_result* r) {
  for (uint64_t i = 0; i < ops; i++) {
    const int h = submit(0, type);
    if (h < 0) {
      note(r, h);
      return;
    }
    vblk_kick(&g_blk, 0);
    struct vblk_req* done;
    const int err = vblk_reap(&g_blk, 0, &done);
    if (err < 0) {
      note(r, err);
      return;  // timeout or device failure: the queue state is unknown
    }
    r->done++;
    note(r, *(volatile uint8_t*)&done->status);
    check(0, type, *(volatile uint8_t*)&done->status);
  }
}

// Queue depth qd: fill the queue, then for every completion put a new request in its slot.
// New requests are announced with one notify per batch of harvested completions.
static void run_qdn(uint32_t type, uint64_t ops, unsigned qd, struct phase_result* r) {
  uint64_t submitted = 0;
  for (unsigned s = 0; s < qd && submitted < ops; s++, submitted++) {
    const int h = submit(s, type);
    if (h < 0) {
      note(r, h);
      return;
    }
  }
  vblk_kick(&g_blk, 0);
  while (r->done < submitted) {
    struct vblk_req* done;
    int got = vblk_reap(&g_blk, 0, &done);  // waits; reads + acks InterruptStatus once
    bool resubmitted = false;
    while (got > 0) {
      r->done++;
      note(r, *(volatile uint8_t*)&done->status);
      check((unsigned)(done - g_req), type, *(volatile uint8_t*)&done->status);
      if (submitted < ops) {
        const int h = submit((unsigned)(done - g_req), type);
        if (h < 0) {
          note(r, h);
          return;
        }
        submitted++;
        resubmitted = true;
      }
      // Harvest whatever else has completed, without another InterruptStatus access.
      void* cookie = NULL;
      got = virtq_get_used(g_blk.vq[0], &cookie, NULL);
      if (got > 0) done = cookie;
    }
    if (got < 0) {
      note(r, got);
      return;
    }
    if (resubmitted) vblk_kick(&g_blk, 0);
  }
}

static bool phase(const char* name, uint32_t type, unsigned qd, uint64_t ops) {
  struct phase_result r = {0, 0, VIRTIO_BLK_S_OK};
  rt_printf("bench: %s start\n", name);
  const uint64_t t0 = rt_ticks();
  if (qd == 1) {
    run_qd1(type, ops, &r);
  } else {
    run_qdn(type, ops, qd, &r);
  }
  const uint64_t dt = rt_ticks() - t0;
  rt_printf("bench: %s done ops=%lu tsc=%lu\n", name, r.done, dt);
  const uint64_t hz = rt_ticks_hz();
  if (dt > 0) {
    rt_printf("blk_bench: %s ~%lu IOPS by the guest TSC (assumed %lu Hz)\n", name, r.done * hz / dt,
              hz);
  }
  if (r.errors != 0 || r.done != ops) {
    rt_printf("blk_bench: %s FAILED: %lu of %lu completed, %lu errors, first: %s\n", name, r.done,
              ops, r.errors, vblk_status_str(r.first_error));
    return false;
  }
  return true;
}

int payload_main(const char* cmdline) {
  rt_printf("edgevisor blk_bench payload\n");
  rt_printf("cmdline: %s\n", cmdline);
  uint64_t ops = 2000, span_mib = 64;
  rt_cmdline_get_u64("ops", &ops);
  rt_cmdline_get_u64("span", &span_mib);
  g_rng = 0x9e3779b97f4a7c15ull;
  rt_cmdline_get_u64("seed", &g_rng);
  if (g_rng == 0) g_rng = 1;  // xorshift's one fixed point
  g_indirect = rt_cmdline_get("indirect", NULL, 0);
  g_verify = rt_cmdline_get("verify", NULL, 0);

  struct virtio_mmio_dev dev;
  if (!virtio_mmio_find(VIRTIO_ID_BLOCK, &dev, "blk_bench")) return 1;
  const int err = vblk_init(&g_blk, &dev, NULL);
  if (err != VIRTIO_OK) {
    rt_printf("blk_bench: FAIL - init: %s\n", virtio_strerror(err));
    return 1;
  }

  uint64_t span = span_mib << 11;  // sectors
  if (span > g_blk.cfg.capacity) span = g_blk.cfg.capacity;
  g_blocks = span / IO_SECTORS;
  if (g_blocks == 0) {
    rt_printf("blk_bench: FAIL - disk smaller than 4 KiB\n");
    return 1;
  }
  const bool ro = vblk_has(&g_blk, VIRTIO_BLK_F_RO);

  // A direct chain takes 3 descriptors; fall back to indirect ones (1 each) when the queue is
  // too small for MAX_QD direct chains, else lower the depth.
  const unsigned size = g_blk.vq[0]->size;
  unsigned qd = MAX_QD;
  if (!g_indirect && size < 3 * MAX_QD) {
    if (vblk_has(&g_blk, VIRTIO_RING_F_INDIRECT_DESC)) {
      g_indirect = true;
    } else {
      qd = size / 3;
    }
  }
  if (qd > size) qd = size;

  for (unsigned s = 0; s < MAX_QD; s++) {
    uint64_t* w = (uint64_t*)(void*)g_buf[s];
    for (unsigned i = 0; i < IO_BYTES / 8; i++)
      w[i] = 0x5a5a000000000000ull | (uint64_t)s << 16 | i;
  }
  rt_printf(
      "blk_bench: capacity=%lu sectors span=%lu sectors ops=%lu queue_size=%u depth=%u "
      "%s%s\n",
      g_blk.cfg.capacity, g_blocks * IO_SECTORS, ops, size, qd,
      g_indirect ? "indirect descriptors" : "direct descriptors",
      ro ? " (read-only device: writes will fail)" : "");

  bool ok = true;
  char name[48];
  if (g_verify) {
    g_sequential = true;
    ok &= phase("fill", VIRTIO_BLK_T_OUT, qd, g_blocks);
    g_sequential = false;
  }
  ok &= phase("randread-qd1", VIRTIO_BLK_T_IN, 1, ops);
  ok &= phase("randwrite-qd1", VIRTIO_BLK_T_OUT, 1, ops);
  rt_snprintf(name, sizeof(name), "randread-qd%u", qd);
  ok &= phase(name, VIRTIO_BLK_T_IN, qd, ops);
  rt_snprintf(name, sizeof(name), "randwrite-qd%u", qd);
  ok &= phase(name, VIRTIO_BLK_T_OUT, qd, ops);

  vblk_reset(&g_blk);
  if (g_verify) {
    rt_printf("verify: checked=%lu mismatches=%lu\n", g_checked, g_mismatches);
    ok &= g_mismatches == 0 && g_checked > 0;
  }
  rt_printf("blk_bench: done\n");
  return ok ? 0 : 1;
}
