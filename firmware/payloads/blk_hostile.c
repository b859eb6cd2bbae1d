// Hostile-driver payload for virtio-blk: builds malformed descriptor chains by hand on queue 0 of
// the first virtio-blk device and checks that the device copes. For each case the device must
// EITHER complete the request (used ring advances) with a status byte other than OK (the byte is
// preset to 0xff, so "not written" also counts), OR set DEVICE_NEEDS_RESET (virtio 1.2 §2.1.2);
// in that case the payload resets and re-initializes the device before the next case. Nothing
// happening within the timeout (default 2 s, `timeout_ms=<n>`) is a failure, so a device that
// silently drops a request fails too. Cases (o) and (p) are well-formed chains with a bad
// request: they must complete with exactly UNSUPP / IOERR. Cases (k)-(m) need
// VIRTIO_RING_F_INDIRECT_DESC and are skipped if the device does not offer it.
//
// After all cases: one good write + read round trip (on the same queue, without a reset unless
// a case left the device needing one). Prints "blk_hostile: N passed, M failed"; returns 0 iff
// all passed.
#include "rt.h"
#include "virtio_blk.h"

#define SECTOR VIRTIO_BLK_SECTOR_SIZE
#define FAR_ADDR 0x200000000ull  // 8 GiB: outside RAM unless the guest has more

static struct vblk g_blk;
static struct virtio_mmio_dev g_probed;
static struct virtio_mmio_token g_tokens[VIRTIO_MMIO_MAX_DEVICES];

// Request memory. Each lives in its own cache line; the data buffers are page-aligned.
static struct virtio_blk_req_hdr g_hdr __attribute__((aligned(64)));
static volatile uint8_t g_status __attribute__((aligned(64)));
static uint8_t g_data[4096] __attribute__((aligned(4096)));
static uint8_t g_rdata[4096] __attribute__((aligned(4096)));
// Indirect tables: big enough for any case, 16-byte aligned (§2.7.5.3).
static struct virtq_desc g_ind[8] __attribute__((aligned(64)));
static struct virtq_desc g_ind2[8] __attribute__((aligned(64)));

static bool g_need_reinit;
static uint64_t g_timeout_ticks;
static uint64_t g_ram_top;

// ---- Raw descriptor helpers ----------------------------------------------------------------

static struct virtq* vq(void) { return g_blk.vq[0]; }

static void desc(unsigned i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next) {
  vq()->desc[i] = (struct virtq_desc){addr, len, flags, next};
}

static void ind(struct virtq_desc* t, unsigned i, uint64_t addr, uint32_t len, uint16_t flags,
                uint16_t next) {
  t[i] = (struct virtq_desc){addr, len, flags, next};
}

static void header(uint32_t type, uint64_t sector) {
  g_hdr = (struct virtio_blk_req_hdr){type, 0, sector};
}

#define R 0                      // device-readable
#define W VRING_DESC_F_WRITE     // device-writable
#define N VRING_DESC_F_NEXT      // chain continues
#define I VRING_DESC_F_INDIRECT  // indirect table
#define HDR ((uintptr_t)&g_hdr)
#define STATUS ((uintptr_t)&g_status)
#define DATA ((uintptr_t)g_data)

// A well-formed 3-descriptor request at descriptors 0..2; data device-writable for IN.
static void good_chain(uint32_t type, uint64_t sector, uint64_t data, uint32_t len) {
  header(type, sector);
  desc(0, HDR, sizeof(g_hdr), R | N, 1);
  desc(1, data, len, (type == VIRTIO_BLK_T_IN ? W : R) | N, 2);
  desc(2, STATUS, 1, W, 0);
}

static void publish_head0(void) { virtq_publish(vq(), 0); }

// ---- Cases ---------------------------------------------------------------------------------
// Each builder writes descriptors and puts the head on the avail ring (no notify).

static void case_a_far_in(void) {  // device would write outside RAM
  good_chain(VIRTIO_BLK_T_IN, 0, FAR_ADDR > g_ram_top ? FAR_ADDR : g_ram_top + FAR_ADDR, SECTOR);
  publish_head0();
}

static void case_a_top_in(void) {  // first byte past the end of RAM
  good_chain(VIRTIO_BLK_T_IN, 0, g_ram_top, SECTOR);
  publish_head0();
}

static void case_a_straddle_out(void) {  // starts in RAM, ends past its top
  good_chain(VIRTIO_BLK_T_OUT, 0, g_ram_top - SECTOR / 2, SECTOR);
  publish_head0();
}

static void case_b_huge_len(void) {
  good_chain(VIRTIO_BLK_T_OUT, 0, DATA, 0x7fffffff);
  publish_head0();
}

static void case_c_loop(void) {
  // header -> data -> header -> ...: all device-readable, so only a bound on the walk (at most
  // queue size descriptors, §2.7.5.3.1) stops it, not a direction check.
  header(VIRTIO_BLK_T_OUT, 0);
  desc(0, HDR, sizeof(g_hdr), R | N, 1);
  desc(1, DATA, SECTOR, R | N, 0);  // back to the head
  publish_head0();
}

static void case_d_too_long(void) {
  // All queue_size descriptors in one chain (header, data..., status), and the last one still
  // says NEXT, to an index >= queue size: longer than the queue allows (§2.7.5.3.1 / §2.7.4).
  const uint16_t n = vq()->size;
  header(VIRTIO_BLK_T_OUT, 0);
  desc(0, HDR, sizeof(g_hdr), R | N, 1);
  for (uint16_t i = 1; i + 1 < n; i++) desc(i, DATA, SECTOR, R | N, (uint16_t)(i + 1));
  desc(n - 1u, STATUS, 1, W | N, n);
  publish_head0();
}

static void case_e_next_out_of_range(void) {
  header(VIRTIO_BLK_T_IN, 0);
  desc(0, HDR, sizeof(g_hdr), R | N, vq()->size);  // first index past the table
  publish_head0();
}

static void case_f_header_writable(void) {
  header(VIRTIO_BLK_T_IN, 0);
  desc(0, HDR, sizeof(g_hdr), W | N, 1);
  desc(1, DATA, SECTOR, W | N, 2);
  desc(2, STATUS, 1, W, 0);
  publish_head0();
}

static void case_g_status_readable(void) {
  header(VIRTIO_BLK_T_OUT, 0);
  desc(0, HDR, sizeof(g_hdr), R | N, 1);
  desc(1, DATA, SECTOR, R | N, 2);
  desc(2, STATUS, 1, R, 0);
  publish_head0();
}

static void case_h_status_len0(void) {
  header(VIRTIO_BLK_T_OUT, 0);
  desc(0, HDR, sizeof(g_hdr), R | N, 1);
  desc(1, DATA, SECTOR, R | N, 2);
  desc(2, STATUS, 0, W, 0);
  publish_head0();
}

static void case_i_avail_idx_jump(void) {
  // A valid read at the next slot, but avail->idx moves by queue_size + 1: more heads than the
  // ring can hold. The ring state is meaningless afterwards, so always re-initialize.
  good_chain(VIRTIO_BLK_T_IN, 0, DATA, SECTOR);
  struct virtq* q = vq();
  q->avail->ring[q->avail_idx & (q->size - 1)] = 0;
  q->avail_idx = (uint16_t)(q->avail_idx + q->size + 1);
  __atomic_store_n(&q->avail->idx, q->avail_idx, __ATOMIC_RELEASE);
  g_need_reinit = true;
}

static void case_j_head_out_of_range(void) {
  good_chain(VIRTIO_BLK_T_IN, 0, DATA, SECTOR);
  virtq_publish(vq(), vq()->size);  // head index == queue size
}

static void indirect_head(uint64_t table, uint32_t len) {
  desc(0, table, len, I, 0);
  publish_head0();
}

static void fill_table(struct virtq_desc* t) {
  header(VIRTIO_BLK_T_IN, 0);
  ind(t, 0, HDR, sizeof(g_hdr), R | N, 1);
  ind(t, 1, DATA, SECTOR, W | N, 2);
  ind(t, 2, STATUS, 1, W, 0);
}

static void case_k_indirect_len(void) {
  // Three good entries, but the table length is 3 * 16 + 8 (§2.7.5.3.2: not a multiple of 16).
  fill_table(g_ind);
  indirect_head((uintptr_t)g_ind, 3 * sizeof(struct virtq_desc) + 8);
}

static void case_l_nested_indirect(void) {
  // §2.7.5.3.1: an indirect table must not contain INDIRECT descriptors.
  header(VIRTIO_BLK_T_IN, 0);
  ind(g_ind2, 0, DATA, SECTOR, W | N, 1);
  ind(g_ind2, 1, STATUS, 1, W, 0);
  ind(g_ind, 0, HDR, sizeof(g_hdr), R | N, 1);
  ind(g_ind, 1, (uintptr_t)g_ind2, 2 * sizeof(struct virtq_desc), I, 0);
  indirect_head((uintptr_t)g_ind, 2 * sizeof(struct virtq_desc));
}

static void case_m_indirect_outside_ram(void) {
  indirect_head(FAR_ADDR > g_ram_top ? FAR_ADDR : g_ram_top + FAR_ADDR,
                3 * sizeof(struct virtq_desc));
}

static void case_n_in_data_readable(void) {
  header(VIRTIO_BLK_T_IN, 0);
  desc(0, HDR, sizeof(g_hdr), R | N, 1);
  desc(1, DATA, SECTOR, R | N, 2);  // a read must get a device-writable buffer
  desc(2, STATUS, 1, W, 0);
  publish_head0();
}

static void case_o_unknown_type(void) {
  header(0x99, 0);
  desc(0, HDR, sizeof(g_hdr), R | N, 1);
  desc(1, STATUS, 1, W, 0);
  publish_head0();
}

static void case_p_past_capacity(void) {
  good_chain(VIRTIO_BLK_T_OUT, g_blk.cfg.capacity, DATA, SECTOR);
  publish_head0();
}

// ---- Runner --------------------------------------------------------------------------------

enum expect {
  EXPECT_NOT_OK,  // completion with status != OK, or DEVICE_NEEDS_RESET
  EXPECT_UNSUPP,  // completion with exactly UNSUPP
  EXPECT_IOERR,   // completion with exactly IOERR
};

struct hostile_case {
  const char* id;
  const char* what;
  void (*build)(void);
  enum expect expect;
  bool needs_indirect;
};

static bool reinit(void) {
  const struct vblk_opts opts = {0, 0, 1, 0};
  const int err = vblk_init(&g_blk, &g_probed, &opts);
  if (err != VIRTIO_OK) {
    rt_printf("blk_hostile: re-initialization failed: %s (status 0x%x)\n", virtio_strerror(err),
              virtio_dev_status(&g_blk.dev));
    return false;
  }
  g_blk.timeout_ticks = g_timeout_ticks;
  g_need_reinit = false;
  return true;
}

static void run_case(const struct hostile_case* c) {
  char name[128];
  rt_snprintf(name, sizeof(name), "hostile (%s) %s", c->id, c->what);
  if (c->needs_indirect && !vblk_has(&g_blk, VIRTIO_RING_F_INDIRECT_DESC)) {
    rt_check_skip(name, "VIRTIO_RING_F_INDIRECT_DESC not offered");
    return;
  }
  if (g_need_reinit && !reinit()) {
    RT_CHECKF(false, name, "device could not be re-initialized before the case");
    g_need_reinit = true;
    return;
  }
  g_status = 0xff;
  c->build();
  virtq_kick(vq());
  const int w = virtq_wait(vq(), g_timeout_ticks);
  const bool needs_reset = w == VIRTIO_ERR_NEEDS_RESET || virtio_dev_needs_reset(&g_blk.dev);
  if (needs_reset) g_need_reinit = true;

  if (w == VIRTIO_OK) {
    struct virtq_used_elem e;
    virtq_pop_used_raw(vq(), &e);
    const int st = g_status;
    rt_printf("hostile (%s): completed: id=%u len=%u status=%s%s\n", c->id, e.id, e.len,
              vblk_status_str(st), needs_reset ? ", and DEVICE_NEEDS_RESET" : "");
    switch (c->expect) {
      case EXPECT_NOT_OK:
        RT_CHECKF(st != VIRTIO_BLK_S_OK || needs_reset, name, "device completed it with OK");
        break;
      case EXPECT_UNSUPP:
        RT_CHECKF(st == VIRTIO_BLK_S_UNSUPP, name, "status %s, want UNSUPP", vblk_status_str(st));
        break;
      case EXPECT_IOERR:
        RT_CHECKF(st == VIRTIO_BLK_S_IOERR, name, "status %s, want IOERR", vblk_status_str(st));
        break;
    }
    return;
  }
  if (needs_reset) {
    rt_printf("hostile (%s): DEVICE_NEEDS_RESET (status 0x%x)\n", c->id,
              virtio_dev_status(&g_blk.dev));
    RT_CHECKF(c->expect == EXPECT_NOT_OK, name, "device needed a reset, want status %s",
              c->expect == EXPECT_UNSUPP ? "UNSUPP" : "IOERR");
    return;
  }
  rt_printf("hostile (%s): no completion and no DEVICE_NEEDS_RESET (status 0x%x)\n", c->id,
            virtio_dev_status(&g_blk.dev));
  RT_CHECKF(false, name, "%s: neither completed nor DEVICE_NEEDS_RESET", virtio_strerror(w));
  g_need_reinit = true;  // the device may still hold the chain: reset before reusing it
}

// One raw, well-formed request on descriptors 0..2; returns the status or a negative error.
static int good_request(uint32_t type, uint64_t sector, uint8_t* buf) {
  g_status = 0xff;
  good_chain(type, sector, (uintptr_t)buf, sizeof(g_data));
  publish_head0();
  virtq_kick(vq());
  const int w = virtq_wait(vq(), g_timeout_ticks);
  if (w != VIRTIO_OK) return w;
  struct virtq_used_elem e;
  virtq_pop_used_raw(vq(), &e);
  return e.id == 0 ? g_status : VIRTIO_ERR_BAD_USED;
}

static void final_round_trip(void) {
  if (g_need_reinit) {
    rt_printf("blk_hostile: re-initializing before the final round trip\n");
    if (!RT_CHECKF(reinit(), "final re-initialization", "see above")) return;
  }
  const uint64_t sector = 8;
  const uint64_t seed = rt_ticks();
  uint64_t* w = (uint64_t*)(void*)g_data;
  for (size_t i = 0; i < sizeof(g_data) / 8; i++) w[i] = seed ^ (sector << 8) ^ i;
  int st = good_request(VIRTIO_BLK_T_OUT, sector, g_data);
  if (!RT_CHECKF(st == VIRTIO_BLK_S_OK, "good write after the hostile cases", "%s",
                 vblk_status_str(st))) {
    return;
  }
  uint64_t* r = (uint64_t*)(void*)g_rdata;
  for (size_t i = 0; i < sizeof(g_rdata) / 8; i += 61) r[i] = ~w[i];
  st = good_request(VIRTIO_BLK_T_IN, sector, g_rdata);
  if (!RT_CHECKF(st == VIRTIO_BLK_S_OK, "good read after the hostile cases", "%s",
                 vblk_status_str(st))) {
    return;
  }
  size_t bad = SIZE_MAX;
  for (size_t i = 0; i < sizeof(g_rdata) / 8 && bad == SIZE_MAX; i += 61) {
    if (r[i] != w[i]) bad = i;
  }
  RT_CHECKF(bad == SIZE_MAX, "good read returns the data written", "word %zu: 0x%lx want 0x%lx",
            bad, bad != SIZE_MAX ? r[bad] : 0, bad != SIZE_MAX ? w[bad] : 0);
}

int payload_main(const char* cmdline) {
  rt_printf("edgevisor blk_hostile payload\n");
  rt_printf("cmdline: %s\n", cmdline);
  uint64_t ms = VIRTIO_DEFAULT_TIMEOUT_MS;
  rt_cmdline_get_u64("timeout_ms", &ms);
  g_timeout_ticks = rt_ms_to_ticks(ms);
  g_ram_top = rt_ram_top();

  const int ntok = virtio_mmio_discover(g_tokens, VIRTIO_MMIO_MAX_DEVICES);
  bool found = false;
  for (int i = 0; i < ntok && !found; i++) {
    found = virtio_mmio_probe(&g_probed, &g_tokens[i]) == VIRTIO_OK &&
            g_probed.device_id == VIRTIO_ID_BLOCK;
  }
  if (!RT_CHECKF(found, "found a virtio-blk device", "%d virtio_mmio.device tokens", ntok)) {
    return rt_check_summary("blk_hostile");
  }
  if (!RT_CHECKF(g_ram_top != 0, "memory map has RAM", "no RAM entries")) {
    return rt_check_summary("blk_hostile");
  }
  if (!RT_CHECKF(reinit(), "initialize the device", "see above")) {
    return rt_check_summary("blk_hostile");
  }
  rt_printf(
      "blk_hostile: base=0x%lx queue_size=%u capacity=%lu features=0x%lx ram_top=0x%lx "
      "timeout=%lu ms\n",
      (uint64_t)g_blk.dev.base, vq()->size, g_blk.cfg.capacity, g_blk.dev.features, g_ram_top, ms);

  const struct hostile_case cases[] = {
      {"a1", "IN data buffer far outside RAM", case_a_far_in, EXPECT_NOT_OK, false},
      {"a2", "IN data buffer at the first byte past RAM", case_a_top_in, EXPECT_NOT_OK, false},
      {"a3", "OUT data buffer straddling the top of RAM", case_a_straddle_out, EXPECT_NOT_OK,
       false},
      {"b", "OUT data length 0x7fffffff", case_b_huge_len, EXPECT_NOT_OK, false},
      {"c", "descriptor loop back to the head", case_c_loop, EXPECT_NOT_OK, false},
      {"d", "chain longer than the queue", case_d_too_long, EXPECT_NOT_OK, false},
      {"e", "next index out of range", case_e_next_out_of_range, EXPECT_NOT_OK, false},
      {"f", "header in a device-writable descriptor", case_f_header_writable, EXPECT_NOT_OK, false},
      {"g", "status in a device-readable descriptor", case_g_status_readable, EXPECT_NOT_OK, false},
      {"h", "status descriptor of length 0", case_h_status_len0, EXPECT_NOT_OK, false},
      {"i", "avail idx advanced by more than the queue size", case_i_avail_idx_jump, EXPECT_NOT_OK,
       false},
      {"j", "avail ring head index >= queue size", case_j_head_out_of_range, EXPECT_NOT_OK, false},
      {"k", "indirect table length not a multiple of 16", case_k_indirect_len, EXPECT_NOT_OK, true},
      {"l", "indirect descriptor inside an indirect table", case_l_nested_indirect, EXPECT_NOT_OK,
       true},
      {"m", "indirect table outside RAM", case_m_indirect_outside_ram, EXPECT_NOT_OK, true},
      {"n", "IN with a device-readable data buffer", case_n_in_data_readable, EXPECT_NOT_OK, false},
      {"o", "unknown request type 0x99 -> UNSUPP", case_o_unknown_type, EXPECT_UNSUPP, false},
      {"p", "OUT at sector = capacity -> IOERR", case_p_past_capacity, EXPECT_IOERR, false},
  };
  for (size_t i = 0; i < RT_ARRAY_SIZE(cases); i++) run_case(&cases[i]);
  final_round_trip();
  vblk_reset(&g_blk);
  return rt_check_summary("blk_hostile");
}
