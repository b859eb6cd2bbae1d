// virtio-rng payload (virtio 1.2 §5.4): reads the entropy device and checks what comes back.
//   - buffers of 1 byte to 64 KiB come back full (used length = buffer length), and a buffer
//     over the device's 64 KiB cap comes back with exactly 64 KiB;
//   - the bytes look random: two 4 KiB reads differ, 64 KiB has every byte value and about half
//     its bits set; a chain of two writable buffers has both filled;
//   - hostile chains: a device-readable buffer is used with length 0, a buffer outside RAM makes
//     the device ask for a reset (or be used with length 0), and after a reset it serves again.
// With `rate_bytes=N` instead, only reads N bytes in 4 KiB requests, between the lines
// "rng: rate start" and "rng: rate N bytes in U us", for the host to time against the
// configured limit (U is the guest's own count).
// Prints "rng: N passed, M failed"; returns 0 iff all passed.
#include "rt.h"
#include "virtio_mmio.h"

#define FAR_ADDR 0x200000000ull  // 8 GiB: outside the payload's RAM
#define CAP (64u * 1024)         // the device fills at most this much of one buffer

static struct virtio_mmio_dev g_dev;
static struct virtq* g_vq;
static uint8_t g_buf[2 * CAP] __attribute__((aligned(4096)));
static uint8_t g_buf2[4096] __attribute__((aligned(4096)));
static uint64_t g_timeout;

static int setup(void) {
  int err = virtio_dev_negotiate(&g_dev, VIRTIO_FEATURE(VIRTIO_F_VERSION_1));
  if (err == VIRTIO_OK) err = virtq_setup(&g_dev, 0, 0, &g_vq);
  if (err == VIRTIO_OK) err = virtio_dev_driver_ok(&g_dev);
  return err;
}

// Submits one chain and waits for it: the used length, or a negative virtio error.
static int64_t request(const struct virtq_buf* bufs, unsigned n) {
  int head = virtq_add(g_vq, bufs, n, false, g_buf);
  if (head < 0) return head;
  virtq_kick(g_vq);
  int err = virtq_wait(g_vq, g_timeout);
  if (err != VIRTIO_OK) return err;
  void* cookie;
  uint32_t len = 0;
  if (virtq_get_used(g_vq, &cookie, &len) != 1) return VIRTIO_ERR_BAD_USED;
  return len;
}

static int64_t read_into(uint8_t* p, uint32_t len) {
  struct virtq_buf b = {(uintptr_t)p, len, true};
  return request(&b, 1);
}

static void check_sizes(void) {
  static const uint32_t kSizes[] = {1, 16, 64, 512, 4096, CAP};
  for (unsigned i = 0; i < sizeof(kSizes) / sizeof(kSizes[0]); i++) {
    char name[48];
    rt_snprintf(name, sizeof(name), "a %u-byte buffer comes back full", kSizes[i]);
    int64_t got = read_into(g_buf, kSizes[i]);
    RT_CHECKF(got == kSizes[i], name, "used length %lld", (long long)got);
  }
  int64_t got = read_into(g_buf, 2 * CAP);
  RT_CHECKF(got == CAP, "a 128 KiB buffer is filled up to the 64 KiB cap", "used length %lld",
            (long long)got);
}

static void check_randomness(void) {
  memset(g_buf, 0, 4096);
  memset(g_buf2, 0, 4096);
  bool ok = read_into(g_buf, 4096) == 4096 && read_into(g_buf2, 4096) == 4096;
  RT_CHECK(ok && memcmp(g_buf, g_buf2, 4096) != 0, "two 4 KiB reads differ");
  memset(g_buf, 0, CAP);
  ok = read_into(g_buf, CAP) == CAP;
  bool seen[256] = {false};
  uint64_t ones = 0;
  unsigned distinct = 0;
  for (uint32_t i = 0; i < CAP; i++) {
    if (!seen[g_buf[i]]) distinct++;
    seen[g_buf[i]] = true;
    for (uint8_t b = g_buf[i]; b != 0; b &= (uint8_t)(b - 1)) ones++;
  }
  RT_CHECKF(ok && distinct == 256, "64 KiB hold every byte value", "%u distinct", distinct);
  // 524288 bits: a fair source is within 1 % of half (that is 15 standard deviations).
  RT_CHECKF(ok && ones > 259522 && ones < 264766, "about half of 64 KiB's bits are set",
            "%llu of 524288", (unsigned long long)ones);
  memset(g_buf, 0, 4096);
  memset(g_buf2, 0, 4096);
  struct virtq_buf two[2] = {{(uintptr_t)g_buf, 2048, true}, {(uintptr_t)g_buf2, 2048, true}};
  int64_t got = request(two, 2);
  static const uint8_t zeros[64] = {0};
  RT_CHECKF(
      got == 4096 && memcmp(g_buf + 1984, zeros, 64) != 0 && memcmp(g_buf2 + 1984, zeros, 64) != 0,
      "a chain of two writable buffers has both filled", "used length %lld", (long long)got);
}

// A bad chain: used with nothing written, or DEVICE_NEEDS_RESET (then reset and set up again).
static void check_hostile(const char* name, const struct virtq_buf* bufs, unsigned n) {
  int64_t got = request(bufs, n);
  bool reset = got == VIRTIO_ERR_NEEDS_RESET || virtio_dev_needs_reset(&g_dev);
  RT_CHECKF(got == 0 || reset, name, "result %lld", (long long)got);
  if (reset) {
    virtio_dev_reset(&g_dev);
    int err = setup();
    RT_CHECKF(err == VIRTIO_OK, "the device comes back after a reset", "%s", virtio_strerror(err));
  }
  RT_CHECK(read_into(g_buf, 64) == 64, "a good read after the bad chain");
}

static void check_rate(uint64_t total) {
  rt_print("rng: rate start\n");
  const uint64_t t0 = rt_ticks();
  uint64_t done = 0;
  while (done < total) {
    int64_t got = read_into(g_buf, 4096);
    if (got <= 0) break;
    done += (uint64_t)got;
  }
  const uint64_t us = (rt_ticks() - t0) * 1000000 / rt_ticks_hz();
  RT_CHECKF(done >= total, "the rate run read everything", "%llu of %llu bytes",
            (unsigned long long)done, (unsigned long long)total);
  rt_printf("rng: rate %llu bytes in %llu us\n", (unsigned long long)done, (unsigned long long)us);
}

int payload_main(const char* cmdline) {
  (void)cmdline;
  uint64_t ms = VIRTIO_DEFAULT_TIMEOUT_MS, rate_bytes = 0;
  rt_cmdline_get_u64("timeout_ms", &ms);
  rt_cmdline_get_u64("rate_bytes", &rate_bytes);
  g_timeout = rt_ms_to_ticks(ms);
  if (!RT_CHECK(virtio_mmio_find(VIRTIO_ID_RNG, &g_dev, "rng"), "found a virtio-rng device")) {
    return rt_check_summary("rng");
  }
  int err = setup();
  if (!RT_CHECKF(err == VIRTIO_OK, "the device initializes", "%s", virtio_strerror(err))) {
    return rt_check_summary("rng");
  }
  if (rate_bytes == 0) {
    check_sizes();
    check_randomness();
    struct virtq_buf readable = {(uintptr_t)g_buf, 64, false};
    check_hostile("a device-readable buffer is not filled", &readable, 1);
    struct virtq_buf far = {FAR_ADDR, 64, true};
    check_hostile("a buffer outside RAM is refused", &far, 1);
  } else {
    check_rate(rate_bytes);
  }
  return rt_check_summary("rng");
}
