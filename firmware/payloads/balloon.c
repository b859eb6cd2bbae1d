// virtio-balloon payload (virtio 1.2 §5.5): plays the guest's balloon driver against a host that
// moves the target through the API (the test drives it).
//   1. sets up the inflate, deflate and (when offered) statistics queues, sends its statistics,
//      writes a pattern over `region_mib` MiB of its own memory and prints
//      "balloon: ready, touched N MiB";
//   2. waits for a target above 0 (a configuration-change interrupt must come with it), gives
//      the balloon that many pages of the region, writes `actual` and prints
//      "balloon: inflated N pages"; statistics requests are answered all along, each with a
//      refresh count in minor_faults;
//   3. waits for the target to return to 0, deflates, writes `actual` = 0, prints
//      "balloon: deflated N pages" and checks that the pages it had given read back as zeros (the
//      host released them) and are usable again;
//   4. hostile buffers: page numbers outside RAM among good ones, a page given three times, a
//      6-byte buffer, a device-writable buffer (ignored: its page keeps its bytes), a buffer
//      outside RAM (a reset, then the device works again).
// The region starts 2 MiB past the image: the guest needs region_mib + 8 MiB of RAM at least.
// Prints "balloon: N passed, M failed"; returns 0 iff all passed.
#include <linux/virtio_balloon.h>

#include "rt.h"
#include "virtio_mmio.h"

#define FAR_ADDR 0x200000000ull  // 8 GiB: outside the payload's RAM
#define REGION_MAX_MIB 32
#define PAGE 4096u
#define BATCH 256u  // page numbers per inflate/deflate buffer, as Linux sends them

enum { Q_INFLATE, Q_DEFLATE, Q_STATS };

static struct virtio_mmio_dev g_dev;
static struct virtq* g_vq[3];
static uint8_t* g_region;  // 2 MiB past the image, in the RAM nothing else uses
static uint32_t g_pfns[BATCH] __attribute__((aligned(64)));
static uint8_t g_stats[4 * 10];  // four packed {le16 tag, le64 value}
static uint64_t g_refreshes;     // statistics sent, after the first
static uint64_t g_timeout, g_wait;

static uint32_t pfn_of(const void* p) { return (uint32_t)((uintptr_t)p / PAGE); }

static void put_stat(unsigned i, uint16_t tag, uint64_t v) {
  memcpy(g_stats + i * 10, &tag, 2);
  memcpy(g_stats + i * 10 + 2, &v, 8);
}

// Posts the statistics buffer (§5.5.6.3): the device holds it until it wants new figures.
static void post_stats(void) {
  if (!g_vq[Q_STATS]) return;
  put_stat(0, VIRTIO_BALLOON_S_MEMTOT, 128ull << 20);
  put_stat(1, VIRTIO_BALLOON_S_MEMFREE, 0x1234000);
  put_stat(2, VIRTIO_BALLOON_S_MINFLT, g_refreshes);
  put_stat(3, 99, 7);  // a tag the device does not know: ignored
  struct virtq_buf b = {(uintptr_t)g_stats, sizeof(g_stats), false};
  if (virtq_add(g_vq[Q_STATS], &b, 1, false, g_stats) >= 0) virtq_kick(g_vq[Q_STATS]);
}

// The device handed the statistics buffer back: send fresh figures.
static void serve_stats(void) {
  void* cookie;
  uint32_t len;
  if (!g_vq[Q_STATS] || !virtq_has_used(g_vq[Q_STATS])) return;
  if (virtq_get_used(g_vq[Q_STATS], &cookie, &len) != 1) return;
  g_refreshes++;
  post_stats();
}

static int setup(void) {
  g_vq[Q_STATS] = 0;
  int err = virtio_dev_negotiate(
      &g_dev, VIRTIO_FEATURE(VIRTIO_F_VERSION_1) | VIRTIO_FEATURE(VIRTIO_BALLOON_F_STATS_VQ));
  if (err == VIRTIO_OK) err = virtq_setup(&g_dev, Q_INFLATE, 0, &g_vq[Q_INFLATE]);
  if (err == VIRTIO_OK) err = virtq_setup(&g_dev, Q_DEFLATE, 0, &g_vq[Q_DEFLATE]);
  if (err == VIRTIO_OK && virtio_has_feature(&g_dev, VIRTIO_BALLOON_F_STATS_VQ)) {
    err = virtq_setup(&g_dev, Q_STATS, 0, &g_vq[Q_STATS]);
  }
  if (err == VIRTIO_OK) err = virtio_dev_driver_ok(&g_dev);
  if (err == VIRTIO_OK) post_stats();
  return err;
}

// Submits one chain on Q and waits for it: the used length, or a negative virtio error.
static int64_t request(int q, const struct virtq_buf* bufs, unsigned n) {
  int head = virtq_add(g_vq[q], bufs, n, false, g_pfns);
  if (head < 0) return head;
  virtq_kick(g_vq[q]);
  int err = virtq_wait(g_vq[q], g_timeout);
  if (err != VIRTIO_OK) return err;
  void* cookie;
  uint32_t len = 0;
  if (virtq_get_used(g_vq[q], &cookie, &len) != 1) return VIRTIO_ERR_BAD_USED;
  return len;
}

// Gives (Q_INFLATE) or takes back (Q_DEFLATE) pages [first, first + n) of the region.
static bool move_pages(int q, uint32_t first, uint32_t n) {
  for (uint32_t done = 0; done < n;) {
    const uint32_t k = n - done < BATCH ? n - done : BATCH;
    for (uint32_t i = 0; i < k; i++) g_pfns[i] = pfn_of(g_region) + first + done + i;
    struct virtq_buf b = {(uintptr_t)g_pfns, k * 4, false};
    if (request(q, &b, 1) < 0) return false;
    done += k;
    serve_stats();
  }
  return true;
}

static uint32_t target(void) {
  return virtio_config_read32(&g_dev, offsetof(struct virtio_balloon_config, num_pages));
}

// Waits until the target satisfies DONE (answering statistics requests meanwhile).
static bool wait_target(bool above_zero, uint32_t* out) {
  const uint64_t end = rt_ticks() + g_wait;
  while (rt_ticks() < end) {
    const uint32_t t = target();
    if ((t > 0) == above_zero) {
      *out = t;
      return true;
    }
    serve_stats();
    const uint64_t pause = rt_ticks() + rt_ms_to_ticks(2);
    while (rt_ticks() < pause) {
    }
  }
  return false;
}

// Whether every byte of the page at P is V (read a word at a time: this runs over 16 MiB).
static bool page_is(const uint8_t* p, uint8_t v) {
  const uint64_t want = 0x0101010101010101ull * v;
  const uint64_t* w = (const uint64_t*)p;
  for (unsigned i = 0; i < PAGE / 8; i++) {
    if (w[i] != want) return false;
  }
  return true;
}

static void fill(uint8_t* p, size_t len, uint8_t v) { memset(p, v, len); }

static void set_actual(uint32_t pages) {
  virtio_config_write32(&g_dev, offsetof(struct virtio_balloon_config, actual), pages);
}

static void inflate_and_deflate(uint64_t region_mib) {
  const uint32_t region_pages = (uint32_t)(region_mib << 20) / PAGE;
  uint32_t t = 0;
  if (!RT_CHECK(wait_target(true, &t), "the host sets a target")) return;
  const uint32_t isr = virtio_dev_ack_interrupt(&g_dev) | g_dev.isr_seen;
  RT_CHECKF(isr & VIRTIO_MMIO_INT_CONFIG, "a configuration-change interrupt came with it",
            "InterruptStatus seen 0x%x", isr);
  const uint32_t n = t < region_pages ? t : region_pages;
  RT_CHECKF(t <= region_pages, "the target fits the region", "%u pages of %u", t, region_pages);
  bool ok = move_pages(Q_INFLATE, 0, n);
  RT_CHECK(ok, "the inflate buffers come back");
  set_actual(n);
  rt_printf("balloon: inflated %u pages\n", n);

  if (!RT_CHECK(wait_target(false, &t), "the host sets the target back to 0")) return;
  ok = move_pages(Q_DEFLATE, 0, n);
  RT_CHECK(ok, "the deflate buffers come back");
  set_actual(0);
  rt_printf("balloon: deflated %u pages\n", n);
  unsigned zero = 0;
  for (uint32_t i = 0; i < n; i++) zero += page_is(g_region + (size_t)i * PAGE, 0);
  RT_CHECKF(zero == n, "every page given to the balloon reads back as zeros (released)", "%u of %u",
            zero, n);
  // Written again: the first and the last page (each write a fresh page for the host).
  fill(g_region, PAGE, 0x5a);
  fill(g_region + (size_t)(n - 1) * PAGE, PAGE, 0x5a);
  RT_CHECK(page_is(g_region, 0x5a) && page_is(g_region + (size_t)(n - 1) * PAGE, 0x5a),
           "the pages are usable again");
}

// One inflate buffer of page numbers PFNS[0..count) plus EXTRA raw bytes, device-WRITABLE or not.
static int64_t inflate_raw(const uint32_t* pfns, unsigned count, unsigned extra, bool writable) {
  memcpy(g_pfns, pfns, count * 4);
  memset((uint8_t*)g_pfns + count * 4, 0xee, extra);
  struct virtq_buf b = {(uintptr_t)g_pfns, count * 4 + extra, writable};
  return request(Q_INFLATE, &b, 1);
}

static void check_hostile(void) {
  uint8_t* p = g_region;  // the hostile cases use the region's first pages
  fill(p, 4 * PAGE, 0x77);
  const uint32_t bad[5] = {0xffffffffu, 0x7fffffffu, 0xc0000u, pfn_of(p), 0x100000u};
  int64_t got = inflate_raw(bad, 5, 0, false);
  RT_CHECK(got == 0 && page_is(p, 0),
           "page numbers outside RAM are ignored, the good one released");
  const uint32_t dup[3] = {pfn_of(p + PAGE), pfn_of(p + PAGE), pfn_of(p + PAGE)};
  got = inflate_raw(dup, 3, 0, false);
  RT_CHECK(got == 0 && page_is(p + PAGE, 0), "a page given three times is released");
  const uint32_t one[1] = {pfn_of(p + 2 * PAGE)};
  got = inflate_raw(one, 1, 2, false);
  RT_CHECK(got == 0 && page_is(p + 2 * PAGE, 0), "a 6-byte buffer: its one whole number counts");
  const uint32_t w[1] = {pfn_of(p + 3 * PAGE)};
  got = inflate_raw(w, 1, 0, true);
  RT_CHECK(got == 0 && page_is(p + 3 * PAGE, 0x77), "a device-writable buffer is not read");
  struct virtq_buf far = {FAR_ADDR, 64, false};
  got = request(Q_INFLATE, &far, 1);
  const bool reset = got == VIRTIO_ERR_NEEDS_RESET || virtio_dev_needs_reset(&g_dev);
  RT_CHECKF(got == 0 || reset, "a buffer outside RAM is refused", "result %lld", (long long)got);
  if (reset) {
    virtio_dev_reset(&g_dev);
    int err = setup();
    RT_CHECKF(err == VIRTIO_OK, "the device comes back after a reset", "%s", virtio_strerror(err));
  }
  fill(p, PAGE, 0x66);
  got = inflate_raw(bad + 3, 1, 0, false);
  RT_CHECK(got == 0 && page_is(p, 0), "a good inflate after the bad buffers");
}

int payload_main(const char* cmdline) {
  (void)cmdline;
  uint64_t ms = VIRTIO_DEFAULT_TIMEOUT_MS, wait_ms = 60000, region_mib = 16;
  rt_cmdline_get_u64("timeout_ms", &ms);
  rt_cmdline_get_u64("wait_ms", &wait_ms);
  rt_cmdline_get_u64("region_mib", &region_mib);
  if (region_mib == 0 || region_mib > REGION_MAX_MIB) region_mib = 16;
  uintptr_t image_start, image_end;
  rt_image_range(&image_start, &image_end);
  g_region = (uint8_t*)(((image_end + (2u << 20) - 1) & ~(uintptr_t)((2u << 20) - 1)) + (2u << 20));
  g_timeout = rt_ms_to_ticks(ms);
  g_wait = rt_ms_to_ticks(wait_ms);
  if (!RT_CHECK(virtio_mmio_find(VIRTIO_ID_BALLOON, &g_dev, "balloon"),
                "found a virtio-balloon device")) {
    return rt_check_summary("balloon");
  }
  int err = setup();
  if (!RT_CHECKF(err == VIRTIO_OK, "the device initializes", "%s", virtio_strerror(err))) {
    return rt_check_summary("balloon");
  }
  RT_CHECK(g_vq[Q_STATS] != 0, "the device offers the statistics queue");
  fill(g_region, region_mib << 20, 0xa5);
  rt_printf("balloon: ready, touched %llu MiB\n", (unsigned long long)region_mib);
  inflate_and_deflate(region_mib);
  check_hostile();
  return rt_check_summary("balloon");
}
