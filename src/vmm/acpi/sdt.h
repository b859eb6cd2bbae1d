// ACPI system description table framing: the common 36-byte header, checksums, and the Generic
// Address Structure. Tables are built as byte vectors, little-endian, then checksummed.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

namespace edgevisor::acpi {

using Bytes = std::vector<uint8_t>;

// Appends the low `n` bytes of `v`, little-endian (ACPI's byte order for every field and AML
// integer).
inline void AppendLe(Bytes& b, uint64_t v, int n) {
  for (int i = 0; i < n; ++i) b.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

inline constexpr size_t kSdtHeaderSize = 36;
inline constexpr size_t kSdtChecksumOffset = 9;
inline constexpr size_t kRsdpSize = 36;

// A table under construction: header first, body appended, then Finish() sets the length and
// the checksum.
class Sdt {
 public:
  Sdt(std::string_view signature, uint8_t revision);
  Sdt& U8(uint8_t v);
  Sdt& U16(uint16_t v);
  Sdt& U32(uint32_t v);
  Sdt& U64(uint64_t v);
  Sdt& Raw(const Bytes& b);
  // Writes `v` at `offset` (already appended) - for fields whose value is known late.
  Sdt& PutU8(size_t offset, uint8_t v);
  Sdt& PutU16(size_t offset, uint16_t v);
  Sdt& PutU32(size_t offset, uint32_t v);
  Sdt& PutU64(size_t offset, uint64_t v);
  Sdt& PutRaw(size_t offset, const Bytes& b);
  // Pads with zeros up to `size` bytes in all.
  Sdt& PadTo(size_t size);
  size_t size() const { return b_.size(); }
  Bytes Finish();

 private:
  Bytes b_;
};

// Generic Address Structure (12 bytes).
enum class AddressSpace : uint8_t { kSystemMemory = 0, kSystemIo = 1 };
Bytes Gas(AddressSpace space, uint8_t bit_width, uint64_t address, uint8_t access_size = 1);

// The value that makes the byte sum of `b` zero when stored in one of its bytes that is zero.
uint8_t Checksum(const Bytes& b, size_t begin = 0, size_t end = SIZE_MAX);

// RSDP revision 2 pointing at the XSDT.
Bytes Rsdp(uint64_t xsdt_addr);

}  // namespace edgevisor::acpi
