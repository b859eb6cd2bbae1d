// Polling virtio-net driver (virtio 1.2 §5.1) on top of virtio_mmio.h.
//
// Queues (§5.1.2): receiveq k = 2k, transmitq k = 2k + 1 for pairs k = 0..N-1, where N is
// max_virtqueue_pairs when VIRTIO_NET_F_MQ is negotiated and 1 otherwise; the control queue
// (VIRTIO_NET_F_CTRL_VQ) is queue 2N. Every frame on either ring is preceded by the 12-byte
// struct virtio_net_hdr_v1 (§5.1.6: with VIRTIO_F_VERSION_1 the header always has
// num_buffers).
//
// Buffers (all in one region of guest RAM at or above 4 MiB, found in the PVH memory map):
// every RX buffer and every TX slot is a fixed 2048-byte (VNET_BUF_SIZE), 2048-aligned block
// that never crosses a page, with the virtio header at offset 0 and the frame at offset 12.
// RX buffers are posted device-writable, rx_buf_len bytes each (default all 2048); a TX packet is
// one device-readable descriptor [header | frame], or two ([header] [frame]) with `split`. RX
// descriptors are likewise one per buffer, or [12-byte header part][rest] with `split` (§5.1.6.3:
// a buffer may be split across descriptors). Descriptors are never chained through indirect
// tables, and the driver never negotiates EVENT_IDX: notifications are suppressed only through
// the ring flags (§2.7.7, §2.7.10).
//
// Zero copy: a reply can be transmitted straight out of the RX buffer it arrived in
// (vnet_tx_reply); the RX buffer is re-posted when the device has used the TX descriptor.
//
// Everything is polled: the avail rings carry VRING_AVAIL_F_NO_INTERRUPT (the device may still
// interrupt; InterruptStatus is read and acknowledged by vnet_check_health), and a queue is
// notified only when new buffers were made available and the device has not set
// VRING_USED_F_NO_NOTIFY.
#ifndef EDGEVISOR_FW_VIRTIO_NET_H
#define EDGEVISOR_FW_VIRTIO_NET_H

#include "virtio_mmio.h"

// Feature bits (VIRTIO_NET_F_*), the config layout (struct virtio_net_config), the packet
// header (struct virtio_net_hdr_v1, §5.1.6) and the control queue's values: the kernel's uapi
// header, as for edgevisor.
#include <linux/virtio_net.h>

// §5.1.4 config space offsets.
#define VIRTIO_NET_CFG(field) offsetof(struct virtio_net_config, field)

#define VNET_HDR_LEN sizeof(struct virtio_net_hdr_v1)
_Static_assert(sizeof(struct virtio_net_hdr_v1) == 12, "virtio_net_hdr_v1 layout (§5.1.6)");

// Pairs one vnet uses at most (2 * 8 + the control queue = the 17 virtqueue pool slots).
#define VNET_MAX_PAIRS 8
// Stride and maximum size of every RX buffer and TX slot (header included).
#define VNET_BUF_SIZE 2048
// Largest frame a TX slot holds.
#define VNET_MAX_FRAME (VNET_BUF_SIZE - VNET_HDR_LEN)
// Smallest RX buffer accepted without MRG_RXBUF (§5.1.6.3.1: 1526 = 12 + 1514).
#define VNET_MIN_RX_BUF_NO_MRG 1526
// Smallest RX buffer accepted with MRG_RXBUF (must hold at least the header, §5.1.6.3.1).
#define VNET_MIN_RX_BUF_MRG 64

// Driver-specific errors (besides VIRTIO_ERR_*).
#define VNET_ERR_CTRL (-20)  // control command failed or was not acknowledged with OK

struct vnet_opts {
  bool mq;              // negotiate CTRL_VQ + MQ, use every pair (up to VNET_MAX_PAIRS)
  bool csum;            // negotiate CSUM + GUEST_CSUM
  bool no_mrg;          // do not negotiate MRG_RXBUF even if offered
  bool split;           // two descriptors per RX buffer and TX packet: [header][data]
  uint16_t rx_buf_len;  // bytes posted per RX buffer, header included; 0 = VNET_BUF_SIZE
  uint16_t queue_size;  // 0 = VIRTQ_MAX_SIZE (QueueNumMax may lower it)
};

// Parses the driver options from the command line: `mq`, `csum`, `nomrg`, `split`,
// `rxbuf=<bytes>`, `qsize=<entries>`.
void vnet_opts_from_cmdline(struct vnet_opts* o);

struct vnet_rxq {
  struct virtq* vq;
  uint8_t* mem;     // nbufs * VNET_BUF_SIZE
  uint8_t* reasm;   // VNET_BUF_SIZE: a packet merged from several buffers (MRG_RXBUF)
  bool reasm_busy;  // reasm holds a packet the caller has not released yet
  uint16_t nbufs;
  uint16_t pending;  // buffers made available since the last notification check
  uint8_t state[VIRTQ_MAX_SIZE];
};

struct vnet_txq {
  struct virtq* vq;
  uint8_t* mem;  // nslots * VNET_BUF_SIZE
  uint16_t nslots;
  uint16_t nfree;
  uint16_t inflight;  // slots on the avail ring, not yet used
  uint16_t pending;
  uint16_t free[VIRTQ_MAX_SIZE];  // stack of free slots
  uint8_t state[VIRTQ_MAX_SIZE];
  int16_t lent[VIRTQ_MAX_SIZE];  // RX buffer (same pair) a slot transmits from, -1 = own buffer
};

struct vnet_stats {
  uint64_t rx_packets;       // delivered by vnet_rx
  uint64_t rx_merged;        // ... of which spanned several buffers (MRG_RXBUF)
  uint64_t rx_bad;           // used entries naming no posted buffer, bad lengths, bad num_buffers
  uint64_t rx_oversize;      // merged packets larger than VNET_MAX_FRAME (dropped)
  uint64_t rx_csum_partial;  // arrived with VIRTIO_NET_HDR_F_NEEDS_CSUM (GUEST_CSUM)
  uint64_t rx_csum_valid;    // arrived with VIRTIO_NET_HDR_F_DATA_VALID (GUEST_CSUM)
  uint64_t tx_packets;       // made available to the device
  uint64_t tx_completed;     // used by the device
  uint64_t tx_full;          // vnet_tx_reply found no free slot (packet dropped)
  uint64_t tx_bad;           // TX used entries naming no in-flight slot
  uint64_t notify_rx;        // QueueNotify writes
  uint64_t notify_tx;
  uint64_t notify_skipped;  // notifications suppressed by VRING_USED_F_NO_NOTIFY
};

struct vnet {
  struct virtio_mmio_dev dev;
  uint8_t mac[6];
  uint16_t status;     // config status (VIRTIO_NET_S_*); LINK_UP assumed without F_STATUS
  uint16_t max_pairs;  // config max_virtqueue_pairs (1 without MQ)
  uint16_t mtu;        // config mtu (1500 without F_MTU)
  uint16_t npairs;     // pairs in use
  uint16_t rx_buf_len;
  bool split;
  bool mac_from_device;
  struct vnet_rxq rx[VNET_MAX_PAIRS];
  struct vnet_txq tx[VNET_MAX_PAIRS];
  struct virtq* ctrl;  // NULL without CTRL_VQ
  uint16_t ctrl_index;
  uintptr_t mem_base;  // buffer region
  uint64_t mem_len;
  struct vnet_stats st;
};

// One received frame. Valid until vnet_rx_done or vnet_tx_reply.
struct vnet_pkt {
  uint8_t* frame;  // Ethernet frame; the 12 bytes before it are free for a TX header
  uint32_t len;
  uint8_t hdr_flags;  // VIRTIO_NET_HDR_F_* from the RX header
  uint16_t csum_start, csum_offset;
  uint16_t num_buffers;
  uint16_t queue;  // pair it arrived on (replies go out on the same pair)
  uint16_t buf;    // RX buffer index (unless merged)
  bool merged;     // the frame lives in the pair's reassembly buffer
};

// TX checksum offload request (§5.1.6.2: only with VIRTIO_NET_F_CSUM): the device sums the
// frame from csum_start to the end and stores the folded complement at csum_start + csum_offset;
// the field must hold the pseudo-header sum (folded, not complemented).
struct vnet_csum {
  uint16_t start;
  uint16_t offset;
};

// Negotiates, reads the config, finds buffer memory, sets up the queues, posts every RX buffer,
// sets DRIVER_OK and, with MQ, enables all pairs through the control queue. On error the device
// is left FAILED (or reset).
int vnet_init(struct vnet* n, const struct virtio_mmio_dev* probed, const struct vnet_opts* o);
void vnet_reset(struct vnet* n);
const char* vnet_strerror(int err);
static inline bool vnet_has(const struct vnet* n, unsigned bit) {
  return virtio_has_feature(&n->dev, bit);
}

// Takes the next received frame of pair q: 1 (filled *p) or 0 (nothing complete yet). Bad used
// entries and oversized merged packets are counted in st and skipped.
int vnet_rx(struct vnet* n, unsigned q, struct vnet_pkt* p);
// Gives the packet's buffer back to the device (re-posted; notified by vnet_kick).
void vnet_rx_done(struct vnet* n, const struct vnet_pkt* p);

// Transmits [start, start + len) out of the packet's own buffer on the same pair: start must lie
// at or after p->frame (the 12 bytes before it become the TX header) and the range inside the
// buffer. Zero copy unless the packet was merged. The RX buffer is re-posted once the device
// is done with it; on VIRTIO_ERR_NO_DESC (no TX slot) it is released at once.
int vnet_tx_reply(struct vnet* n, const struct vnet_pkt* p, uint8_t* start, uint32_t len,
                  const struct vnet_csum* csum);

// A free TX slot of pair q: returns its frame area (VNET_MAX_FRAME bytes) and the slot number,
// or NULL if every slot is in flight (after reclaiming). A slot's contents persist between uses.
uint8_t* vnet_tx_alloc(struct vnet* n, unsigned q, uint16_t* slot);
// Makes the slot's first len frame bytes available to the device (no notification).
void vnet_tx_send(struct vnet* n, unsigned q, uint16_t slot, uint32_t len,
                  const struct vnet_csum* csum);
// The frame area of a slot, whatever its state (to prefill templates).
static inline uint8_t* vnet_tx_slot_frame(struct vnet* n, unsigned q, uint16_t slot) {
  return n->tx[q].mem + (size_t)slot * VNET_BUF_SIZE + VNET_HDR_LEN;
}
// Harvests completed TX descriptors of pair q (re-posting lent RX buffers); returns how many.
unsigned vnet_tx_reclaim(struct vnet* n, unsigned q);
// Benchmark fast path: puts every slot the device has finished with straight back on the ring,
// unchanged (same header, frame and length as last sent with vnet_tx_send). Per packet this is
// one used-ring read, one check and one avail-ring write. Returns the number resent (counted in
// both tx_completed and tx_packets); notify with vnet_kick.
unsigned vnet_tx_recycle(struct vnet* n, unsigned q);
// Notifies pair q's RX and TX queues if they have new buffers and the device wants to hear.
void vnet_kick(struct vnet* n, unsigned q);
// Kicks and reclaims every pair until no TX slot is in flight, or timeout: VIRTIO_OK /
// VIRTIO_ERR_TIMEOUT / VIRTIO_ERR_NEEDS_RESET.
int vnet_tx_flush(struct vnet* n, uint64_t timeout_ms);
// Reads Status (VIRTIO_ERR_NEEDS_RESET if set) and reads/acks InterruptStatus. Three MMIO
// accesses: call it every few hundred milliseconds, not per packet.
int vnet_check_health(struct vnet* n);

#endif  // EDGEVISOR_FW_VIRTIO_NET_H
