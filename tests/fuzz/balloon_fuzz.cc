// libFuzzer target: the virtqueue chain walker plus the balloon's two guest formats (the page
// number lists of inflate/deflate, the statistics buffer), on a guest memory image taken from
// the input. Whatever the bytes say, every run of page numbers must be non-empty and within the
// 32-bit page-number space, the device's release decision (whole run in RAM, else page by page)
// must only ever name ranges inside guest RAM, and the statistics parser must stay inside its
// buffer.
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "src/devices/balloon/balloon_parse.h"
#include "src/devices/virtio/descriptor_chain.h"

namespace {
constexpr uint64_t kRam = 64 << 10;  // small, so random addresses and page numbers often land
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace edgevisor;  // NOLINT(build/namespaces)
  static GuestMemory* mem = [] {
    auto m = GuestMemory::Create({{0, kRam}});
    return new GuestMemory(std::move(*m));
  }();
  if (size < 5) return 0;
  // Header: head (2), queue size (2), flags (1).
  uint16_t head, qsize;
  std::memcpy(&head, data, 2);
  std::memcpy(&qsize, data + 2, 2);
  const bool indirect = data[4] & 1;
  auto ram = *mem->Translate(0, kRam);
  std::memset(ram.data(), 0, ram.size());
  std::memcpy(ram.data(), data + 5, std::min<size_t>(size - 5, kRam));

  virtio::ChainLimits limits{0x0 /* desc table at 0 */, qsize, indirect};
  auto chain = virtio::ReadDescriptorChain(*mem, limits, head);
  if (!chain.ok()) return 0;
  balloon::ForEachPfnRun(*mem, *chain, [](uint64_t first, uint64_t n) {
    if (n == 0 || first > 0xffffffffu || first + n - 1 > 0xffffffffu) __builtin_trap();
    const uint64_t gpa = first << balloon::kPfnShift, len = n << balloon::kPfnShift;
    if (mem->Contains(gpa, len)) {
      auto span = mem->Translate(gpa, len);
      if (!span.ok() || span->data() < mem->regions()[0].hva ||
          span->data() + span->size() > mem->regions()[0].hva + kRam) {
        __builtin_trap();
      }
    }
  });
  uint8_t buf[64 * balloon::kStatSize];
  const size_t have = virtio::GatherReadable(*mem, *chain, absl::MakeSpan(buf));
  if (have > sizeof(buf) || have > chain->readable_bytes) __builtin_trap();
  balloon::StatValues stats;
  balloon::ParseStats(absl::MakeConstSpan(buf, have), stats);
  return 0;
}
