// virtio-vsock payload (virtio 1.2 §5.10): a minimal polling vsock driver that tests the VMM's
// device from the guest side and then serves as an echo server for the host's tests.
//   1. sets up the rx, tx and event queues, posts 64 receive buffers (a 4140-byte descriptor;
//      a 44-byte header descriptor then 4096 bytes; the header split 16 + 28, then 4096 bytes)
//      and 4 event buffers, and prints "vsock: cid=N" (checked against `vsock.cid=N` if given);
//   2. `vsock.connect=P`: connects to host port P (the host's echo listener at <uds>_P), sends
//      `vsock.bytes` (1 MiB) of pattern (byte i is (uint8_t)(i * 7 + 13)) within the host's
//      credit, checks that exactly those bytes come back, sends SHUTDOWN and waits for the RST;
//   3. `vsock.refused=P`: a REQUEST to host port P, where nothing listens, must be answered RST;
//   4. `vsock.hostile=P` (an echo listener): hostile packets (a type-2 REQUEST, a RW on no
//      connection, a wrong source CID, a 20-byte chain, a device-writable header, a RW whose
//      len is beyond its chain, an unknown op, a credit overrun), each answered as expected and
//      followed by a 4 KiB echo round trip that shows the device still works;
//   5. serves: answers REQUESTs to `vsock.port` (5000) with RESPONSE (others with RST), echoes
//      every RW on its connection within the host's credit (up to 64 connections, each with a
//      256 KiB buffer: our buf_alloc), prints "vsock: ready port N", and ends at a REQUEST to
//      `vsock.quit_port` (5999): answered RST, then "vsock: served C connections, E bytes
//      echoed" and the summary.
// A TRANSPORT_RESET event (after a snapshot restore) drops every connection and prints
// "vsock: transport reset". Everything the device hands back is checked before it is used (used
// length against the header's len, CIDs, type, op); a bogus packet or used entry is printed and
// counted, and the count must be 0 at the end. Waits give up after `vsock.timeout_ms` (5000)
// without progress; "nothing may answer" windows last `vsock.quiet_ms` (500).
// Prints "vsock: N passed, M failed"; returns 0 iff all passed.
#include <linux/virtio_vsock.h>

#include "rt.h"
#include "virtio_mmio.h"

#define HOST_CID 2u  // VMADDR_CID_HOST
#define HDR_LEN ((uint32_t)sizeof(struct virtio_vsock_hdr))
#define RX_SLOTS 64
#define RX_DATA 4096u
#define EV_SLOTS 4
#define TX_SLOTS 64
#define TX_DATA 4096u
#define TX_DESC_MAX 3  // descriptors of the longest chain we send
#define MAX_CONNS 64
#define CTL_SLOTS 256
#define BUF_ALLOC (256u * 1024)   // per connection; a power of two
#define BUF_MIN (16u * 1024)      // what buf_alloc may shrink to when RAM is short
#define FIRST_PORT 1024u          // our client connections' local ports count up from here
#define CREDIT_REQ_MS 100         // between CREDIT_REQUESTs while the peer's credit is 0
#define HEALTH_MS 10              // between looks at Status (DEVICE_NEEDS_RESET)
#define PUMP_BURST 4              // RW packets per connection per round
#define OVERRUN_EXTRA (4u << 20)  // hostile (g): bytes sent past the host's buf_alloc at most
#define ROUND_TRIP_BYTES 4096u    // after each hostile case
#define BOGUS_PRINT_MAX 16
#define OP_UNKNOWN 99

_Static_assert(sizeof(struct virtio_vsock_hdr) == 44, "virtio_vsock_hdr is 44 bytes (§5.10.6)");
_Static_assert(sizeof(struct virtio_vsock_event) == 4, "virtio_vsock_event is 4 bytes");
_Static_assert((BUF_ALLOC & (BUF_ALLOC - 1)) == 0, "the echo buffers are rings");

enum { Q_RX, Q_TX, Q_EVENT };
enum { S_FREE, S_CONNECTING, S_ESTABLISHED, S_CLOSED };  // S_CLOSED: kept for the test to read
enum { R_SERVER, R_CLIENT, R_RAW };  // R_RAW: data is received but never consumed

struct conn {
  uint8_t state, role;
  bool rst_seen;   // closed by the peer's RST
  bool peer_shut;  // the peer sent SHUTDOWN: echo what is pending, then RST
  uint32_t lport, pport;
  uint32_t peer_buf_alloc, peer_fwd_cnt, tx_cnt;  // §5.10.6.3 credit, the peer's side
  uint32_t rx_cnt, fwd_cnt, fwd_sent;             // ours: received, consumed, advertised
  uint8_t* pend;                                  // R_SERVER: g_buf_alloc bytes, a ring
  uint32_t pend_off, pend_len;
  uint64_t src_total, src_sent, rx_total, mismatches;  // R_CLIENT
  uint64_t credit_req_at;
};

struct ctl {  // a control packet waiting for a TX slot
  uint16_t op;
  uint32_t flags, lport, pport;
};

struct rx_mem {
  uint8_t b[HDR_LEN + RX_DATA];
} __attribute__((aligned(64)));
struct tx_mem {
  uint8_t b[HDR_LEN + TX_DATA];
} __attribute__((aligned(64)));
struct tx_meta {
  bool busy, hostile;
};

static struct virtio_mmio_dev g_dev;
static struct virtq* g_vq[3];
static uint64_t g_cid;
static uint32_t g_buf_alloc = BUF_ALLOC;
static uint8_t* g_pend_region;  // MAX_CONNS * g_buf_alloc bytes of RAM past the image
static uint64_t g_timeout, g_quiet, g_next_health;
static bool g_dead;  // the device asked for a reset: everything stops

static struct rx_mem g_rx[RX_SLOTS];
static uint8_t g_rx_hdr[RX_SLOTS][HDR_LEN];  // the header buffers of layout 1
static unsigned g_rx_posted;
static struct virtio_vsock_event g_ev[EV_SLOTS];
static struct tx_mem g_tx[TX_SLOTS];
static struct tx_meta g_txm[TX_SLOTS];
static unsigned g_tx_next, g_tx_layout;
static bool g_kick[3];

static struct conn g_conns[MAX_CONNS];
static struct ctl g_ctl[CTL_SLOTS];
static unsigned g_ctl_head, g_ctl_len;
static uint64_t g_moves;  // RW packets moved either way: progress for the waits

// The reply to a hostile packet, caught before the normal dispatch.
static struct {
  bool on;
  uint32_t lport, pport;
  uint16_t op;  // 0 = nothing yet
} g_watch;
static bool g_hostile_back;  // the hostile chain came back on the used ring
static uint32_t g_hostile_len;

static bool g_listening, g_quit;
static uint32_t g_port = 5000, g_quit_port = 5999, g_next_port = FIRST_PORT;
static struct { uint64_t bogus, stray, ctl_dropped, resets, served, echoed; } g_cnt;

static uint8_t pattern(uint64_t i) { return (uint8_t)(i * 7 + 13); }

static void fill_pattern(uint8_t* p, uint64_t off, uint32_t n) {
  for (uint32_t k = 0; k < n; k++) p[k] = pattern(off + k);
}

static const char* op_name(uint16_t op) {
  static const char* const kNames[] = {"nothing",  "REQUEST", "RESPONSE",      "RST",
                                       "SHUTDOWN", "RW",      "CREDIT_UPDATE", "CREDIT_REQUEST"};
  return op < RT_ARRAY_SIZE(kNames) ? kNames[op] : "an unknown op";
}

static void bogus(const char* fmt, ...) RT_PRINTF(1, 2);
static void bogus(const char* fmt, ...) {
  if (g_cnt.bogus++ >= BOGUS_PRINT_MAX) return;
  va_list ap;
  va_start(ap, fmt);
  rt_print("vsock: bogus from the device: ");
  rt_vprintf(fmt, ap);
  va_end(ap);
  rt_putc('\n');
}

// ---- Connections ---------------------------------------------------------------------------

static struct conn* conn_find(uint32_t lport, uint32_t pport) {
  for (unsigned i = 0; i < MAX_CONNS; i++) {
    struct conn* c = &g_conns[i];
    if (c->state != S_FREE && c->state != S_CLOSED && c->lport == lport && c->pport == pport) {
      return c;
    }
  }
  return NULL;
}

static struct conn* conn_alloc(uint8_t role, uint32_t lport, uint32_t pport) {
  for (unsigned i = 0; i < MAX_CONNS; i++) {
    struct conn* c = &g_conns[i];
    if (c->state != S_FREE) continue;
    memset(c, 0, sizeof(*c));
    c->role = role;
    c->lport = lport;
    c->pport = pport;
    if (g_pend_region != NULL) c->pend = g_pend_region + (size_t)i * g_buf_alloc;
    return c;
  }
  return NULL;
}

static void ctl_push(uint16_t op, uint32_t flags, uint32_t lport, uint32_t pport) {
  if (g_ctl_len == CTL_SLOTS) {
    g_cnt.ctl_dropped++;
    return;
  }
  g_ctl[(g_ctl_head + g_ctl_len++) % CTL_SLOTS] = (struct ctl){op, flags, lport, pport};
}

// The connection is over: a server's is freed, a test's kept (S_CLOSED) for the test to read.
static void conn_close(struct conn* c) {
  if (c->role == R_SERVER) {
    c->state = S_FREE;
  } else {
    c->state = S_CLOSED;
  }
}

static void conn_abort(struct conn* c) {
  ctl_push(VIRTIO_VSOCK_OP_RST, 0, c->lport, c->pport);
  conn_close(c);
}

// A test is done with C: reset it if still open, free the slot.
static void conn_drop(struct conn* c) {
  if (c == NULL) return;
  if (c->state == S_CONNECTING || c->state == S_ESTABLISHED) {
    ctl_push(VIRTIO_VSOCK_OP_RST, 0, c->lport, c->pport);
  }
  c->state = S_FREE;
}

static uint32_t peer_credit(const struct conn* c) {
  const uint32_t in_flight = c->tx_cnt - c->peer_fwd_cnt;
  return in_flight >= c->peer_buf_alloc ? 0 : c->peer_buf_alloc - in_flight;
}

// ---- TX ------------------------------------------------------------------------------------

// A free TX slot, provided the queue also has descriptors for the longest chain; else -1.
static int tx_alloc(void) {
  if (virtq_num_free(g_vq[Q_TX]) < TX_DESC_MAX) return -1;
  for (unsigned k = 0; k < TX_SLOTS; k++) {
    const unsigned i = (g_tx_next + k) % TX_SLOTS;
    if (!g_txm[i].busy) {
      g_tx_next = i + 1;
      return (int)i;
    }
  }
  return -1;
}

static bool tx_submit(unsigned i, const struct virtq_buf* v, unsigned n, bool hostile) {
  const int head = virtq_add(g_vq[Q_TX], v, n, false, &g_txm[i]);
  if (head < 0) {
    rt_printf("vsock: tx: %s\n", virtio_strerror(head));
    return false;
  }
  g_txm[i] = (struct tx_meta){true, hostile};
  g_kick[Q_TX] = true;
  return true;
}

static struct virtio_vsock_hdr make_hdr(uint16_t op, uint32_t lport, uint32_t pport, uint32_t len,
                                        const struct conn* c) {
  struct virtio_vsock_hdr h;
  memset(&h, 0, sizeof(h));
  h.src_cid = g_cid;
  h.dst_cid = HOST_CID;
  h.src_port = lport;
  h.dst_port = pport;
  h.len = len;
  h.type = VIRTIO_VSOCK_TYPE_STREAM;
  h.op = op;
  if (c != NULL) {
    h.buf_alloc = g_buf_alloc;
    h.fwd_cnt = c->fwd_cnt;
  }
  return h;
}

// Sends TX slot i, whose data area holds LEN bytes, as OP from LPORT to PPORT with C's credit
// information (none when C is NULL). RW payloads rotate through three layouts: one descriptor,
// header + data, header + data in two halves.
static bool send_on(unsigned i, uint16_t op, uint32_t flags, uint32_t lport, uint32_t pport,
                    struct conn* c, uint32_t len) {
  struct virtio_vsock_hdr h = make_hdr(op, lport, pport, len, c);
  h.flags = flags;
  uint8_t* b = g_tx[i].b;
  memcpy(b, &h, HDR_LEN);
  const unsigned layout = len < 2 ? 0 : g_tx_layout++ % 3;
  struct virtq_buf v[TX_DESC_MAX] = {{(uintptr_t)b, HDR_LEN + len, false}};
  unsigned n = 1;
  if (layout == 1) {
    v[0].len = HDR_LEN;
    v[1] = (struct virtq_buf){(uintptr_t)(b + HDR_LEN), len, false};
    n = 2;
  } else if (layout == 2) {
    v[0].len = HDR_LEN;
    v[1] = (struct virtq_buf){(uintptr_t)(b + HDR_LEN), len / 2, false};
    v[2] = (struct virtq_buf){(uintptr_t)(b + HDR_LEN + len / 2), len - len / 2, false};
    n = 3;
  }
  if (!tx_submit(i, v, n, false)) return false;
  if (c != NULL) {
    c->tx_cnt += len;
    c->fwd_sent = c->fwd_cnt;
  }
  if (len != 0) g_moves++;
  return true;
}

static bool send_ctl(uint16_t op, uint32_t flags, uint32_t lport, uint32_t pport, struct conn* c) {
  const int i = tx_alloc();
  return i >= 0 && send_on((unsigned)i, op, flags, lport, pport, c, 0);
}

static void ctl_flush(void) {
  while (g_ctl_len > 0) {
    const struct ctl* k = &g_ctl[g_ctl_head];
    struct conn* c = conn_find(k->lport, k->pport);
    if (!send_ctl(k->op, k->flags, k->lport, k->pport, c)) return;
    g_ctl_head = (g_ctl_head + 1) % CTL_SLOTS;
    g_ctl_len--;
  }
}

static void tx_reap(void) {
  for (;;) {
    void* cookie = NULL;
    uint32_t len = 0;
    const int r = virtq_get_used(g_vq[Q_TX], &cookie, &len);
    if (r == 0) return;
    if (r < 0) {
      bogus("the tx used ring names a chain we did not post");
      continue;
    }
    struct tx_meta* m = cookie;
    m->busy = false;
    if (m->hostile) {
      g_hostile_back = true;
      g_hostile_len = len;
    } else if (len != 0) {
      bogus("tx used length %u (the chain has nothing device-writable)", len);
    }
  }
}

// ---- Sending data --------------------------------------------------------------------------

// Asks for credit while C has data to send and none to send it with (at most every 100 ms).
static void credit_stalled(struct conn* c) {
  const uint64_t now = rt_ticks();
  if (c->credit_req_at != 0 && now - c->credit_req_at < rt_ms_to_ticks(CREDIT_REQ_MS)) return;
  if (send_ctl(VIRTIO_VSOCK_OP_CREDIT_REQUEST, 0, c->lport, c->pport, c)) c->credit_req_at = now;
}

// One RW of echo (R_SERVER) or pattern (R_CLIENT) bytes, if C has some and the host the credit.
static bool pump_one(struct conn* c) {
  const uint32_t credit = peer_credit(c);
  uint64_t avail = c->role == R_SERVER ? c->pend_len : c->src_total - c->src_sent;
  if (c->role == R_SERVER && avail > g_buf_alloc - c->pend_off) avail = g_buf_alloc - c->pend_off;
  if (avail == 0) return false;
  if (credit == 0) {
    credit_stalled(c);
    return false;
  }
  if (avail > credit) avail = credit;
  const uint32_t n = avail < TX_DATA ? (uint32_t)avail : TX_DATA;
  const int i = tx_alloc();
  if (i < 0) return false;
  uint8_t* data = g_tx[i].b + HDR_LEN;
  if (c->role == R_CLIENT) {
    fill_pattern(data, c->src_sent, n);
    if (!send_on((unsigned)i, VIRTIO_VSOCK_OP_RW, 0, c->lport, c->pport, c, n)) return false;
    c->src_sent += n;
    return true;
  }
  // The echoed bytes count as consumed (fwd_cnt) once they are on their way back.
  memcpy(data, c->pend + c->pend_off, n);
  c->fwd_cnt += n;
  if (!send_on((unsigned)i, VIRTIO_VSOCK_OP_RW, 0, c->lport, c->pport, c, n)) {
    c->fwd_cnt -= n;
    return false;
  }
  c->pend_off = (c->pend_off + n) & (g_buf_alloc - 1);
  c->pend_len -= n;
  g_cnt.echoed += n;
  return true;
}

static void pump_conn(struct conn* c) {
  if (c->state != S_ESTABLISHED || c->role == R_RAW) return;
  for (int k = 0; k < PUMP_BURST && pump_one(c); k++) {
  }
  if (c->role == R_SERVER && c->peer_shut && c->pend_len == 0) {
    conn_abort(c);  // the host shut down and has had all its echo: close with RST
    return;
  }
  // Tell the host about what we consumed once it is half our buffer (RWs carry it as well).
  if (c->fwd_cnt - c->fwd_sent >= g_buf_alloc / 2) {
    send_ctl(VIRTIO_VSOCK_OP_CREDIT_UPDATE, 0, c->lport, c->pport, c);
  }
}

// ---- Receiving -----------------------------------------------------------------------------

// Layout i % 3: one 4140-byte descriptor; a separate 44-byte header buffer, then 4096 bytes; the
// header split 16 + 28 over two descriptors, then 4096 bytes. The payload is always at b + 44.
static bool rx_post(unsigned i) {
  uint8_t* b = g_rx[i].b;
  struct virtq_buf v[3] = {{(uintptr_t)b, HDR_LEN + RX_DATA, true}};
  unsigned n = 1;
  if (i % 3 == 1) {
    v[0] = (struct virtq_buf){(uintptr_t)g_rx_hdr[i], HDR_LEN, true};
    v[1] = (struct virtq_buf){(uintptr_t)(b + HDR_LEN), RX_DATA, true};
    n = 2;
  } else if (i % 3 == 2) {
    v[0].len = 16;
    v[1] = (struct virtq_buf){(uintptr_t)(b + 16), HDR_LEN - 16, true};
    v[2] = (struct virtq_buf){(uintptr_t)(b + HDR_LEN), RX_DATA, true};
    n = 3;
  }
  if (virtq_add(g_vq[Q_RX], v, n, false, &g_rx[i]) < 0) return false;
  g_kick[Q_RX] = true;
  return true;
}

static void on_request(const struct virtio_vsock_hdr* h, struct conn* c) {
  if (c != NULL) {  // a REQUEST for a connection that exists: reset it
    conn_abort(c);
    return;
  }
  const uint32_t port = h->dst_port;
  if (g_listening && port == g_quit_port) {
    g_quit = true;  // answered RST, then the payload ends
  } else if (g_listening && port == g_port && g_pend_region != NULL) {
    c = conn_alloc(R_SERVER, port, h->src_port);  // NULL: all 64 in use
  }
  if (c == NULL) {
    ctl_push(VIRTIO_VSOCK_OP_RST, 0, port, h->src_port);
    return;
  }
  c->state = S_ESTABLISHED;
  c->peer_buf_alloc = h->buf_alloc;
  c->peer_fwd_cnt = h->fwd_cnt;
  g_cnt.served++;
  ctl_push(VIRTIO_VSOCK_OP_RESPONSE, 0, c->lport, c->pport);
}

static void on_shutdown(struct conn* c, uint32_t flags) {
  c->peer_shut = true;
  // The host still reads (no SHUTDOWN_RCV): let the pump echo what is pending first.
  if (c->role == R_SERVER && !(flags & VIRTIO_VSOCK_SHUTDOWN_RCV) && flags != 0 &&
      c->pend_len > 0) {
    return;
  }
  conn_abort(c);
}

static void on_rw(struct conn* c, const uint8_t* data, uint32_t len) {
  if (c->state != S_ESTABLISHED || c->peer_shut) {
    conn_abort(c);
    return;
  }
  if (c->rx_cnt - c->fwd_cnt + len > g_buf_alloc) {
    bogus("%u bytes on %u:%u beyond the credit we gave (%u unconsumed, buf_alloc %u)", len,
          c->lport, c->pport, c->rx_cnt - c->fwd_cnt, g_buf_alloc);
    conn_abort(c);
    return;
  }
  c->rx_cnt += len;
  g_moves++;
  if (c->role == R_SERVER) {
    const uint32_t at = (c->pend_off + c->pend_len) & (g_buf_alloc - 1);
    const uint32_t first = len < g_buf_alloc - at ? len : g_buf_alloc - at;
    memcpy(c->pend + at, data, first);
    memcpy(c->pend, data + first, len - first);
    c->pend_len += len;
  } else if (c->role == R_CLIENT) {
    for (uint32_t k = 0; k < len; k++) {
      const uint64_t off = c->rx_total + k;
      if (off >= c->src_sent || data[k] != pattern(off)) c->mismatches++;
    }
    c->rx_total += len;
    c->fwd_cnt += len;
  }  // R_RAW: held, never consumed
}

static void dispatch(const struct virtio_vsock_hdr* h, const uint8_t* data) {
  struct conn* c = conn_find(h->dst_port, h->src_port);
  if (h->op == VIRTIO_VSOCK_OP_REQUEST) {
    on_request(h, c);
    return;
  }
  if (c == NULL) {
    g_cnt.stray++;
    if (h->op != VIRTIO_VSOCK_OP_RST) ctl_push(VIRTIO_VSOCK_OP_RST, 0, h->dst_port, h->src_port);
    return;
  }
  c->peer_buf_alloc = h->buf_alloc;
  c->peer_fwd_cnt = h->fwd_cnt;
  switch (h->op) {
    case VIRTIO_VSOCK_OP_RESPONSE:
      if (c->state == S_CONNECTING) {
        c->state = S_ESTABLISHED;
      } else {
        conn_abort(c);
      }
      break;
    case VIRTIO_VSOCK_OP_RST:
      c->rst_seen = true;
      conn_close(c);
      break;
    case VIRTIO_VSOCK_OP_SHUTDOWN:
      on_shutdown(c, h->flags);
      break;
    case VIRTIO_VSOCK_OP_RW:
      on_rw(c, data, h->len);
      break;
    case VIRTIO_VSOCK_OP_CREDIT_REQUEST:
      ctl_push(VIRTIO_VSOCK_OP_CREDIT_UPDATE, 0, c->lport, c->pport);
      break;
    default:  // CREDIT_UPDATE: the credit fields above are all it carries
      break;
  }
}

// The answer to a hostile packet: recorded, and kept from the normal dispatch.
static bool watch_match(const struct virtio_vsock_hdr* h) {
  if (!g_watch.on || h->dst_port != g_watch.lport || h->src_port != g_watch.pport ||
      h->src_cid != HOST_CID) {
    return false;
  }
  if (g_watch.op == 0) g_watch.op = h->op != 0 ? h->op : OP_UNKNOWN;
  // The device took the hostile REQUEST: close what it opened.
  if (h->op == VIRTIO_VSOCK_OP_RESPONSE) ctl_push(VIRTIO_VSOCK_OP_RST, 0, h->dst_port, h->src_port);
  return true;
}

// The packet in RX slot i, of which the device says it wrote USED bytes.
static void rx_packet(unsigned i, uint32_t used) {
  if (used < HDR_LEN || used > HDR_LEN + RX_DATA) {
    bogus("rx used length %u (the buffer holds %u)", used, HDR_LEN + RX_DATA);
    return;
  }
  struct virtio_vsock_hdr h;
  memcpy(&h, i % 3 == 1 ? g_rx_hdr[i] : g_rx[i].b, HDR_LEN);
  if (h.len != used - HDR_LEN) {
    bogus("rx header len %u, used length %u", h.len, used);
    return;
  }
  if (watch_match(&h)) return;
  const bool known_op = h.op >= VIRTIO_VSOCK_OP_REQUEST && h.op <= VIRTIO_VSOCK_OP_CREDIT_REQUEST;
  if (h.src_cid != HOST_CID || h.dst_cid != g_cid || h.type != VIRTIO_VSOCK_TYPE_STREAM ||
      !known_op || (h.len != 0 && h.op != VIRTIO_VSOCK_OP_RW)) {
    bogus("rx op %u type %u %llu:%u -> %llu:%u len %u", h.op, h.type, (unsigned long long)h.src_cid,
          h.src_port, (unsigned long long)h.dst_cid, h.dst_port, h.len);
    return;
  }
  dispatch(&h, g_rx[i].b + HDR_LEN);
}

static void rx_drain(void) {
  for (unsigned k = 0; k < RX_SLOTS; k++) {
    void* cookie = NULL;
    uint32_t len = 0;
    const int r = virtq_get_used(g_vq[Q_RX], &cookie, &len);
    if (r == 0) return;
    if (r < 0) {
      bogus("the rx used ring names a chain we did not post");
      continue;
    }
    const unsigned i = (unsigned)((struct rx_mem*)cookie - g_rx);
    rx_packet(i, len);
    if (!rx_post(i)) {
      g_rx_posted--;
      rt_printf("vsock: rx buffer %u not posted again (%u left)\n", i, g_rx_posted);
    }
  }
}

// ---- Events --------------------------------------------------------------------------------

static void ev_post(unsigned i) {
  g_ev[i].id = 0xffffffffu;  // not an event: what the device did not write is not taken for one
  struct virtq_buf b = {(uintptr_t)&g_ev[i], sizeof(g_ev[i]), true};
  if (virtq_add(g_vq[Q_EVENT], &b, 1, false, &g_ev[i]) >= 0) g_kick[Q_EVENT] = true;
}

// §5.10.6.6: the device lost every connection (a snapshot restore); the CID may have changed.
static void transport_reset(void) {
  for (unsigned i = 0; i < MAX_CONNS; i++) g_conns[i].state = S_FREE;
  g_ctl_len = 0;
  g_cnt.resets++;
  rt_print("vsock: transport reset\n");
  const uint64_t cid =
      virtio_config_read64(&g_dev, offsetof(struct virtio_vsock_config, guest_cid));
  if (cid != g_cid) rt_printf("vsock: cid=%llu\n", (unsigned long long)cid);
  g_cid = cid;
}

static void ev_drain(void) {
  for (;;) {
    void* cookie = NULL;
    uint32_t len = 0;
    const int r = virtq_get_used(g_vq[Q_EVENT], &cookie, &len);
    if (r == 0) return;
    if (r < 0) {
      bogus("the event used ring names a chain we did not post");
      continue;
    }
    const unsigned i = (unsigned)((struct virtio_vsock_event*)cookie - g_ev);
    if (len != sizeof(g_ev[i])) {
      bogus("event used length %u", len);
    } else if (g_ev[i].id != VIRTIO_VSOCK_EVENT_TRANSPORT_RESET) {
      bogus("event id %u", g_ev[i].id);
    } else {
      transport_reset();
    }
    ev_post(i);
  }
}

// ---- The loop ------------------------------------------------------------------------------

static void health(void) {
  const uint64_t now = rt_ticks();
  if ((int64_t)(now - g_next_health) < 0) return;
  g_next_health = now + rt_ms_to_ticks(HEALTH_MS);
  virtio_dev_ack_interrupt(&g_dev);
  if (!g_dead && virtio_dev_needs_reset(&g_dev)) {
    g_dead = true;
    RT_CHECKF(false, "the device never asks for a reset", "Status 0x%x", virtio_dev_status(&g_dev));
  }
}

// Notifies queue q if it has new buffers and the device has not suppressed notifications
// (§2.7.10: VRING_USED_F_NO_NOTIFY; no EVENT_IDX).
static void notify(unsigned q) {
  if (!g_kick[q]) return;
  g_kick[q] = false;
  // §2.7.13.4: the avail->idx store must be visible to the device before we read the flag.
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
  if (__atomic_load_n(&g_vq[q]->used->flags, __ATOMIC_RELAXED) & VRING_USED_F_NO_NOTIFY) return;
  virtq_kick(g_vq[q]);
}

static void poll_once(void) {
  tx_reap();
  rx_drain();
  ev_drain();
  ctl_flush();
  if (g_ctl_len == 0) {
    for (unsigned i = 0; i < MAX_CONNS; i++) pump_conn(&g_conns[i]);
  }
  for (unsigned q = 0; q < 3; q++) notify(q);
  health();
}

// Polls until done(arg): false if the device dies or TIMEOUT ticks pass (without progress when
// EXTEND: any RW packet moving either way restarts the clock).
static bool wait_until(bool (*done)(const void*), const void* arg, uint64_t timeout, bool extend) {
  uint64_t t0 = rt_ticks(), moves = g_moves;
  while (!done(arg) && !g_dead) {
    poll_once();
    if (extend && g_moves != moves) {
      moves = g_moves;
      t0 = rt_ticks();
    } else if (rt_ticks() - t0 > timeout) {
      break;
    }
  }
  return done(arg);
}

static bool conn_settled(const void* p) { return ((const struct conn*)p)->state != S_CONNECTING; }
static bool conn_gone(const void* p) {
  const struct conn* c = p;
  return c->state == S_CLOSED || c->state == S_FREE;
}
static bool client_done(const void* p) {
  const struct conn* c = p;
  return c->state != S_ESTABLISHED || (c->src_sent == c->src_total && c->rx_total >= c->src_total);
}
static bool watch_answered(const void* p) {
  (void)p;
  return g_watch.op != 0;
}
static bool hostile_back(const void* p) {
  (void)p;
  return g_hostile_back;
}
static bool tx_idle(const void* p) {
  (void)p;
  for (unsigned i = 0; i < TX_SLOTS; i++) {
    if (g_txm[i].busy) return false;
  }
  return g_ctl_len == 0;
}
static bool tx_room(const void* p) {
  (void)p;
  return tx_alloc() >= 0;
}

// ---- Client tests --------------------------------------------------------------------------

// A new connection from the next local port to host port PORT: the REQUEST and its answer.
static struct conn* conn_open(uint32_t port, uint8_t role) {
  struct conn* c = conn_alloc(role, g_next_port++, port);
  if (c == NULL) return NULL;
  c->state = S_CONNECTING;
  ctl_push(VIRTIO_VSOCK_OP_REQUEST, 0, c->lport, c->pport);
  wait_until(conn_settled, c, g_timeout, false);
  return c;
}

// Sends BYTES of pattern to host port PORT (an echo listener), reads them back, shuts down.
static bool client_run(uint32_t port, uint64_t bytes, const char* name) {
  struct conn* c = conn_open(port, R_CLIENT);
  if (c == NULL) return RT_CHECKF(false, name, "no free connection slot");
  const bool up = c->state == S_ESTABLISHED;
  c->src_total = bytes;
  if (up) wait_until(client_done, c, g_timeout, true);
  if (c->state == S_ESTABLISHED) {
    ctl_push(VIRTIO_VSOCK_OP_SHUTDOWN, VIRTIO_VSOCK_SHUTDOWN_RCV | VIRTIO_VSOCK_SHUTDOWN_SEND,
             c->lport, c->pport);
    wait_until(conn_gone, c, g_timeout, false);
  }
  const unsigned long long sent = c->src_sent, got = c->rx_total, bad = c->mismatches;
  rt_printf("vsock: client port %u: sent %llu, received %llu, mismatches %llu\n", port, sent, got,
            bad);
  const bool ok = RT_CHECKF(up && sent == bytes && got == bytes && bad == 0 && c->rst_seen, name,
                            "%s; sent %llu, received %llu of %llu, mismatches %llu; %s",
                            up            ? "connected"
                            : c->rst_seen ? "refused (RST)"
                                          : "no RESPONSE",
                            sent, got, (unsigned long long)bytes, bad,
                            c->rst_seen ? "closed by RST" : "not closed by RST");
  conn_drop(c);
  return ok;
}

static void check_refused(uint32_t port) {
  char name[96];
  rt_snprintf(name, sizeof(name), "a REQUEST to host port %u (no listener) is answered RST", port);
  struct conn* c = conn_open(port, R_CLIENT);
  RT_CHECKF(c != NULL && c->rst_seen, name, "%s",
            c == NULL                   ? "no free connection slot"
            : c->state == S_ESTABLISHED ? "answered RESPONSE"
            : c->state == S_CONNECTING  ? "no answer"
                                        : "closed otherwise");
  conn_drop(c);
}

// ---- Hostile tests -------------------------------------------------------------------------

static void round_trip_after(uint32_t port, const char* tag) {
  char name[96];
  rt_snprintf(name, sizeof(name), "the device still works after hostile %s (4 KiB round trip)",
              tag);
  client_run(port, ROUND_TRIP_BYTES, name);
}

// Puts header H and DATA_LEN pattern bytes on the TX queue as one chain of DESC_LEN bytes,
// device-writable if WRITABLE, bypassing every rule. False if no TX slot frees up.
static bool send_hostile(const struct virtio_vsock_hdr* h, uint32_t data_len, uint32_t desc_len,
                         bool writable) {
  if (!wait_until(tx_room, NULL, g_timeout, false)) return false;
  const unsigned i = (unsigned)tx_alloc();
  memcpy(g_tx[i].b, h, HDR_LEN);
  fill_pattern(g_tx[i].b + HDR_LEN, 0, data_len);
  const struct virtq_buf v = {(uintptr_t)g_tx[i].b, desc_len, writable};
  g_hostile_back = false;
  g_hostile_len = 0;
  return tx_submit(i, &v, 1, true);
}

struct hostile_case {
  const char* tag;
  const char* name;
  uint16_t op, type;
  bool wrong_cid;
  uint32_t data_len, desc_len;  // desc_len 0: header + data
  bool writable, rst_expected;  // else: RST or nothing, never RESPONSE
};

static const struct hostile_case kUnbound[] = {
    {"(a)", "hostile (a): a REQUEST of type 2 (SEQPACKET) is answered RST", VIRTIO_VSOCK_OP_REQUEST,
     2, false, 0, 0, false, true},
    {"(b)", "hostile (b): a RW on a connection never opened is answered RST", VIRTIO_VSOCK_OP_RW,
     VIRTIO_VSOCK_TYPE_STREAM, false, 16, 0, false, true},
    {"(c)", "hostile (c): a REQUEST from the wrong source CID is refused or dropped",
     VIRTIO_VSOCK_OP_REQUEST, VIRTIO_VSOCK_TYPE_STREAM, true, 0, 0, false, false},
    {"(f)", "hostile (f): a 20-byte chain (a short header) is dropped and handed back",
     VIRTIO_VSOCK_OP_REQUEST, VIRTIO_VSOCK_TYPE_STREAM, false, 0, 20, false, false},
    {"(h)", "hostile (h): a header in a device-writable descriptor is not read, handed back",
     VIRTIO_VSOCK_OP_REQUEST, VIRTIO_VSOCK_TYPE_STREAM, false, 0, HDR_LEN, true, false},
};

// One hostile packet from a fresh local port to PORT; checks what answers and that the chain
// comes back.
static void hostile_unbound(uint32_t port, const struct hostile_case* k) {
  const uint32_t lport = g_next_port++;
  struct virtio_vsock_hdr h = make_hdr(k->op, lport, port, k->data_len, NULL);
  h.type = k->type;
  h.buf_alloc = g_buf_alloc;
  if (k->wrong_cid) h.src_cid = g_cid + 1;
  g_watch.on = true;
  g_watch.lport = lport;
  g_watch.pport = port;
  g_watch.op = 0;
  const uint32_t desc_len = k->desc_len != 0 ? k->desc_len : HDR_LEN + k->data_len;
  bool sent = send_hostile(&h, k->data_len, desc_len, k->writable);
  if (sent) wait_until(watch_answered, NULL, k->rst_expected ? g_timeout : g_quiet, false);
  const bool back = sent && wait_until(hostile_back, NULL, g_timeout, false);
  g_watch.on = false;
  const uint16_t op = g_watch.op;
  const bool answer_ok =
      k->rst_expected ? op == VIRTIO_VSOCK_OP_RST : op == 0 || op == VIRTIO_VSOCK_OP_RST;
  RT_CHECKF(sent && answer_ok && back, k->name, "%s; answered %s; chain %s (used length %u)",
            sent ? "sent" : "no TX slot", op_name(op), back ? "handed back" : "not handed back",
            g_hostile_len);
  round_trip_after(port, k->tag);
}

// Opens a connection to PORT, sends header H_OP / H_LEN with DATA_LEN bytes on it, and checks
// that the device resets the connection.
static void hostile_bound(uint32_t port, const char* tag, const char* name, uint16_t h_op,
                          uint32_t h_len, uint32_t data_len) {
  struct conn* c = conn_open(port, R_RAW);
  if (c == NULL || c->state != S_ESTABLISHED) {
    RT_CHECKF(false, name, "could not connect to host port %u", port);
  } else {
    const struct virtio_vsock_hdr h = make_hdr(h_op, c->lport, c->pport, h_len, c);
    const bool sent = send_hostile(&h, data_len, HDR_LEN + data_len, false);
    if (sent) wait_until(conn_gone, c, g_timeout, false);
    RT_CHECKF(sent && c->rst_seen, name, "%s", !sent ? "no TX slot" : "no RST");
  }
  conn_drop(c);
  round_trip_after(port, tag);
}

// Hostile (g): RW packets on a connection to PORT, past the credit the host gives and without
// waiting for more, while we consume nothing of the echo (R_RAW), so the host's listener and
// then the device fill up: the device must reset the connection.
static void hostile_overrun(uint32_t port) {
  static const char kName[] = "hostile (g): sending past the host's credit resets the connection";
  struct conn* c = conn_open(port, R_RAW);
  if (c == NULL || c->state != S_ESTABLISHED) {
    RT_CHECKF(false, kName, "could not connect to host port %u", port);
    conn_drop(c);
    return;
  }
  const uint64_t target = (uint64_t)c->peer_buf_alloc + OVERRUN_EXTRA;
  uint64_t sent = 0, last = rt_ticks();
  while (sent < target && c->state == S_ESTABLISHED && !g_dead) {
    const int i = g_ctl_len == 0 ? tx_alloc() : -1;
    if (i >= 0) {
      fill_pattern(g_tx[i].b + HDR_LEN, sent, TX_DATA);
      if (send_on((unsigned)i, VIRTIO_VSOCK_OP_RW, 0, c->lport, c->pport, c, TX_DATA)) {
        sent += TX_DATA;
        last = rt_ticks();
      }
    } else if (rt_ticks() - last > g_timeout) {
      break;  // the device stopped taking packets without a word
    }
    poll_once();
  }
  wait_until(conn_gone, c, g_timeout, false);
  RT_CHECKF(c->rst_seen, kName, "sent %llu bytes against buf_alloc %u, no RST",
            (unsigned long long)sent, c->peer_buf_alloc);
  conn_drop(c);
  round_trip_after(port, "(g)");
}

static void hostile_all(uint32_t port) {
  for (unsigned k = 0; k < RT_ARRAY_SIZE(kUnbound); k++) hostile_unbound(port, &kUnbound[k]);
  hostile_bound(port, "(d)",
                "hostile (d): a RW whose len (1 MiB) is beyond its chain (16 bytes) resets the "
                "connection",
                VIRTIO_VSOCK_OP_RW, 1u << 20, 16);
  hostile_bound(port, "(e)", "hostile (e): an unknown op (99) on a connection resets it",
                OP_UNKNOWN, 0, 0);
  hostile_overrun(port);
}

// ---- Setup ---------------------------------------------------------------------------------

static bool in_ram(uint64_t base, uint64_t len) {
  uint32_t count = 0;
  const struct hvm_memmap_table_entry* map = rt_memmap(&count);
  if (count == 0) return true;  // no map to go by
  for (uint32_t i = 0; i < count; i++) {
    if (map[i].type == HVM_MEMMAP_TYPE_RAM && map[i].addr <= base &&
        base + len <= map[i].addr + map[i].size) {
      return true;
    }
  }
  return false;
}

// The echo buffers: RAM 2 MiB past the image (as the balloon payload's region), MAX_CONNS times
// buf_alloc, which shrinks (halving) if the RAM is short.
static void setup_region(void) {
  uintptr_t start, end;
  rt_image_range(&start, &end);
  const uint64_t two_mib = 2u << 20;
  const uint64_t base = ((end + two_mib - 1) & ~(two_mib - 1)) + two_mib;
  while (g_buf_alloc > BUF_MIN && !in_ram(base, (uint64_t)g_buf_alloc * MAX_CONNS)) {
    g_buf_alloc /= 2;
  }
  if (!RT_CHECKF(in_ram(base, (uint64_t)g_buf_alloc * MAX_CONNS), "RAM for the echo buffers",
                 "%u KiB at 0x%llx", g_buf_alloc / 1024 * MAX_CONNS, (unsigned long long)base)) {
    return;  // the echo server refuses every connection
  }
  g_pend_region = (uint8_t*)(uintptr_t)base;
  if (g_buf_alloc != BUF_ALLOC) {
    rt_printf("vsock: RAM is short: buf_alloc %u per connection\n", g_buf_alloc);
  }
}

static int setup(void) {
  int err = virtio_dev_negotiate(&g_dev, VIRTIO_FEATURE(VIRTIO_F_VERSION_1));
  for (uint16_t q = 0; q < 3 && err == VIRTIO_OK; q++) err = virtq_setup(&g_dev, q, 0, &g_vq[q]);
  if (err != VIRTIO_OK) return err;
  // As many receive buffers as the queue takes (64 use 127 descriptors).
  for (g_rx_posted = 0; g_rx_posted < RX_SLOTS && rx_post(g_rx_posted); g_rx_posted++) {
  }
  for (unsigned i = 0; i < EV_SLOTS; i++) ev_post(i);
  err = virtio_dev_driver_ok(&g_dev);
  if (err != VIRTIO_OK) return err;
  // §3.1.1: no notifications before DRIVER_OK.
  virtq_kick(g_vq[Q_RX]);
  virtq_kick(g_vq[Q_EVENT]);
  g_kick[Q_RX] = g_kick[Q_EVENT] = false;
  rt_printf("vsock: queues rx %u tx %u event %u, %u rx buffers\n", g_vq[Q_RX]->size,
            g_vq[Q_TX]->size, g_vq[Q_EVENT]->size, g_rx_posted);
  return VIRTIO_OK;
}

static void check_cid(void) {
  g_cid = virtio_config_read64(&g_dev, offsetof(struct virtio_vsock_config, guest_cid));
  rt_printf("vsock: cid=%llu\n", (unsigned long long)g_cid);
  RT_CHECKF(g_cid >= 3 && g_cid <= 0xfffffffeull, "guest_cid is a guest's (3 .. 2^32 - 2)", "%llu",
            (unsigned long long)g_cid);
  uint64_t want;
  if (rt_cmdline_get_u64("vsock.cid", &want)) {
    RT_CHECKF(g_cid == want, "guest_cid is vsock.cid", "%llu, vsock.cid=%llu",
              (unsigned long long)g_cid, (unsigned long long)want);
  }
}

static uint32_t port_opt(const char* key, uint32_t dflt, bool* given) {
  uint64_t v;
  const bool ok = rt_cmdline_get_u64(key, &v) && v <= 0xffffffffull;
  if (given != NULL) *given = ok;
  return ok ? (uint32_t)v : dflt;
}

// The echo server, until a REQUEST to the quit port; then the counters and the summary.
static int serve(void) {
  g_listening = true;
  rt_printf("vsock: ready port %u\n", g_port);
  while (!g_quit && !g_dead) poll_once();
  wait_until(tx_idle, NULL, g_timeout, false);  // the quit port's RST goes out
  rt_printf("vsock: served %llu connections, %llu bytes echoed\n", (unsigned long long)g_cnt.served,
            (unsigned long long)g_cnt.echoed);
  rt_printf("vsock: bogus %llu, stray %llu, control packets dropped %llu, transport resets %llu\n",
            (unsigned long long)g_cnt.bogus, (unsigned long long)g_cnt.stray,
            (unsigned long long)g_cnt.ctl_dropped, (unsigned long long)g_cnt.resets);
  RT_CHECKF(g_cnt.bogus == 0, "the device handed back nothing bogus", "%llu bogus",
            (unsigned long long)g_cnt.bogus);
  return rt_check_summary("vsock");
}

int payload_main(const char* cmdline) {
  (void)cmdline;
  uint64_t ms = 5000, quiet_ms = 500, bytes = 1u << 20;
  rt_cmdline_get_u64("vsock.timeout_ms", &ms);
  rt_cmdline_get_u64("vsock.quiet_ms", &quiet_ms);
  rt_cmdline_get_u64("vsock.bytes", &bytes);
  g_timeout = rt_ms_to_ticks(ms);
  g_quiet = rt_ms_to_ticks(quiet_ms);
  g_port = port_opt("vsock.port", 5000, NULL);
  g_quit_port = port_opt("vsock.quit_port", 5999, NULL);
  bool connect, refused, hostile;
  const uint32_t connect_port = port_opt("vsock.connect", 0, &connect);
  const uint32_t refused_port = port_opt("vsock.refused", 0, &refused);
  const uint32_t hostile_port = port_opt("vsock.hostile", 0, &hostile);
  if (!RT_CHECK(virtio_mmio_find(VIRTIO_ID_VSOCK, &g_dev, "vsock"),
                "found a virtio-vsock device")) {
    return rt_check_summary("vsock");
  }
  const int err = setup();
  if (!RT_CHECKF(err == VIRTIO_OK, "the device initializes", "%s", virtio_strerror(err))) {
    return rt_check_summary("vsock");
  }
  check_cid();
  setup_region();
  if (connect) {
    char name[96];
    rt_snprintf(name, sizeof(name), "echo of %llu bytes through host port %u",
                (unsigned long long)bytes, connect_port);
    client_run(connect_port, bytes, name);
  }
  if (refused) check_refused(refused_port);
  if (hostile) hostile_all(hostile_port);
  if (g_dead) return rt_check_summary("vsock");
  return serve();
}
