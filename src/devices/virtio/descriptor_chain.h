// The descriptor-chain walker every virtio device uses (virtio 1.2 §2.7.5, §2.7.5.3).
//
// The guest controls every field it reads: addresses, lengths, flags, `next` indexes and
// indirect tables. The walker returns a chain only if every descriptor lies inside guest RAM,
// the chain has no loop and is no longer than the queue, every index is in range, indirect
// tables are well formed and not nested, and device-writable descriptors come after the
// device-readable ones. Anything else is an error, and the device decides what the guest gets.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "src/platform/guest_memory.h"

namespace edgevisor::virtio {

struct ChainDesc {
  uint64_t addr;
  uint32_t len;
  bool writable;  // device-writable (VIRTQ_DESC_F_WRITE)
};

struct DescriptorChain {
  uint16_t head = 0;
  std::vector<ChainDesc> descs;
  // Sums over descs, for request parsing and the used length.
  uint64_t readable_bytes = 0;
  uint64_t writable_bytes = 0;
};

struct ChainLimits {
  uint64_t desc_table = 0;  // guest-physical address of the descriptor table
  uint16_t queue_size = 0;
  bool indirect_allowed = false;  // VIRTIO_F_RING_INDIRECT_DESC negotiated
};

absl::StatusOr<DescriptorChain> ReadDescriptorChain(const GuestMemory& mem,
                                                    const ChainLimits& limits, uint16_t head);

// The device-readable bytes of CHAIN, as many as OUT holds, copied into OUT; their count. Stops
// at a buffer it cannot read (the walker checked each; one across two regions of RAM).
size_t GatherReadable(const GuestMemory& mem, const DescriptorChain& chain,
                      absl::Span<uint8_t> out);
// Copies DATA into the device-writable buffers of CHAIN, in order; the count copied (less than
// DATA's size when the buffers hold less).
size_t ScatterWritable(const GuestMemory& mem, const DescriptorChain& chain,
                       absl::Span<const uint8_t> data);

}  // namespace edgevisor::virtio
