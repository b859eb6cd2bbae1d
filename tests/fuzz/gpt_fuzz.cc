// libFuzzer target: growing a GPT partition on a disk whose first sectors are the input and
// which is twice as large. Any input gives a growth or an error; nothing is read or written
// outside the disk.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "src/appliance/gpt.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<uint8_t> disk(2 * (size + 34 * 512));
  std::memcpy(disk.data(), data, size);
  edgevisor::appliance::gpt::Disk d;
  d.bytes = disk.size();
  d.read = [&](uint64_t off, absl::Span<uint8_t> out) {
    if (off > disk.size() || out.size() > disk.size() - off) abort();  // a bounds bug
    std::memcpy(out.data(), disk.data() + off, out.size());
    return absl::OkStatus();
  };
  d.write = [&](uint64_t off, absl::Span<const uint8_t> in) {
    if (off > disk.size() || in.size() > disk.size() - off) abort();
    std::memcpy(disk.data() + off, in.data(), in.size());
    return absl::OkStatus();
  };
  (void)edgevisor::appliance::gpt::GrowPartitionToEnd(d, "data");
  return 0;
}
