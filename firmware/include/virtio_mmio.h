// Polling virtio-mmio (version 2, "modern") transport and split virtqueues for guest payloads.
//
// References are to the virtio 1.2 specification (OASIS, 2022):
//   §2.1 device status, §2.2 feature bits, §2.5 config space, §2.7 split virtqueues,
//   §3.1.1 driver initialization, §4.2 virtio over MMIO, §6 reserved feature bits.
//
// Devices are found in the platform's device description where it has one (aarch64: the
// device tree's "virtio,mmio" nodes), else on the kernel command line, one Linux-style token per
// device:
//   virtio_mmio.device=<size>@<base>:<irq>[:<id>]   e.g. 512@0xfeb00e00:12, 4K@0xd0001000:5
// (QEMU microvm and edgevisor both append these on x86_64). Everything is polled: the driver never
// enables interrupts, but it reads and acknowledges InterruptStatus after harvesting used
// buffers, like an interrupt handler would.
//
// Memory: each virtqueue's rings (descriptor table, avail ring, used ring) and its indirect
// descriptor tables live in a statically allocated, page-aligned pool in .bss. A queue slot is
// returned to the pool when its device is reset (virtio_dev_reset / virtio_dev_negotiate).
#ifndef EDGEVISOR_FW_VIRTIO_MMIO_H
#define EDGEVISOR_FW_VIRTIO_MMIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

// ---- The virtio ABI: the kernel's uapi headers ----------------------------------------------
// Register offsets (VIRTIO_MMIO_*, §4.2.2), InterruptStatus bits (VIRTIO_MMIO_INT_*), device
// status bits (VIRTIO_CONFIG_S_*, §2.1), reserved feature bits (VIRTIO_F_*, VIRTIO_RING_F_*, §6)
// and descriptor flags (VRING_DESC_F_*, §2.7.5) come from the same headers edgevisor uses, so
// the two sides cannot disagree. (firmware/uapi-headers copies them into the build tree.)
#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_mmio.h>
#include <linux/virtio_ring.h>

#define VIRTIO_MMIO_MAGIC 0x74726976u  // "virt"
#define VIRTIO_FEATURE(bit) (1ull << (bit))

// ---- §2.7 split virtqueue layout -----------------------------------------------------------

#define VRING_DESC_F_NEXT 1      // chain continues via `next`
#define VRING_DESC_F_WRITE 2     // device-writable (otherwise device-readable)
#define VRING_DESC_F_INDIRECT 4  // buffer holds a table of descriptors (§2.7.5.3)

struct virtq_desc {
  uint64_t addr;  // guest-physical
  uint32_t len;
  uint16_t flags;
  uint16_t next;
};
_Static_assert(sizeof(struct virtq_desc) == sizeof(struct vring_desc) &&
                   offsetof(struct virtq_desc, next) == offsetof(struct vring_desc, next),
               "virtq_desc layout (§2.7.5)");

struct virtq_used_elem {
  uint32_t id;   // head descriptor index of the completed chain
  uint32_t len;  // bytes the device wrote into the chain's device-writable buffers
};

// Largest queue this driver sets up (QueueNum = min(QueueNumMax, this), rounded down to a power
// of two as split virtqueues require, §2.7). Also the pool's per-queue ring capacity.
#define VIRTQ_MAX_SIZE 128
// Entries per indirect descriptor table (one table per head descriptor).
#define VIRTQ_INDIRECT_MAX 8
// Queue slots in the static pool, across all devices that are set up at the same time.
#define VIRTQ_POOL_SLOTS 17

// Avail ring (§2.7.6): flags, idx, ring[size], used_event. Sized for VIRTQ_MAX_SIZE; a queue of
// smaller size simply uses a prefix of `ring` (used_event would follow ring[size-1], but it is
// only meaningful with VIRTIO_RING_F_EVENT_IDX, which we never negotiate).
struct virtq_avail {
  uint16_t flags;
  uint16_t idx;
  uint16_t ring[VIRTQ_MAX_SIZE];
  uint16_t used_event;
};

// Used ring (§2.7.8): flags, idx, ring[size], avail_event.
struct virtq_used {
  uint16_t flags;
  uint16_t idx;
  struct virtq_used_elem ring[VIRTQ_MAX_SIZE];
  uint16_t avail_event;
};

// ---- Errors (negative return values) -------------------------------------------------------

#define VIRTIO_OK 0
#define VIRTIO_ERR_TIMEOUT (-1)       // the device did not complete in time
#define VIRTIO_ERR_NEEDS_RESET (-2)   // Status has DEVICE_NEEDS_RESET
#define VIRTIO_ERR_NO_DESC (-3)       // not enough free descriptors
#define VIRTIO_ERR_BAD_USED (-4)      // used ring names a descriptor we did not submit
#define VIRTIO_ERR_NO_DEVICE (-5)     // bad magic, or DeviceID 0
#define VIRTIO_ERR_LEGACY (-6)        // Version != 2
#define VIRTIO_ERR_FEATURES (-7)      // VERSION_1 not offered, or FEATURES_OK did not stick
#define VIRTIO_ERR_QUEUE (-8)         // queue missing (QueueNumMax 0) or already live
#define VIRTIO_ERR_NO_MEM (-9)        // queue pool exhausted
#define VIRTIO_ERR_INVAL (-10)        // bad argument
#define VIRTIO_ERR_RESET_STUCK (-11)  // Status did not read back 0 after a reset

const char* virtio_strerror(int err);

// ---- Discovery -----------------------------------------------------------------------------

#define VIRTIO_MMIO_MAX_DEVICES 32

struct virtio_mmio_token {
  uint64_t base;
  uint64_t size;
  uint32_t irq;
};

// Parses one `virtio_mmio.device` value "<size>@<base>:<irq>[:<id>]" (size may carry a K/M/G
// suffix). Returns false on syntax errors.
bool virtio_mmio_parse_token(const char* val, size_t len, struct virtio_mmio_token* out);
// Collects the platform's "virtio,mmio" devices (rt_find_devices) or, where the platform
// describes none (x86_64), every well-formed `virtio_mmio.device=` token from the command line,
// in order; at most `max`. Returns the number stored. Malformed tokens and devices past `max`
// are reported on the console and skipped.
int virtio_mmio_discover(struct virtio_mmio_token* out, int max);

// ---- Device --------------------------------------------------------------------------------

struct virtio_mmio_dev {
  uintptr_t base;
  uint64_t size;
  uint32_t irq;
  uint32_t version;
  uint32_t device_id;
  uint32_t vendor_id;
  uint64_t device_features;  // as offered (valid after virtio_dev_negotiate)
  uint64_t features;         // negotiated subset
  uint32_t isr_seen;         // OR of every InterruptStatus value read (VIRTIO_MMIO_INT_*)
};

// Reads MagicValue, Version, DeviceID and VendorID. Returns VIRTIO_OK, VIRTIO_ERR_NO_DEVICE
// (bad magic, DeviceID 0 or a base above 4 GiB), or VIRTIO_ERR_LEGACY (Version != 2; the
// version is still stored in dev->version).
int virtio_mmio_probe(struct virtio_mmio_dev* dev, const struct virtio_mmio_token* tok);
// Discovers the command line's devices and probes them in order: fills `out` with the first
// modern device of `device_id` and returns true. Otherwise (and for each legacy device of that
// type) prints why on the console, prefixed with `who`, and returns false.
bool virtio_mmio_find(uint32_t device_id, struct virtio_mmio_dev* out, const char* who);

uint32_t virtio_read32(const struct virtio_mmio_dev* dev, uint32_t off);
void virtio_write32(const struct virtio_mmio_dev* dev, uint32_t off, uint32_t v);

// Resets the device (Status = 0, then waits for Status to read back 0, §4.2.3.1 / §2.4) and
// returns its queue slots to the pool.
int virtio_dev_reset(struct virtio_mmio_dev* dev);
// §3.1.1 steps 1-6: reset, ACKNOWLEDGE, DRIVER, read DeviceFeatures, write the accepted subset
// (device & wanted, always including VIRTIO_F_VERSION_1), FEATURES_OK, and check that
// FEATURES_OK stuck. On failure sets FAILED and returns an error.
int virtio_dev_negotiate(struct virtio_mmio_dev* dev, uint64_t wanted);
// §3.1.1 step 8: DRIVER_OK. Fails with VIRTIO_ERR_NEEDS_RESET if the device reports that.
int virtio_dev_driver_ok(struct virtio_mmio_dev* dev);
// Sets FAILED (§2.1: the driver gave up on the device).
void virtio_dev_fail(struct virtio_mmio_dev* dev);
uint32_t virtio_dev_status(const struct virtio_mmio_dev* dev);
bool virtio_dev_needs_reset(const struct virtio_mmio_dev* dev);
static inline bool virtio_has_feature(const struct virtio_mmio_dev* dev, unsigned bit) {
  return (dev->features & VIRTIO_FEATURE(bit)) != 0;
}
// Reads InterruptStatus and, if non-zero, writes it to InterruptACK. Returns the value read.
uint32_t virtio_dev_ack_interrupt(struct virtio_mmio_dev* dev);

// Device-specific config space (§2.5, §4.2.2.2: accesses as wide as the field, aligned). The
// 64-bit read is two 32-bit reads inside a ConfigGeneration retry loop (§2.5.1).
uint8_t virtio_config_read8(const struct virtio_mmio_dev* dev, uint32_t off);
uint16_t virtio_config_read16(const struct virtio_mmio_dev* dev, uint32_t off);
uint32_t virtio_config_read32(const struct virtio_mmio_dev* dev, uint32_t off);
uint64_t virtio_config_read64(const struct virtio_mmio_dev* dev, uint32_t off);
uint32_t virtio_config_generation(const struct virtio_mmio_dev* dev);
// A 32-bit write into the device-specific configuration (a balloon's `actual`).
void virtio_config_write32(const struct virtio_mmio_dev* dev, uint32_t off, uint32_t v);

// ---- Virtqueues ----------------------------------------------------------------------------

struct virtq {
  struct virtio_mmio_dev* dev;  // owner; NULL while the slot is free
  uint16_t index;               // queue index (QueueSel / QueueNotify value)
  uint16_t size;                // QueueNum, a power of two <= VIRTQ_MAX_SIZE
  struct virtq_desc* desc;      // descriptor table, size entries
  struct virtq_avail* avail;
  struct virtq_used* used;
  struct virtq_desc (*indirect)[VIRTQ_INDIRECT_MAX];  // one table per head index

  uint16_t avail_idx;  // next avail->idx value to publish (the driver's shadow copy)
  uint16_t last_used;  // used->idx value consumed so far
  uint16_t free_head;  // free descriptors are linked through desc[].next
  uint16_t num_free;
  uint16_t chain_len[VIRTQ_MAX_SIZE];  // descriptors held by the chain at this head, 0 = none
  void* cookie[VIRTQ_MAX_SIZE];        // caller's token for the chain at this head
};

// One buffer of a chain: device-readable unless `write`.
struct virtq_buf {
  uint64_t addr;
  uint32_t len;
  bool write;
};

// §4.2.3.2: selects queue `index`, checks it is not live, picks its size (min(QueueNumMax,
// max_size, VIRTQ_MAX_SIZE) rounded down to a power of two; max_size 0 = no extra cap),
// programs the ring addresses and sets QueueReady. Call between negotiate and driver_ok.
int virtq_setup(struct virtio_mmio_dev* dev, uint16_t index, uint16_t max_size, struct virtq** out);

// Builds a chain from bufs[0..n) (the device-readable ones must come first, §2.7.4.2) and puts
// its head on the avail ring; does not notify. With `indirect` set, the feature negotiated and
// 1 < n <= VIRTQ_INDIRECT_MAX, the chain uses one descriptor pointing at an indirect table
// (§2.7.5.3). Returns the head index (>= 0) or an error.
int virtq_add(struct virtq* vq, const struct virtq_buf* bufs, unsigned n, bool indirect,
              void* cookie);
// Publishes a head the caller wrote into vq->desc itself (raw mode): avail->ring[avail_idx %
// size] = head, then avail->idx = ++avail_idx after a release barrier (§2.7.13). No notify.
void virtq_publish(struct virtq* vq, uint16_t head);
// §2.7.13 step 4 / §4.2.3.3: full barrier, then QueueNotify = queue index.
void virtq_kick(struct virtq* vq);
// True if the device has put entries on the used ring that we have not consumed.
bool virtq_has_used(const struct virtq* vq);
// Consumes one used entry added with virtq_add: frees its descriptors and returns 1 with the
// cookie and used length; 0 if none pending; VIRTIO_ERR_BAD_USED if the entry names no chain we
// have outstanding (the entry is consumed regardless).
int virtq_get_used(struct virtq* vq, void** cookie, uint32_t* len);
// Raw mode: consumes one used entry without touching the free list. Returns 1 or 0.
int virtq_pop_used_raw(struct virtq* vq, struct virtq_used_elem* out);
// Spins until the used ring has something new (returns VIRTIO_OK), the device sets
// DEVICE_NEEDS_RESET (checked every couple of milliseconds), or `timeout_ticks` rt_ticks()
// pass (VIRTIO_ERR_TIMEOUT). On success also reads/acks InterruptStatus.
int virtq_wait(struct virtq* vq, uint64_t timeout_ticks);
// Number of descriptors in the queue that are not part of an outstanding chain.
static inline unsigned virtq_num_free(const struct virtq* vq) { return vq->num_free; }

// ---- Time ----------------------------------------------------------------------------------

// Default per-request timeout (~2 s).
#define VIRTIO_DEFAULT_TIMEOUT_MS 2000

#endif  // EDGEVISOR_FW_VIRTIO_MMIO_H
