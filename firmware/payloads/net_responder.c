// net_responder: answers ARP, ICMP echo and UDP echo on the first virtio-net device.
//
// Command line: ip=<a.b.c.d> (10.0.2.15) port=<udp port> (7) seconds=<n> (0 = until `quit`),
// rxpause=<ms> (after `ready`, ignore the receive ring for that long: a backpressure test),
// plus the driver options of vnet_opts_from_cmdline (mq, csum, nomrg, split, rxbuf=, qsize=).
//
// - ARP requests (RFC 826) for ip: reply with the device MAC.
// - ICMP echo requests (RFC 792) to ip: echo reply with the same id, sequence and data.
// - UDP datagrams (RFC 768) to ip:port: the payload goes back byte-exact to the sender's
//   address and port. A payload of exactly "quit" is echoed too, then the payload prints
//   `net_responder: quit` and returns 0.
// Anything else (IPv6, other protocols or ports, fragments, frames to other or group MACs,
// packets from broadcast/multicast sources, bad IPv4 header checksums) is counted as dropped.
//
// Replies are built in place in the receive buffer and transmitted from it (vnet_tx_reply): no
// per-packet copies and no checksum loops over the payload. Swapping addresses and ports leaves
// the UDP checksum valid (the ones' complement sum is commutative), the ICMP checksum is
// updated incrementally (RFC 1624) for the type change, and only the 20-byte IPv4 header is
// summed. IPv4 options are parsed and dropped from replies (the Ethernet and IPv4 headers move
// forward over them). Packets that arrive with a partial checksum (VIRTIO_NET_HDR_F_NEEDS_CSUM,
// only with `csum`) go back the same way when the device offers VIRTIO_NET_F_CSUM, otherwise
// their checksum is completed in software first.
#include "inet.h"
#include "rt.h"
#include "virtio_mmio.h"
#include "virtio_net.h"

static struct vnet g_net;
static uint32_t g_ip;
static uint16_t g_port;
static bool g_quit;

static struct { uint64_t rx, tx, arp, icmp, udp, dropped; } g_cnt;
static uint64_t g_rx_pair[VNET_MAX_PAIRS];  // frames per queue pair (printed with mq)

#define HEALTH_EVERY_MS 200

// ---- ARP -----------------------------------------------------------------------------------

static bool handle_arp(const struct vnet_pkt* p) {
  uint8_t* f = p->frame;
  if (p->len < ETH_HLEN + ARP_LEN) return false;
  uint8_t* a = f + ETH_HLEN;
  // Ethernet (1) / IPv4, 6-byte hardware and 4-byte protocol addresses, a request for us.
  if (inet_get16(a) != 1 || inet_get16(a + 2) != ETH_P_IPV4 || a[4] != ETH_ALEN || a[5] != 4 ||
      inet_get16(a + 6) != ARP_OP_REQUEST || inet_load32(a + 24) != g_ip ||
      inet_mac_is_group(a + 8)) {
    return false;
  }
  // Reply in place: to the sender's hardware address, from ours.
  inet_mac_copy(f, a + 8);
  inet_mac_copy(f + ETH_ALEN, g_net.mac);
  inet_put16(a + 6, ARP_OP_REPLY);
  inet_mac_copy(a + 18, a + 8);               // target hw = requester
  inet_store32(a + 24, inet_load32(a + 14));  // target ip = requester
  inet_mac_copy(a + 8, g_net.mac);            // sender hw = us
  inet_store32(a + 14, g_ip);                 // sender ip = us
  if (vnet_tx_reply(&g_net, p, f, ETH_HLEN + ARP_LEN, NULL) != VIRTIO_OK) {
    g_cnt.dropped++;  // no TX slot: the buffer went back to the RX queue
    return true;
  }
  g_cnt.arp++;
  g_cnt.tx++;
  return true;
}

// ---- IPv4 ----------------------------------------------------------------------------------

// Completes a partial checksum (§5.1.6.4, VIRTIO_NET_HDR_F_NEEDS_CSUM) in software: the folded
// complement of the sum over [csum_start, end) goes to csum_start + csum_offset.
static bool complete_csum(const struct vnet_pkt* p, uint32_t end, bool udp) {
  const uint32_t start = p->csum_start, field = start + p->csum_offset;
  if (start >= end || field + 2 > end) return false;
  uint16_t c = inet_csum_finish(inet_csum_add(0, p->frame + start, end - start));
  if (udp && c == 0) c = 0xffff;  // RFC 768: 0 means "no checksum"
  inet_store16(p->frame + field, c);
  return true;
}

// Turns the IPv4 packet (header length ihl, total length tot) around in place and sends it.
// The Ethernet header and the fixed IPv4 header move forward over any options, so the
// transport header and data stay where they are.
static bool send_ip_reply(const struct vnet_pkt* p, uint32_t ihl, uint32_t tot,
                          const struct vnet_csum* csum) {
  const uint32_t optlen = ihl - IPV4_HLEN;
  uint8_t* f = p->frame + optlen;
  if (optlen != 0) memmove(f, p->frame, ETH_HLEN + IPV4_HLEN);
  uint8_t* ip = f + ETH_HLEN;
  inet_mac_copy(f, f + ETH_ALEN);
  inet_mac_copy(f + ETH_ALEN, g_net.mac);
  ip[0] = 0x45;
  inet_put16(ip + 2, (uint16_t)(tot - optlen));
  inet_put16(ip + 6, inet_get16(ip + 6) & IPV4_DF);
  ip[8] = 64;  // TTL
  const uint32_t src = inet_load32(ip + 12);
  inet_store32(ip + 12, inet_load32(ip + 16));
  inet_store32(ip + 16, src);
  inet_store16(ip + 10, 0);
  inet_store16(ip + 10, inet_csum_finish(inet_csum_add(0, ip, IPV4_HLEN)));
  return vnet_tx_reply(&g_net, p, f, ETH_HLEN + tot - optlen, csum) == VIRTIO_OK;
}

static bool handle_icmp(const struct vnet_pkt* p, uint8_t* l4, uint32_t l4len, uint32_t ihl,
                        uint32_t tot) {
  if (l4len < ICMP_HLEN || l4[0] != ICMP_ECHO_REQUEST || l4[1] != 0) return false;
  if ((p->hdr_flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) && !complete_csum(p, ETH_HLEN + tot, false)) {
    return false;
  }
  // Type 8 -> 0: one 16-bit word of the message changes; identifier, sequence and data stay.
  const uint16_t old_word = inet_load16(l4);
  l4[0] = ICMP_ECHO_REPLY;
  inet_store16(l4 + 2, inet_csum_update16(inet_load16(l4 + 2), old_word, inet_load16(l4)));
  if (!send_ip_reply(p, ihl, tot, NULL)) {
    g_cnt.dropped++;
    return true;
  }
  g_cnt.icmp++;
  g_cnt.tx++;
  return true;
}

static bool handle_udp(const struct vnet_pkt* p, uint8_t* l4, uint32_t l4len, uint32_t ihl) {
  if (l4len < UDP_HLEN || inet_get16(l4 + 2) != g_port) return false;
  const uint32_t ulen = inet_get16(l4 + 4);
  if (ulen < UDP_HLEN || ulen > l4len) return false;
  const uint32_t tot = ihl + ulen;  // ignore anything after the datagram
  const bool quit = ulen == UDP_HLEN + 4 && memcmp(l4 + UDP_HLEN, "quit", 4) == 0;

  struct vnet_csum offload;
  const struct vnet_csum* csum = NULL;
  if (p->hdr_flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) {
    const uint32_t optlen = ihl - IPV4_HLEN;
    if (p->csum_start < ETH_HLEN + ihl ||
        (uint32_t)p->csum_start + p->csum_offset + 2 > ETH_HLEN + tot) {
      return false;
    }
    if (vnet_has(&g_net, VIRTIO_NET_F_CSUM)) {
      // The field holds the pseudo-header sum, which the swap below does not change: let the
      // device finish it on the way out, at the same place relative to the moved headers.
      offload = (struct vnet_csum){(uint16_t)(p->csum_start - optlen), p->csum_offset};
      csum = &offload;
    } else if (!complete_csum(p, ETH_HLEN + tot, true)) {
      return false;
    }
  }
  // A complete checksum (or 0, none) stays valid: the swapped fields sum the same.
  const uint16_t sport = inet_load16(l4);
  inet_store16(l4, inet_load16(l4 + 2));
  inet_store16(l4 + 2, sport);
  if (quit) g_quit = true;
  if (!send_ip_reply(p, ihl, tot, csum)) {
    g_cnt.dropped++;
    return true;
  }
  g_cnt.udp++;
  g_cnt.tx++;
  return true;
}

static bool is_bad_source(uint32_t ip) {
  const uint8_t first = (uint8_t)ip;
  return ip == 0 || ip == 0xffffffffu || (first & 0xf0) == 0xe0 || ip == g_ip;
}

static bool handle_ipv4(const struct vnet_pkt* p) {
  uint8_t* f = p->frame;
  // Unicast to us only: no replies to broadcast or multicast frames.
  if (!inet_mac_eq(f, g_net.mac) || p->len < ETH_HLEN + IPV4_HLEN) return false;
  uint8_t* ip = f + ETH_HLEN;
  const uint32_t ihl = (uint32_t)(ip[0] & 0xf) * 4;
  if ((ip[0] >> 4) != 4 || ihl < IPV4_HLEN) return false;
  const uint32_t tot = inet_get16(ip + 2);
  if (tot < ihl || tot > p->len - ETH_HLEN) return false;  // the frame may carry padding
  if (inet_get16(ip + 6) & (IPV4_MF | IPV4_FRAG_OFFSET_MASK)) return false;  // fragment
  if (inet_load32(ip + 16) != g_ip || is_bad_source(inet_load32(ip + 12))) return false;
  if (inet_csum_fold(inet_csum_add(0, ip, ihl)) != 0xffff) return false;
  uint8_t* l4 = ip + ihl;
  switch (ip[9]) {
    case IPPROTO_ICMP:
      return handle_icmp(p, l4, tot - ihl, ihl, tot);
    case IPPROTO_UDP:
      return handle_udp(p, l4, tot - ihl, ihl);
    default:
      return false;
  }
}

// Handles one frame. A reply hands the buffer to the transmit side; everything else gives it
// straight back to the receive queue.
static void handle(const struct vnet_pkt* p) {
  bool taken = false;
  if (p->len >= ETH_HLEN) {
    const uint16_t type = inet_get16(p->frame + 12);
    if (type == ETH_P_ARP) {
      taken = handle_arp(p);
    } else if (type == ETH_P_IPV4) {
      taken = handle_ipv4(p);
    }
  }
  if (!taken) {
    g_cnt.dropped++;
    vnet_rx_done(&g_net, p);
  }
}

// ---- Main ----------------------------------------------------------------------------------

static void print_counters(void) {
  rt_printf("net_responder: rx=%lu tx=%lu arp=%lu icmp=%lu udp=%lu dropped=%lu\n", g_cnt.rx,
            g_cnt.tx, g_cnt.arp, g_cnt.icmp, g_cnt.udp, g_cnt.dropped);
  if (g_net.npairs > 1) {
    rt_printf("net_responder: rx per pair:");
    for (unsigned q = 0; q < g_net.npairs; q++) rt_printf(" %lu", g_rx_pair[q]);
    rt_printf("\n");
  }
  const struct vnet_stats* s = &g_net.st;
  rt_printf(
      "net_responder: driver rx_merged=%lu rx_bad=%lu rx_oversize=%lu rx_csum_partial=%lu "
      "rx_csum_valid=%lu tx_completed=%lu tx_full=%lu tx_bad=%lu notify_rx=%lu notify_tx=%lu "
      "notify_skipped=%lu\n",
      s->rx_merged, s->rx_bad, s->rx_oversize, s->rx_csum_partial, s->rx_csum_valid,
      s->tx_completed, s->tx_full, s->tx_bad, s->notify_rx, s->notify_tx, s->notify_skipped);
}

int payload_main(const char* cmdline) {
  (void)cmdline;
  char val[32];
  g_ip = INET_IPV4(10, 0, 2, 15);
  if (rt_cmdline_get("ip", val, sizeof(val)) && !inet_parse_ipv4(val, strlen(val), &g_ip)) {
    rt_printf("net_responder: bad ip=%s\n", val);
    return 1;
  }
  uint64_t v = 7;
  if (rt_cmdline_get("port", NULL, 0) && (!rt_cmdline_get_u64("port", &v) || v > 0xffff)) {
    rt_printf("net_responder: bad port\n");
    return 1;
  }
  g_port = (uint16_t)v;
  uint64_t seconds = 0;
  rt_cmdline_get_u64("seconds", &seconds);

  struct virtio_mmio_dev dev;
  if (!virtio_mmio_find(VIRTIO_ID_NET, &dev, "net_responder")) return 1;
  struct vnet_opts opts;
  vnet_opts_from_cmdline(&opts);
  struct vnet* n = &g_net;
  const int err = vnet_init(n, &dev, &opts);
  if (err != VIRTIO_OK) {
    rt_printf("net_responder: FAIL - init: %s\n", vnet_strerror(err));
    return 1;
  }
  char mac[18], ip[16];
  rt_printf(
      "net_responder: features=0x%lx (offered 0x%lx) pairs=%u/%u queue=%u/%u rxbuf=%u%s mtu=%u "
      "link=%s buffers@0x%lx\n",
      n->dev.features, n->dev.device_features, n->npairs, n->max_pairs, n->rx[0].vq->size,
      n->tx[0].vq->size, n->rx_buf_len, n->split ? " split" : "", n->mtu,
      (n->status & VIRTIO_NET_S_LINK_UP) ? "up" : "down", (unsigned long)n->mem_base);
  rt_printf("net_responder: mac=%s ip=%s port=%u ready\n", inet_mac_str(n->mac, mac),
            inet_ipv4_str(g_ip, ip), g_port);

  const uint64_t hz = rt_ticks_hz();
  // rxpause=<ms>: leave the receive ring alone for a while, so the device runs out of buffers
  // and must hold further frames back (the host's RX backpressure test).
  uint64_t rxpause_ms = 0;
  if (rt_cmdline_get_u64("rxpause", &rxpause_ms) && rxpause_ms > 0) {
    rt_printf("net_responder: rx paused\n");
    const uint64_t until = rt_ticks() + hz / 1000 * rxpause_ms;
    while ((int64_t)(rt_ticks() - until) < 0) rt_cpu_relax();
    rt_printf("net_responder: rx resumed\n");
  }
  const uint64_t t0 = rt_ticks();
  const uint64_t health_every = hz / 1000 * HEALTH_EVERY_MS;
  uint64_t next_health = t0 + health_every;
  bool timed_out = false;
  while (!g_quit) {
    for (unsigned q = 0; q < n->npairs && !g_quit; q++) {
      struct vnet_pkt p;
      // Bounded batch, so one busy queue cannot starve the others' notifications.
      for (unsigned budget = 64; budget > 0 && vnet_rx(n, q, &p); budget--) {
        g_cnt.rx++;
        g_rx_pair[q]++;
        handle(&p);
        if (g_quit) break;
      }
      vnet_tx_reclaim(n, q);  // re-posts RX buffers whose replies went out
      vnet_kick(n, q);
    }
    const uint64_t now = rt_ticks();
    if (seconds != 0 && now - t0 >= seconds * hz) {
      timed_out = true;
      break;
    }
    if ((int64_t)(now - next_health) >= 0) {
      next_health = now + health_every;
      const int h = vnet_check_health(n);
      if (h != VIRTIO_OK) {
        rt_printf("net_responder: FAIL - %s\n", vnet_strerror(h));
        print_counters();
        return 1;
      }
    }
  }
  // Let the last replies (the echo of "quit") leave before stopping the device.
  const int ferr = vnet_tx_flush(n, 1000);
  if (g_quit) rt_printf("net_responder: quit\n");
  if (timed_out) rt_printf("net_responder: %lu s elapsed\n", seconds);
  if (ferr != VIRTIO_OK) rt_printf("net_responder: flush: %s\n", vnet_strerror(ferr));
  print_counters();
  vnet_reset(n);
  return 0;
}
