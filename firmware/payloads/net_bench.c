// net_bench: UDP transmit benchmark on the first virtio-net device.
//
// Command line: ip=<a.b.c.d> (10.0.2.15) dst=<a.b.c.d> (10.0.2.1) dstmac=<xx:..> (optional)
// port=<dst udp port> (9) sport=<src udp port> (4242) size=<payload bytes> (64) seconds=<n> (3),
// plus the driver options of vnet_opts_from_cmdline (mq, csum, nomrg, split, rxbuf=, qsize=).
//
// Without dstmac, dst's MAC is resolved with ARP: a request every 500 ms, for at most 2 s, then
// the broadcast address. Every TX slot of every pair is prefilled with the same frame
// (Ethernet + IPv4 + UDP, correct checksums, or the UDP checksum left to the device with `csum`
// when it offers VIRTIO_NET_F_CSUM), so the timed loop only reclaims used slots, republishes
// them and notifies: the queues stay full and the per-packet cost in the guest is a few dozen
// instructions. Received frames are released unread during the loop.
//
// Output: `bench: tx start`, `bench: tx done packets=<N> bytes=<M>` (N = packets the device
// consumed, M = N * Ethernet frame bytes, the virtio header not counted; what the host's tap
// rx_bytes counts), a `net_bench: elapsed_ms=...` line, then `net_bench: done`.
#include "inet.h"
#include "rt.h"
#include "virtio_mmio.h"
#include "virtio_net.h"

static struct vnet g_net;
static uint8_t g_frame[VNET_MAX_FRAME];

#define ARP_TIMEOUT_MS 2000
#define ARP_RETRY_MS 500

static bool get_ipv4(const char* key, uint32_t* out) {
  char val[32];
  if (!rt_cmdline_get(key, val, sizeof(val))) return true;  // keep the default
  if (inet_parse_ipv4(val, strlen(val), out)) return true;
  rt_printf("net_bench: bad %s=%s\n", key, val);
  return false;
}

static bool get_u64(const char* key, uint64_t* out, uint64_t max) {
  if (!rt_cmdline_get(key, NULL, 0)) return true;
  if (rt_cmdline_get_u64(key, out) && *out <= max) return true;
  rt_printf("net_bench: bad %s\n", key);
  return false;
}

static void send_arp_request(struct vnet* n, uint32_t ip, uint32_t dst) {
  uint16_t slot;
  uint8_t* f = vnet_tx_alloc(n, 0, &slot);
  if (f == NULL) return;
  memset(f, 0xff, ETH_ALEN);  // broadcast
  inet_mac_copy(f + ETH_ALEN, n->mac);
  inet_put16(f + 12, ETH_P_ARP);
  uint8_t* a = f + ETH_HLEN;
  inet_put16(a, 1);  // Ethernet
  inet_put16(a + 2, ETH_P_IPV4);
  a[4] = ETH_ALEN;
  a[5] = 4;
  inet_put16(a + 6, ARP_OP_REQUEST);
  inet_mac_copy(a + 8, n->mac);
  inet_store32(a + 14, ip);
  memset(a + 18, 0, ETH_ALEN);
  inet_store32(a + 24, dst);
  vnet_tx_send(n, 0, slot, ETH_HLEN + ARP_LEN, NULL);
  vnet_kick(n, 0);
}

// RFC 826 request/reply for dst; false if nobody answered within ARP_TIMEOUT_MS.
static bool resolve(struct vnet* n, uint32_t ip, uint32_t dst, uint8_t mac[ETH_ALEN]) {
  const uint64_t t0 = rt_ticks();
  const uint64_t timeout = rt_ms_to_ticks(ARP_TIMEOUT_MS);
  const uint64_t retry = rt_ms_to_ticks(ARP_RETRY_MS);
  uint64_t next_send = t0;
  for (;;) {
    const uint64_t now = rt_ticks();
    if (now - t0 >= timeout) return false;
    if ((int64_t)(now - next_send) >= 0) {
      send_arp_request(n, ip, dst);
      next_send = now + retry;
    }
    for (unsigned q = 0; q < n->npairs; q++) {
      struct vnet_pkt p;
      while (vnet_rx(n, q, &p)) {
        const uint8_t* f = p.frame;
        const uint8_t* a = f + ETH_HLEN;
        const bool match = p.len >= ETH_HLEN + ARP_LEN && inet_get16(f + 12) == ETH_P_ARP &&
                           inet_get16(a + 6) == ARP_OP_REPLY && inet_load32(a + 14) == dst &&
                           !inet_mac_is_group(a + 8);
        if (match) inet_mac_copy(mac, a + 8);
        vnet_rx_done(n, &p);
        if (match) return true;
      }
      vnet_tx_reclaim(n, q);
      vnet_kick(n, q);
    }
  }
}

// Ethernet + IPv4 + UDP with `size` payload bytes; returns the frame length.
static uint32_t build_frame(const struct vnet* n, const uint8_t* dmac, uint32_t ip, uint32_t dst,
                            uint16_t sport, uint16_t dport, uint32_t size, bool offload) {
  uint8_t* f = g_frame;
  inet_mac_copy(f, dmac);
  inet_mac_copy(f + ETH_ALEN, n->mac);
  inet_put16(f + 12, ETH_P_IPV4);
  uint8_t* iph = f + ETH_HLEN;
  iph[0] = 0x45;
  iph[1] = 0;
  inet_put16(iph + 2, (uint16_t)(IPV4_HLEN + UDP_HLEN + size));
  inet_put16(iph + 4, 0);
  inet_put16(iph + 6, IPV4_DF);
  iph[8] = 64;
  iph[9] = IPPROTO_UDP;
  inet_store16(iph + 10, 0);
  inet_store32(iph + 12, ip);
  inet_store32(iph + 16, dst);
  inet_store16(iph + 10, inet_csum_finish(inet_csum_add(0, iph, IPV4_HLEN)));
  uint8_t* u = iph + IPV4_HLEN;
  inet_put16(u, sport);
  inet_put16(u + 2, dport);
  inet_put16(u + 4, (uint16_t)(UDP_HLEN + size));
  inet_store16(u + 6, 0);
  for (uint32_t i = 0; i < size; i++) u[UDP_HLEN + i] = (uint8_t)(i * 7 + 1);
  const uint64_t pseudo = inet_pseudo_sum(ip, dst, IPPROTO_UDP, (uint16_t)(UDP_HLEN + size));
  if (offload) {
    // §5.1.6.2: with NEEDS_CSUM the field holds the pseudo-header sum; the device adds the
    // UDP header and data and stores the complement.
    inet_store16(u + 6, inet_csum_fold(pseudo));
  } else {
    uint16_t c = inet_csum_finish(inet_csum_add(pseudo, u, UDP_HLEN + size));
    inet_store16(u + 6, c == 0 ? 0xffff : c);
  }
  return ETH_HLEN + IPV4_HLEN + UDP_HLEN + size;
}

int payload_main(const char* cmdline) {
  (void)cmdline;
  uint32_t ip = INET_IPV4(10, 0, 2, 15), dst = INET_IPV4(10, 0, 2, 1);
  uint64_t port = 9, sport = 4242, size = 64, seconds = 3;
  if (!get_ipv4("ip", &ip) || !get_ipv4("dst", &dst) || !get_u64("port", &port, 0xffff) ||
      !get_u64("sport", &sport, 0xffff) || !get_u64("size", &size, 0xffff) ||
      !get_u64("seconds", &seconds, 3600)) {
    return 1;
  }
  uint8_t dmac[ETH_ALEN];
  char val[32];
  const bool have_dmac = rt_cmdline_get("dstmac", val, sizeof(val));
  if (have_dmac && !inet_parse_mac(val, strlen(val), dmac)) {
    rt_printf("net_bench: bad dstmac=%s\n", val);
    return 1;
  }

  struct virtio_mmio_dev dev;
  if (!virtio_mmio_find(VIRTIO_ID_NET, &dev, "net_bench")) return 1;
  struct vnet_opts opts;
  vnet_opts_from_cmdline(&opts);
  struct vnet* n = &g_net;
  const int err = vnet_init(n, &dev, &opts);
  if (err != VIRTIO_OK) {
    rt_printf("net_bench: FAIL - init: %s\n", vnet_strerror(err));
    return 1;
  }
  // One IPv4 packet per frame: payload <= mtu - 28 (and what a TX slot holds).
  uint64_t max_size = (uint64_t)n->mtu - IPV4_HLEN - UDP_HLEN;
  if (max_size > VNET_MAX_FRAME - ETH_HLEN - IPV4_HLEN - UDP_HLEN) {
    max_size = VNET_MAX_FRAME - ETH_HLEN - IPV4_HLEN - UDP_HLEN;
  }
  if (size > max_size) {
    rt_printf("net_bench: size=%lu exceeds %lu (mtu %u); using %lu\n", size, max_size, n->mtu,
              max_size);
    size = max_size;
  }
  char s1[18], s2[16], s3[16];
  rt_printf("net_bench: features=0x%lx pairs=%u queue=%u mac=%s ip=%s dst=%s port=%lu size=%lu\n",
            n->dev.features, n->npairs, n->tx[0].vq->size, inet_mac_str(n->mac, s1),
            inet_ipv4_str(ip, s2), inet_ipv4_str(dst, s3), port, size);

  if (!have_dmac) {
    if (resolve(n, ip, dst, dmac)) {
      rt_printf("net_bench: %s is at %s\n", inet_ipv4_str(dst, s2), inet_mac_str(dmac, s1));
    } else {
      rt_printf("net_bench: no ARP reply from %s in %u ms; using ff:ff:ff:ff:ff:ff\n",
                inet_ipv4_str(dst, s2), ARP_TIMEOUT_MS);
      memset(dmac, 0xff, ETH_ALEN);
    }
  }
  int ferr = vnet_tx_flush(n, 1000);  // the ARP requests: every slot free before prefilling
  if (ferr != VIRTIO_OK) {
    rt_printf("net_bench: FAIL - flush before start: %s\n", vnet_strerror(ferr));
    return 1;
  }

  const bool offload = vnet_has(n, VIRTIO_NET_F_CSUM);
  const uint32_t flen =
      build_frame(n, dmac, ip, dst, (uint16_t)sport, (uint16_t)port, (uint32_t)size, offload);
  const struct vnet_csum csum = {ETH_HLEN + IPV4_HLEN, 6};
  const struct vnet_csum* cs = offload ? &csum : NULL;
  for (unsigned q = 0; q < n->npairs; q++) {
    for (uint16_t s = 0; s < n->tx[q].nslots; s++)
      memcpy(vnet_tx_slot_frame(n, q, s), g_frame, flen);
  }

  const uint64_t hz = rt_ticks_hz();
  const uint64_t completed0 = n->st.tx_completed;
  rt_printf("bench: tx start\n");
  const uint64_t t0 = rt_ticks();
  const uint64_t end = t0 + seconds * hz;
  uint64_t now = t0;
  // Fill every TX queue, then keep resending whatever the device hands back.
  for (unsigned q = 0; q < n->npairs; q++) {
    uint16_t s;
    while (vnet_tx_alloc(n, q, &s) != NULL) vnet_tx_send(n, q, s, flen, cs);
    vnet_kick(n, q);
  }
  while ((int64_t)(end - now) > 0) {
    for (unsigned q = 0; q < n->npairs; q++) {
      if (vnet_tx_recycle(n, q) != 0) vnet_kick(n, q);
      struct vnet_pkt p;
      while (vnet_rx(n, q, &p)) vnet_rx_done(n, &p);
    }
    now = rt_ticks();
  }
  ferr = vnet_tx_flush(n, 2000);
  const uint64_t t1 = rt_ticks();
  const uint64_t packets = n->st.tx_completed - completed0;
  rt_printf("bench: tx done packets=%lu bytes=%lu\n", packets, packets * flen);
  const uint64_t ms = (now - t0) / (hz / 1000);
  rt_printf(
      "net_bench: elapsed_ms=%lu (+%lu ms draining) pps=%lu frame=%u tsc_hz=%lu tx_bad=%lu "
      "notify_tx=%lu notify_skipped=%lu%s%s\n",
      ms, (t1 - now) / (hz / 1000), ms != 0 ? packets * 1000 / ms : 0, flen, hz, n->st.tx_bad,
      n->st.notify_tx, n->st.notify_skipped, ferr != VIRTIO_OK ? " flush: " : "",
      ferr != VIRTIO_OK ? vnet_strerror(ferr) : "");
  vnet_reset(n);
  rt_printf("net_bench: done\n");
  return 0;
}
