#include "src/devices/virtio/descriptor_chain.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_format.h"
#include "src/devices/virtio/virtio_spec.h"

namespace edgevisor::virtio {
namespace {

absl::Status Bad(const std::string& why) { return absl::InvalidArgumentError(why); }

// Appends one data descriptor after checking it against guest RAM and the direction rule.
absl::Status Append(const GuestMemory& mem, const Desc& d, DescriptorChain& chain) {
  const bool writable = d.flags & kDescFlagWrite;
  if (!mem.Contains(d.addr, d.len)) {
    return Bad(absl::StrFormat("descriptor buffer 0x%x+0x%x is outside guest RAM", d.addr, d.len));
  }
  // §2.7.4.2: device-readable descriptors precede device-writable ones.
  if (!writable && chain.writable_bytes > 0) {
    return Bad("device-readable descriptor after a device-writable one");
  }
  chain.descs.push_back({d.addr, d.len, writable});
  (writable ? chain.writable_bytes : chain.readable_bytes) += d.len;
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<DescriptorChain> ReadDescriptorChain(const GuestMemory& mem,
                                                    const ChainLimits& limits, uint16_t head) {
  if (limits.queue_size == 0 || head >= limits.queue_size) {
    return Bad(
        absl::StrFormat("head index %d is outside the queue (size %d)", head, limits.queue_size));
  }
  DescriptorChain chain;
  chain.head = head;
  uint16_t idx = head;
  // A chain visits each descriptor at most once, so more than queue_size steps means a loop.
  for (uint32_t steps = 0;; ++steps) {
    if (steps >= limits.queue_size) return Bad("descriptor chain loops or exceeds the queue size");
    auto d = mem.ReadObj<Desc>(limits.desc_table + uint64_t{idx} * sizeof(Desc));
    if (!d.ok()) return Bad("descriptor table is outside guest RAM");

    if (d->flags & kDescFlagIndirect) {
      // §2.7.5.3.1: only with the feature, not with NEXT, not nested, a whole number of entries.
      if (!limits.indirect_allowed) return Bad("indirect descriptor without the feature");
      if (d->flags & kDescFlagNext) return Bad("indirect descriptor also has NEXT set");
      if (d->len == 0 || d->len % sizeof(Desc) != 0) {
        return Bad(absl::StrFormat("indirect table length %d is not a multiple of 16", d->len));
      }
      const uint32_t n = d->len / sizeof(Desc);
      if (n > 0xffff) return Bad("indirect table has more than 65535 entries");
      auto table = mem.Translate(d->addr, d->len);
      if (!table.ok()) return Bad("indirect table is outside guest RAM");
      uint32_t i = 0;
      for (uint32_t visited = 0;; ++visited) {
        if (visited >= n) return Bad("indirect chain loops or exceeds its table");
        Desc id;
        std::memcpy(&id, table->data() + uint64_t{i} * sizeof(Desc), sizeof(Desc));
        if (id.flags & kDescFlagIndirect) return Bad("nested indirect descriptor");
        absl::Status s = Append(mem, id, chain);
        if (!s.ok()) return s;
        if (!(id.flags & kDescFlagNext)) break;
        if (id.next >= n) {
          return Bad(
              absl::StrFormat("indirect next index %d is outside the table (%d)", id.next, n));
        }
        i = id.next;
      }
      // An indirect descriptor ends the chain in the ring (NEXT was rejected above).
      break;
    }

    absl::Status s = Append(mem, *d, chain);
    if (!s.ok()) return s;
    if (!(d->flags & kDescFlagNext)) break;
    if (d->next >= limits.queue_size) {
      return Bad(absl::StrFormat("next index %d is outside the queue (size %d)", d->next,
                                 limits.queue_size));
    }
    idx = d->next;
  }
  return chain;
}

size_t GatherReadable(const GuestMemory& mem, const DescriptorChain& chain,
                      absl::Span<uint8_t> out) {
  size_t have = 0;
  for (const ChainDesc& d : chain.descs) {
    if (d.writable || have == out.size()) continue;
    const size_t len = std::min<size_t>(d.len, out.size() - have);
    auto span = mem.Translate(d.addr, len);
    if (!span.ok()) break;
    std::memcpy(out.data() + have, span->data(), len);
    have += len;
  }
  return have;
}

size_t ScatterWritable(const GuestMemory& mem, const DescriptorChain& chain,
                       absl::Span<const uint8_t> data) {
  size_t done = 0;
  for (const ChainDesc& d : chain.descs) {
    if (!d.writable || done == data.size()) continue;
    const size_t len = std::min<size_t>(d.len, data.size() - done);
    auto span = mem.Translate(d.addr, len);
    if (!span.ok()) break;
    std::memcpy(span->data(), data.data() + done, len);
    done += len;
  }
  return done;
}

}  // namespace edgevisor::virtio
