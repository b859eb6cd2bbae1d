#include "src/devices/balloon/balloon_parse.h"

#include <endian.h>

#include <algorithm>
#include <cstring>

namespace edgevisor::balloon {

uint32_t ForEachPfnRun(const GuestMemory& mem, const virtio::DescriptorChain& chain,
                       const PfnRun& run) {
  uint32_t unreadable = 0;
  uint64_t first = 0, n = 0;  // the run so far
  for (const virtio::ChainDesc& d : chain.descs) {
    if (d.writable) continue;  // the driver only places device-readable buffers (§5.5.6.1)
    auto span = mem.Translate(d.addr, d.len);
    if (!span.ok()) {
      ++unreadable;
      continue;
    }
    for (size_t off = 0; off + sizeof(uint32_t) <= span->size(); off += sizeof(uint32_t)) {
      uint32_t le;
      std::memcpy(&le, span->data() + off, sizeof(le));
      const uint64_t pfn = le32toh(le);
      if (n != 0 && pfn == first + n) {
        ++n;
        continue;
      }
      if (n != 0) run(first, n);
      first = pfn;
      n = 1;
    }
  }
  if (n != 0) run(first, n);
  return unreadable;
}

bool ParseStats(absl::Span<const uint8_t> bytes, StatValues& out) {
  for (size_t off = 0; off + kStatSize <= bytes.size(); off += kStatSize) {
    uint16_t tag;
    uint64_t value;
    std::memcpy(&tag, bytes.data() + off, sizeof(tag));
    std::memcpy(&value, bytes.data() + off + sizeof(tag), sizeof(value));
    tag = le16toh(tag);
    if (tag < kStatTags) out[tag] = le64toh(value);
  }
  return !bytes.empty() && bytes.size() % kStatSize == 0;
}

}  // namespace edgevisor::balloon
