// Hostile-driver payload for virtio-net's transmit queue: builds malformed TX chains by hand on
// queue 1 (the first pair's TX queue) of the first virtio-net device and checks that the device
// copes. Two outcomes count:
// - DROP: the device hands the chain back (the used ring advances, for that head) and does not
//   ask for a reset. Cases whose chain is sound but whose packet is not (a device-writable frame
//   buffer, a frame shorter than an Ethernet header or longer than 65553 bytes, header flags or
//   GSO the driver never negotiated, a header cut short) must end this way.
// - DROP or RESET: the chain itself is unusable (buffers outside RAM, loops, indexes out of
//   range, bad indirect tables): the device may hand it back or set DEVICE_NEEDS_RESET (virtio
//   1.2 §2.1.2); the payload then resets and re-initializes it before the next case.
// Nothing within the timeout (default 2 s, `timeout_ms=<n>`) fails the case.
//
// Every sound frame among the cases is a UDP datagram "HOSTILE <case>" to host_ip:port; after
// the cases the device is re-initialized and sends one good datagram "ALIVE <n>". The host
// (tests/integration/net_test.cc, the arm64 rig) checks that it received ALIVE and no HOSTILE.
//
// Command line: host_mac=<xx:xx:xx:xx:xx:xx> (required: the TAP's address), host_ip=<a.b.c.d>
// (10.0.2.1), ip=<a.b.c.d> (10.0.2.15), port=<udp port> (9999), timeout_ms=<n>.
// Prints "net_hostile: N passed, M failed"; returns 0 iff all passed.
#include "inet.h"
#include "rt.h"
#include "virtio_mmio.h"
#include "virtio_net.h"

#define FAR_ADDR 0x200000000ull         // 8 GiB: outside RAM unless the guest has more
#define BIG_FRAME (65535 + 14 + 4 + 1)  // one byte more than a frame may be

static struct vnet g_net;
static struct virtio_mmio_dev g_probed;
static uint64_t g_timeout_ticks;
static uint64_t g_ram_top;
static bool g_need_reinit;
static bool g_inited;  // the device has been initialized once (vnet_reset needs its base)
static uint8_t g_host_mac[ETH_ALEN];
static uint32_t g_host_ip, g_ip;
static uint16_t g_port;

// Packet memory, each in its own cache line or page.
static struct virtio_net_hdr_v1 g_hdr __attribute__((aligned(64)));
static uint8_t g_frame[2048] __attribute__((aligned(4096)));
static uint32_t g_frame_len;
static uint8_t g_big[BIG_FRAME] __attribute__((aligned(4096)));
static struct virtq_desc g_ind[8] __attribute__((aligned(64)));
static struct virtq_desc g_ind2[8] __attribute__((aligned(64)));

// ---- Frames --------------------------------------------------------------------------------

// An Ethernet + IPv4 + UDP datagram carrying TEXT into BUF; returns its length.
static uint32_t udp_frame(uint8_t* buf, const char* text) {
  const uint32_t n = (uint32_t)strlen(text);
  uint8_t* e = buf;
  inet_mac_copy(e, g_host_mac);
  inet_mac_copy(e + 6, g_net.mac);
  inet_put16(e + 12, ETH_P_IPV4);
  uint8_t* ip = e + ETH_HLEN;
  memset(ip, 0, IPV4_HLEN);
  ip[0] = 0x45;
  inet_put16(ip + 2, (uint16_t)(IPV4_HLEN + UDP_HLEN + n));
  inet_put16(ip + 6, IPV4_DF);
  ip[8] = 64;
  ip[9] = IPPROTO_UDP;
  inet_store32(ip + 12, g_ip);
  inet_store32(ip + 16, g_host_ip);
  inet_store16(ip + 10, inet_csum_finish(inet_csum_add(0, ip, IPV4_HLEN)));
  uint8_t* udp = ip + IPV4_HLEN;
  inet_put16(udp, 40000);
  inet_put16(udp + 2, g_port);
  inet_put16(udp + 4, (uint16_t)(UDP_HLEN + n));
  inet_put16(udp + 6, 0);  // no checksum (RFC 768, IPv4)
  memcpy(udp + UDP_HLEN, text, n);
  return ETH_HLEN + IPV4_HLEN + UDP_HLEN + n;
}

// ---- Raw descriptors on the TX queue -------------------------------------------------------

static struct virtq* txq(void) { return g_net.tx[0].vq; }

static void desc(unsigned i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next) {
  txq()->desc[i] = (struct virtq_desc){addr, len, flags, next};
}

#define R 0
#define W VRING_DESC_F_WRITE
#define N VRING_DESC_F_NEXT
#define I VRING_DESC_F_INDIRECT
#define HDR ((uintptr_t)&g_hdr)
#define HLEN ((uint32_t)sizeof(g_hdr))
#define FRAME ((uintptr_t)g_frame)

static uint64_t far_addr(void) { return FAR_ADDR > g_ram_top ? FAR_ADDR : g_ram_top + FAR_ADDR; }

// The case's frame: a sound "HOSTILE <id>" datagram, a zeroed header.
static void prepare(const char* id) {
  char text[32];
  rt_snprintf(text, sizeof(text), "HOSTILE %s", id);
  memset(&g_hdr, 0, sizeof(g_hdr));
  g_frame_len = udp_frame(g_frame, text);
}

// [header][frame], both device-readable: a sound chain at descriptors 0..1.
static void two_part(uint64_t frame, uint32_t len, uint16_t frame_flags) {
  desc(0, HDR, HLEN, R | N, 1);
  desc(1, frame, len, frame_flags, 0);
  virtq_publish(txq(), 0);
}

static void case_far(void) { two_part(far_addr(), 64, R); }
static void case_top(void) { two_part(g_ram_top, 64, R); }
static void case_straddle(void) { two_part(g_ram_top - 32, 64, R); }
static void case_huge_len(void) { two_part(FRAME, 0x7fffffff, R); }
static void case_writable(void) { two_part(FRAME, g_frame_len, W); }
static void case_short_frame(void) { two_part(FRAME, 10, R); }
static void case_hdr_cut(void) {  // the whole chain is 6 bytes: not even a header
  desc(0, HDR, 6, R, 0);
  virtq_publish(txq(), 0);
}
static void case_zero_len(void) {
  desc(0, HDR, 0, R, 0);
  virtq_publish(txq(), 0);
}
static void case_gso(void) {
  g_hdr.gso_type = VIRTIO_NET_HDR_GSO_TCPV4;
  g_hdr.gso_size = 1400;
  two_part(FRAME, g_frame_len, R);
}
static void case_csum(void) {  // NEEDS_CSUM without VIRTIO_NET_F_CSUM (not negotiated here)
  g_hdr.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
  g_hdr.csum_start = ETH_HLEN + IPV4_HLEN;
  g_hdr.csum_offset = 6;
  two_part(FRAME, g_frame_len, R);
}
static void case_flags(void) {
  g_hdr.flags = 0x80;
  two_part(FRAME, g_frame_len, R);
}
static void case_big(void) {  // a sound datagram's headers in front, padded past the limit
  memcpy(g_big, g_frame, g_frame_len);
  two_part((uintptr_t)g_big, BIG_FRAME, R);
}
static void case_loop(void) {
  desc(0, HDR, HLEN, R | N, 1);
  desc(1, FRAME, g_frame_len, R | N, 0);  // back to the head
  virtq_publish(txq(), 0);
}
static void case_too_long(void) {
  const uint16_t n = txq()->size;
  desc(0, HDR, HLEN, R | N, 1);
  for (uint16_t i = 1; i < n; i++) desc(i, FRAME, 1, R | N, (uint16_t)(i + 1));  // last: next=n
  virtq_publish(txq(), 0);
}
static void case_next_out_of_range(void) {
  desc(0, HDR, HLEN, R | N, txq()->size);
  virtq_publish(txq(), 0);
}
static void case_avail_jump(void) {
  struct virtq* q = txq();
  desc(0, HDR, HLEN, R | N, 1);
  desc(1, FRAME, g_frame_len, R, 0);
  q->avail->ring[q->avail_idx & (q->size - 1)] = 0;
  q->avail_idx = (uint16_t)(q->avail_idx + q->size + 1);
  __atomic_store_n(&q->avail->idx, q->avail_idx, __ATOMIC_RELEASE);
  g_need_reinit = true;  // the ring means nothing afterwards
}
static void case_head_out_of_range(void) {
  desc(0, HDR, HLEN, R | N, 1);
  desc(1, FRAME, g_frame_len, R, 0);
  virtq_publish(txq(), txq()->size);
}
static void indirect_head(uint64_t table, uint32_t len) {
  desc(0, table, len, I, 0);
  virtq_publish(txq(), 0);
}
static void case_ind_len(void) {
  g_ind[0] = (struct virtq_desc){HDR, HLEN, R | N, 1};
  g_ind[1] = (struct virtq_desc){FRAME, g_frame_len, R, 0};
  indirect_head((uintptr_t)g_ind, 2 * sizeof(struct virtq_desc) + 8);
}
static void case_ind_nested(void) {
  g_ind2[0] = (struct virtq_desc){FRAME, g_frame_len, R, 0};
  g_ind[0] = (struct virtq_desc){HDR, HLEN, R | N, 1};
  g_ind[1] = (struct virtq_desc){(uintptr_t)g_ind2, sizeof(struct virtq_desc), I, 0};
  indirect_head((uintptr_t)g_ind, 2 * sizeof(struct virtq_desc));
}
static void case_ind_far(void) { indirect_head(far_addr(), 2 * sizeof(struct virtq_desc)); }

// ---- Runner --------------------------------------------------------------------------------

enum expect { DROP, DROP_OR_RESET };

struct hostile_case {
  const char* id;
  const char* what;
  void (*build)(void);
  enum expect expect;
  bool needs_indirect;
};

static bool reinit(void) {
  struct vnet_opts opts;
  memset(&opts, 0, sizeof(opts));
  opts.queue_size = 64;
  if (g_inited) vnet_reset(&g_net);
  const int err = vnet_init(&g_net, &g_probed, &opts);
  g_inited = true;
  if (err != VIRTIO_OK) {
    rt_printf("net_hostile: initialization failed: %s (status 0x%x)\n", vnet_strerror(err),
              virtio_dev_status(&g_net.dev));
    return false;
  }
  g_need_reinit = false;
  return true;
}

static void run_case(const struct hostile_case* c) {
  char name[128];
  rt_snprintf(name, sizeof(name), "hostile TX (%s) %s", c->id, c->what);
  if (c->needs_indirect && !vnet_has(&g_net, VIRTIO_RING_F_INDIRECT_DESC)) {
    rt_check_skip(name, "VIRTIO_RING_F_INDIRECT_DESC not offered");
    return;
  }
  if (g_need_reinit && !reinit()) {
    RT_CHECKF(false, name, "the device could not be re-initialized before the case");
    g_need_reinit = true;
    return;
  }
  prepare(c->id);
  c->build();
  virtq_kick(txq());
  const int w = virtq_wait(txq(), g_timeout_ticks);
  const bool needs_reset = w == VIRTIO_ERR_NEEDS_RESET || virtio_dev_needs_reset(&g_net.dev);
  if (needs_reset) g_need_reinit = true;
  if (w == VIRTIO_OK) {
    struct virtq_used_elem e;
    virtq_pop_used_raw(txq(), &e);
    rt_printf("hostile TX (%s): handed back: id=%u len=%u%s\n", c->id, e.id, e.len,
              needs_reset ? ", and DEVICE_NEEDS_RESET" : "");
    if (c->expect == DROP) {
      RT_CHECKF(e.id == 0 && !needs_reset, name, "id %u%s", e.id,
                needs_reset ? ", DEVICE_NEEDS_RESET" : "");
    } else {
      RT_CHECK(true, name);
    }
    return;
  }
  if (needs_reset) {
    rt_printf("hostile TX (%s): DEVICE_NEEDS_RESET\n", c->id);
    RT_CHECKF(c->expect == DROP_OR_RESET, name, "a reset for a sound chain: want a drop");
    return;
  }
  RT_CHECKF(false, name, "%s: neither handed back nor DEVICE_NEEDS_RESET", virtio_strerror(w));
  g_need_reinit = true;  // the device may still hold the chain
}

// After the cases: a fresh device, one good datagram through the library's own TX path.
static void alive(void) {
  if (!RT_CHECKF(reinit(), "re-initialized after the cases", "see above")) return;
  uint16_t slot;
  uint8_t* f = vnet_tx_alloc(&g_net, 0, &slot);
  if (!RT_CHECK(f != NULL, "a TX slot for the good datagram")) return;
  char text[48];
  rt_snprintf(text, sizeof(text), "ALIVE %u", (unsigned)(rt_ticks() % 100000));
  vnet_tx_send(&g_net, 0, slot, udp_frame(f, text), NULL);
  vnet_kick(&g_net, 0);
  const int err = vnet_tx_flush(&g_net, 2000);
  RT_CHECKF(err == VIRTIO_OK, "the good datagram after the cases is sent", "%s",
            vnet_strerror(err));
  rt_printf("net_hostile: sent \"%s\"\n", text);
}

int payload_main(const char* cmdline) {
  rt_printf("edgevisor net_hostile payload\ncmdline: %s\n", cmdline);
  uint64_t ms = VIRTIO_DEFAULT_TIMEOUT_MS, port = 9999;
  rt_cmdline_get_u64("timeout_ms", &ms);
  rt_cmdline_get_u64("port", &port);
  g_timeout_ticks = rt_ms_to_ticks(ms);
  g_port = (uint16_t)port;
  g_host_ip = INET_IPV4(10, 0, 2, 1);
  g_ip = INET_IPV4(10, 0, 2, 15);
  char val[32];
  if (rt_cmdline_get("host_ip", val, sizeof(val))) inet_parse_ipv4(val, strlen(val), &g_host_ip);
  if (rt_cmdline_get("ip", val, sizeof(val))) inet_parse_ipv4(val, strlen(val), &g_ip);
  if (!RT_CHECK(rt_cmdline_get("host_mac", val, sizeof(val)) &&
                    inet_parse_mac(val, strlen(val), g_host_mac),
                "host_mac= names the TAP's address")) {
    return rt_check_summary("net_hostile");
  }
  g_ram_top = rt_ram_top();
  if (!RT_CHECK(g_ram_top != 0, "the memory map has RAM") ||
      !RT_CHECK(virtio_mmio_find(VIRTIO_ID_NET, &g_probed, "net_hostile"),
                "found a virtio-net device") ||
      !RT_CHECK(reinit(), "the device initializes")) {
    return rt_check_summary("net_hostile");
  }
  rt_printf("net_hostile: features=0x%lx queue=%u ram_top=0x%lx timeout=%lu ms\n",
            (unsigned long)g_net.dev.features, txq()->size, (unsigned long)g_ram_top,
            (unsigned long)ms);
  const struct hostile_case cases[] = {
      {"a1", "frame buffer far outside RAM", case_far, DROP_OR_RESET, false},
      {"a2", "frame buffer at the first byte past RAM", case_top, DROP_OR_RESET, false},
      {"a3", "frame buffer straddling the top of RAM", case_straddle, DROP_OR_RESET, false},
      {"b", "frame length 0x7fffffff", case_huge_len, DROP_OR_RESET, false},
      {"c", "descriptor loop back to the head", case_loop, DROP_OR_RESET, false},
      {"d", "chain longer than the queue", case_too_long, DROP_OR_RESET, false},
      {"e", "next index out of range", case_next_out_of_range, DROP_OR_RESET, false},
      {"f", "avail idx advanced by more than the queue size", case_avail_jump, DROP_OR_RESET,
       false},
      {"g", "avail ring head index >= queue size", case_head_out_of_range, DROP_OR_RESET, false},
      {"h", "indirect table length not a multiple of 16", case_ind_len, DROP_OR_RESET, true},
      {"i", "indirect descriptor inside an indirect table", case_ind_nested, DROP_OR_RESET, true},
      {"j", "indirect table outside RAM", case_ind_far, DROP_OR_RESET, true},
      {"k", "a device-writable frame buffer", case_writable, DROP, false},
      {"l", "a 10-byte frame", case_short_frame, DROP, false},
      {"m", "a 6-byte chain: the header cut short", case_hdr_cut, DROP, false},
      {"n", "a zero-length descriptor", case_zero_len, DROP, false},
      {"o", "GSO TCPv4 that was never negotiated", case_gso, DROP, false},
      {"p", "NEEDS_CSUM without VIRTIO_NET_F_CSUM", case_csum, DROP, false},
      {"q", "unknown header flags 0x80", case_flags, DROP, false},
      {"r", "a frame of 65554 bytes", case_big, DROP, false},
  };
  for (size_t i = 0; i < RT_ARRAY_SIZE(cases); i++) run_case(&cases[i]);
  alive();
  vnet_reset(&g_net);
  return rt_check_summary("net_hostile");
}
