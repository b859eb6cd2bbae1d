// The balloon's two formats that the guest writes (virtio 1.2 §5.5.6), parsed apart from the
// device thread so that unit tests and the fuzzer reach them: the page-number lists of the
// inflate and deflate queues, and the statistics buffer. Both are hostile input.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>

#include "absl/types/span.h"
#include "src/devices/balloon/virtio_balloon_spec.h"
#include "src/devices/virtio/descriptor_chain.h"
#include "src/platform/guest_memory.h"

namespace edgevisor::balloon {

// Calls RUN(first, n) for each run of n consecutive page numbers (first, first + 1, ...) in the
// device-readable buffers of CHAIN, in order; each number is 4 bytes, little-endian, and the
// bytes after a buffer's last whole number are ignored. Device-writable buffers are skipped.
// Returns the count of buffers it could not read (the walker checked them; one across two
// regions of RAM).
using PfnRun = std::function<void(uint64_t first, uint64_t n)>;
uint32_t ForEachPfnRun(const GuestMemory& mem, const virtio::DescriptorChain& chain,
                       const PfnRun& run);

// The latest value of each statistic, by tag (absent: never sent).
using StatValues = std::optional<uint64_t>[kStatTags];

// Reads the {le16 tag, le64 value} entries of BYTES into OUT (unknown tags are ignored, a later
// entry wins). Returns false when BYTES is empty or not a whole number of entries (what parses
// is kept).
bool ParseStats(absl::Span<const uint8_t> bytes, StatValues& out);

}  // namespace edgevisor::balloon
