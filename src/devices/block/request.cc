#include "src/devices/block/request.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_format.h"

namespace edgevisor::block {
namespace {

using namespace virtio_blk;  // NOLINT(build/namespaces): spec constants

// The device-readable or device-writable bytes of a chain, in order, as host views.
struct Stream {
  std::vector<iovec> segs;
  uint64_t total = 0;
};

Stream Collect(const GuestMemory& mem, const virtio::DescriptorChain& chain, bool writable) {
  Stream s;
  for (const virtio::ChainDesc& d : chain.descs) {
    if (d.writable != writable || d.len == 0) continue;
    // The chain walker already proved each range is inside guest RAM.
    absl::Span<uint8_t> v = *mem.Translate(d.addr, d.len);
    s.segs.push_back({v.data(), v.size()});
    s.total += v.size();
  }
  return s;
}

// [from, from + len) of the stream as iovecs. The caller checks the bounds.
std::vector<iovec> Slice(const Stream& s, uint64_t from, uint64_t len) {
  std::vector<iovec> out;
  for (const iovec& seg : s.segs) {
    if (len == 0) break;
    if (from >= seg.iov_len) {
      from -= seg.iov_len;
      continue;
    }
    const uint64_t take = std::min<uint64_t>(seg.iov_len - from, len);
    out.push_back({static_cast<uint8_t*>(seg.iov_base) + from, take});
    len -= take;
    from = 0;
  }
  return out;
}

void CopyOut(const Stream& s, uint64_t from, void* dst, uint64_t len) {
  auto* p = static_cast<uint8_t*>(dst);
  for (const iovec& v : Slice(s, from, len)) {
    std::memcpy(p, v.iov_base, v.iov_len);
    p += v.iov_len;
  }
}

// True iff [sector, sector + count) lies inside the disk, without overflow.
bool InDisk(uint64_t sector, uint64_t count, uint64_t capacity) {
  return sector <= capacity && count <= capacity - sector;
}

BlockRequest Fail(BlockRequest r, uint8_t status) {
  r.immediate = true;
  r.immediate_status = status;
  r.data.clear();
  r.ranges.clear();
  r.used_len = 1;
  return r;
}

}  // namespace

absl::StatusOr<BlockRequest> ParseBlockRequest(const GuestMemory& mem,
                                               const virtio::DescriptorChain& chain,
                                               const DiskLimits& limits) {
  const Stream in = Collect(mem, chain, /*writable=*/false);
  const Stream out = Collect(mem, chain, /*writable=*/true);
  if (out.total == 0) {
    return absl::InvalidArgumentError("block request has no device-writable status byte");
  }
  BlockRequest r;
  {
    const iovec last = Slice(out, out.total - 1, 1).front();
    r.status = static_cast<uint8_t*>(last.iov_base);
  }
  if (in.total < sizeof(ReqHeader)) return Fail(std::move(r), kStatusIoErr);
  ReqHeader h;
  CopyOut(in, 0, &h, sizeof(h));
  r.type = h.type;
  const uint64_t in_data = in.total - sizeof(ReqHeader);  // readable bytes after the header
  const uint64_t out_data = out.total - 1;                // writable bytes before the status

  switch (h.type) {
    case kTypeIn:
    case kTypeOut: {
      const bool is_out = h.type == kTypeOut;
      if (is_out && limits.read_only) return Fail(std::move(r), kStatusIoErr);
      // Data flows one way only: an IN has no readable data, an OUT no writable data.
      if ((is_out ? out_data : in_data) != 0) return Fail(std::move(r), kStatusIoErr);
      const uint64_t len = is_out ? in_data : out_data;
      if (len % kSectorSize != 0 || !InDisk(h.sector, len / kSectorSize, limits.capacity_sectors)) {
        return Fail(std::move(r), kStatusIoErr);
      }
      r.data = is_out ? Slice(in, sizeof(ReqHeader), len) : Slice(out, 0, len);
      if (r.data.size() > limits.seg_max) return Fail(std::move(r), kStatusIoErr);
      for (const iovec& v : r.data) {
        if (v.iov_len > limits.size_max) return Fail(std::move(r), kStatusIoErr);
      }
      r.offset = h.sector * kSectorSize;
      r.data_len = len;
      r.used_len = static_cast<uint32_t>((is_out ? 0 : len) + 1);
      return r;
    }
    case kTypeFlush:
      return r;
    case kTypeGetId:
      if (out_data == 0) return Fail(std::move(r), kStatusIoErr);
      r.data = Slice(out, 0, std::min<uint64_t>(out_data, kIdBytes));
      r.data_len = std::min<uint64_t>(out_data, kIdBytes);
      r.used_len = static_cast<uint32_t>(r.data_len + 1);
      return r;
    case kTypeDiscard:
    case kTypeWriteZeroes: {
      const bool zeroes = h.type == kTypeWriteZeroes;
      if (limits.read_only) return Fail(std::move(r), kStatusIoErr);
      const uint64_t n = in_data / sizeof(DiscardSegment);
      const uint32_t max_seg = zeroes ? limits.max_write_zeroes_seg : limits.max_discard_seg;
      const uint32_t max_sectors =
          zeroes ? limits.max_write_zeroes_sectors : limits.max_discard_sectors;
      if (n == 0 || in_data % sizeof(DiscardSegment) != 0 || n > max_seg) {
        return Fail(std::move(r), kStatusIoErr);
      }
      for (uint64_t i = 0; i < n; ++i) {
        DiscardSegment seg;
        CopyOut(in, sizeof(ReqHeader) + i * sizeof(seg), &seg, sizeof(seg));
        // §5.2.6.2: unknown flags, or unmap on a discard, are UNSUPP.
        if ((seg.flags & ~kWriteZeroesFlagUnmap) != 0 ||
            (!zeroes && (seg.flags & kWriteZeroesFlagUnmap))) {
          return Fail(std::move(r), kStatusUnsupp);
        }
        if (seg.num_sectors > max_sectors ||
            !InDisk(seg.sector, seg.num_sectors, limits.capacity_sectors)) {
          return Fail(std::move(r), kStatusIoErr);
        }
        r.ranges.push_back({seg.sector * kSectorSize, uint64_t{seg.num_sectors} * kSectorSize,
                            (seg.flags & kWriteZeroesFlagUnmap) != 0});
      }
      return r;
    }
    default:
      return Fail(std::move(r), kStatusUnsupp);
  }
}

void FillDeviceId(const BlockRequest& req, const std::string& serial) {
  size_t copied = 0;
  for (const iovec& v : req.data) {
    auto* p = static_cast<uint8_t*>(v.iov_base);
    for (size_t i = 0; i < v.iov_len; ++i, ++copied) {
      p[i] = copied < serial.size() ? static_cast<uint8_t>(serial[copied]) : 0;
    }
  }
}

}  // namespace edgevisor::block
