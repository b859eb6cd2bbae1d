#include "src/vmm/acpi/sdt.h"

#include <algorithm>
#include <cstddef>

namespace edgevisor::acpi {
namespace {

constexpr std::string_view kOemId = "EDGEVR";         // 6 bytes
constexpr std::string_view kOemTableId = "EDGEVISR";  // 8 bytes
constexpr std::string_view kCreatorId = "EDGV";       // 4 bytes
constexpr uint32_t kCreatorRevision = 1;

void AppendStr(Bytes& b, std::string_view s, size_t n) {
  for (size_t i = 0; i < n; ++i) b.push_back(i < s.size() ? static_cast<uint8_t>(s[i]) : ' ');
}

void PutLe(Bytes& b, size_t offset, uint64_t v, int n) {
  for (int i = 0; i < n; ++i) b.at(offset + i) = static_cast<uint8_t>(v >> (8 * i));
}

}  // namespace

Sdt::Sdt(std::string_view signature, uint8_t revision) {
  AppendStr(b_, signature, 4);
  AppendLe(b_, 0, 4);  // length, set by Finish()
  b_.push_back(revision);
  b_.push_back(0);  // checksum, set by Finish()
  AppendStr(b_, kOemId, 6);
  AppendStr(b_, kOemTableId, 8);
  AppendLe(b_, 1, 4);  // OEM revision
  AppendStr(b_, kCreatorId, 4);
  AppendLe(b_, kCreatorRevision, 4);
}

Sdt& Sdt::U8(uint8_t v) { return AppendLe(b_, v, 1), *this; }
Sdt& Sdt::U16(uint16_t v) { return AppendLe(b_, v, 2), *this; }
Sdt& Sdt::U32(uint32_t v) { return AppendLe(b_, v, 4), *this; }
Sdt& Sdt::U64(uint64_t v) { return AppendLe(b_, v, 8), *this; }
Sdt& Sdt::Raw(const Bytes& b) { return b_.insert(b_.end(), b.begin(), b.end()), *this; }
Sdt& Sdt::PutU8(size_t offset, uint8_t v) { return PutLe(b_, offset, v, 1), *this; }
Sdt& Sdt::PutU16(size_t offset, uint16_t v) { return PutLe(b_, offset, v, 2), *this; }
Sdt& Sdt::PutU32(size_t offset, uint32_t v) { return PutLe(b_, offset, v, 4), *this; }
Sdt& Sdt::PutU64(size_t offset, uint64_t v) { return PutLe(b_, offset, v, 8), *this; }
Sdt& Sdt::PutRaw(size_t offset, const Bytes& b) {
  std::copy(b.begin(), b.end(), b_.begin() + static_cast<std::ptrdiff_t>(offset));
  return *this;
}
Sdt& Sdt::PadTo(size_t size) {
  if (b_.size() < size) b_.resize(size, 0);
  return *this;
}

Bytes Sdt::Finish() {
  PutLe(b_, 4, b_.size(), 4);
  b_[kSdtChecksumOffset] = 0;
  b_[kSdtChecksumOffset] = Checksum(b_);
  return b_;
}

Bytes Gas(AddressSpace space, uint8_t bit_width, uint64_t address, uint8_t access_size) {
  Bytes b{static_cast<uint8_t>(space), bit_width, 0 /* bit offset */, access_size};
  AppendLe(b, address, 8);
  return b;
}

uint8_t Checksum(const Bytes& b, size_t begin, size_t end) {
  uint8_t sum = 0;
  for (size_t i = begin; i < std::min(end, b.size()); ++i) sum = static_cast<uint8_t>(sum + b[i]);
  return static_cast<uint8_t>(-sum);
}

Bytes Rsdp(uint64_t xsdt_addr) {
  Bytes b;
  AppendStr(b, "RSD PTR ", 8);
  b.push_back(0);  // checksum over the first 20 bytes
  AppendStr(b, kOemId, 6);
  b.push_back(2);     // revision: ACPI 2.0+ (XSDT)
  AppendLe(b, 0, 4);  // RSDT address: none
  AppendLe(b, kRsdpSize, 4);
  AppendLe(b, xsdt_addr, 8);
  b.push_back(0);  // extended checksum over all 36 bytes
  AppendLe(b, 0, 3);
  b[8] = Checksum(b, 0, 20);
  b[32] = Checksum(b);
  return b;
}

}  // namespace edgevisor::acpi
