// Turns one validated descriptor chain into a block request (virtio 1.2 §5.2.6). The chain is
// treated as a byte stream (VIRTIO_F_ANY_LAYOUT is implied by VERSION_1): the header is the
// first 16 device-readable bytes wherever they sit, and the status is the last device-writable
// byte. Every guest value is checked; a bad request gets IOERR or UNSUPP, never host I/O.
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "src/devices/block/virtio_blk_spec.h"
#include "src/devices/virtio/descriptor_chain.h"
#include "src/platform/guest_memory.h"

namespace edgevisor::block {

struct DiskLimits {
  uint64_t capacity_sectors = 0;
  bool read_only = false;
  uint32_t seg_max = 126;
  uint32_t size_max = 1 << 20;
  uint32_t max_discard_sectors = 1 << 22;
  uint32_t max_discard_seg = 16;
  uint32_t max_write_zeroes_sectors = 1 << 22;
  uint32_t max_write_zeroes_seg = 16;
};

struct Range {
  uint64_t offset;  // bytes
  uint64_t len;     // bytes
  bool unmap;       // write-zeroes may punch a hole
};

struct BlockRequest {
  uint32_t type = 0;
  uint64_t offset = 0;      // bytes, for IN/OUT
  std::vector<iovec> data;  // host views of the guest data buffers (IN/OUT/GET_ID)
  uint64_t data_len = 0;
  std::vector<Range> ranges;  // DISCARD / WRITE_ZEROES
  uint8_t* status = nullptr;  // host view of the status byte
  // When set, the request needs no I/O: write this status and complete.
  bool immediate = false;
  uint8_t immediate_status = virtio_blk::kStatusOk;
  // Bytes the device writes into the chain on success, status byte included (used.len).
  uint32_t used_len = 1;
};

// An error means the chain has no status byte to report through: the device must reset.
absl::StatusOr<BlockRequest> ParseBlockRequest(const GuestMemory& mem,
                                               const virtio::DescriptorChain& chain,
                                               const DiskLimits& limits);

// Copies the device ID (the drive serial) into a GET_ID request's buffers.
void FillDeviceId(const BlockRequest& req, const std::string& serial);

}  // namespace edgevisor::block
