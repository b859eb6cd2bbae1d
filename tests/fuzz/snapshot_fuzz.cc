// libFuzzer target: a snapshot state file -> Decode (header, CRC-32, depth-limited CBOR) ->
// Parse (every VmState field). Any input gives a state or an error; nothing may crash, however
// deep the CBOR nests. A mutated file almost never keeps a valid checksum, so each input is also
// decoded with its CRC recomputed (as file.h defines it): that way the mutations reach the CBOR
// reader and Parse instead of stopping at "checksum mismatch".
#include <zlib.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "src/vmm/snapshot/file.h"
#include "src/vmm/snapshot/vm_state.h"

namespace {

using edgevisor::snapshot::kHeaderSize;

constexpr size_t kCrcOffset = 24;

void DecodeAndParse(const uint8_t* data, size_t size) {
  auto d = edgevisor::snapshot::Decode({data, size});
  if (d.ok()) (void)edgevisor::snapshot::Parse(d->state);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  DecodeAndParse(data, size);
  if (size < kHeaderSize) return 0;
  std::vector<uint8_t> file(data, data + size);
  std::memset(file.data() + kCrcOffset, 0, 4);
  uLong crc = crc32(0L, Z_NULL, 0);
  crc = crc32(crc, file.data(), static_cast<uInt>(size));
  for (int i = 0; i < 4; ++i) file[kCrcOffset + i] = static_cast<uint8_t>(crc >> (8 * i));
  DecodeAndParse(file.data(), file.size());
  return 0;
}
