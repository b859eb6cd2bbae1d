// libFuzzer target: the virtio-net TX path without the TAP: the chain walker, the header
// gather, and the header check, on a guest memory image taken from the input.
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "src/devices/net/packet.h"
#include "src/devices/virtio/descriptor_chain.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace edgevisor;  // NOLINT(build/namespaces)
  constexpr uint64_t kRam = 64 << 10;
  static GuestMemory* mem = [] {
    auto m = GuestMemory::Create({{0, kRam}});
    return new GuestMemory(std::move(*m));
  }();
  if (size < 12) return 0;
  uint16_t head, qsize;
  uint64_t features;
  std::memcpy(&head, data, 2);
  std::memcpy(&qsize, data + 2, 2);
  std::memcpy(&features, data + 4, 8);
  auto ram = *mem->Translate(0, kRam);
  std::memset(ram.data(), 0, ram.size());
  std::memcpy(ram.data(), data + 12, std::min<size_t>(size - 12, kRam));
  auto chain = virtio::ReadDescriptorChain(*mem, {0, qsize, (features & 1) != 0}, head);
  if (!chain.ok()) return 0;
  std::vector<iovec> iov;
  for (const virtio::ChainDesc& d : chain->descs) {
    auto v = mem->Translate(d.addr, d.len);
    if (!v.ok()) __builtin_trap();  // the walker promised this range is inside RAM
    iov.push_back({v->data(), v->size()});
  }
  virtio_net::NetHdr h;
  if (net::GatherTxHeader(iov, &h)) {
    (void)net::ValidateTxHeader(h, chain->readable_bytes - sizeof(h), features);
  }
  (void)net::TapOffloadFlags(features);
  return 0;
}
