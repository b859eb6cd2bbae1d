// libFuzzer target: the virtqueue chain walker plus the virtio-blk request parser, on a guest
// memory image taken from the input. Whatever the bytes say, the walker must return an error or
// a chain inside guest RAM, and the parser a request whose views lie inside that RAM.
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "src/devices/block/request.h"
#include "src/devices/virtio/descriptor_chain.h"

namespace {
constexpr uint64_t kRam = 64 << 10;  // small, so random addresses often land inside
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace edgevisor;  // NOLINT(build/namespaces)
  static GuestMemory* mem = [] {
    auto m = GuestMemory::Create({{0, kRam}});
    return new GuestMemory(std::move(*m));
  }();
  if (size < 8) return 0;
  // Header: head (2), queue size (2), flags (1), capacity (3).
  uint16_t head, qsize;
  std::memcpy(&head, data, 2);
  std::memcpy(&qsize, data + 2, 2);
  const bool indirect = data[4] & 1;
  const bool ro = data[4] & 2;
  const uint64_t capacity = data[5] | (data[6] << 8) | (uint64_t{data[7]} << 16);
  auto ram = *mem->Translate(0, kRam);
  std::memset(ram.data(), 0, ram.size());
  std::memcpy(ram.data(), data + 8, std::min<size_t>(size - 8, kRam));

  virtio::ChainLimits limits{0x0 /* desc table at 0 */, qsize, indirect};
  auto chain = virtio::ReadDescriptorChain(*mem, limits, head);
  if (!chain.ok()) return 0;
  for (const virtio::ChainDesc& d : chain->descs) {
    if (!mem->Contains(d.addr, d.len)) __builtin_trap();
  }
  block::DiskLimits dl;
  dl.capacity_sectors = capacity;
  dl.read_only = ro;
  auto req = block::ParseBlockRequest(*mem, *chain, dl);
  if (!req.ok()) return 0;
  const uint8_t* lo = ram.data();
  const uint8_t* hi = ram.data() + ram.size();
  if (req->status < lo || req->status >= hi) __builtin_trap();
  for (const iovec& v : req->data) {
    auto* p = static_cast<const uint8_t*>(v.iov_base);
    if (p < lo || p + v.iov_len > hi) __builtin_trap();
  }
  if (req->type == virtio_blk::kTypeGetId && !req->immediate) block::FillDeviceId(*req, "fuzz");
  return 0;
}
