#include "src/vmm/acpi/aml.h"

#include "src/vmm/acpi/sdt.h"

namespace edgevisor::acpi::aml {
namespace {

constexpr uint8_t kZeroOp = 0x00;
constexpr uint8_t kOneOp = 0x01;
constexpr uint8_t kNameOp = 0x08;
constexpr uint8_t kBytePrefix = 0x0a;
constexpr uint8_t kWordPrefix = 0x0b;
constexpr uint8_t kDWordPrefix = 0x0c;
constexpr uint8_t kStringPrefix = 0x0d;
constexpr uint8_t kQWordPrefix = 0x0e;
constexpr uint8_t kScopeOp = 0x10;
constexpr uint8_t kBufferOp = 0x11;
constexpr uint8_t kPackageOp = 0x12;
constexpr uint8_t kExtOpPrefix = 0x5b;
constexpr uint8_t kDeviceOp = 0x82;
constexpr uint8_t kRootChar = '\\';
constexpr uint8_t kDualNamePrefix = 0x2e;
constexpr uint8_t kMultiNamePrefix = 0x2f;

// Byte by byte: GCC 12's -Warray-bounds misfires on vector::insert into a 1-byte vector.
void Append(Bytes& out, const Bytes& in) {
  for (uint8_t b : in) out.push_back(b);
}

Bytes Concat(const std::vector<Bytes>& parts) {
  Bytes out;
  for (const Bytes& p : parts) Append(out, p);
  return out;
}

// op [ext] PkgLength name body
Bytes Container(std::initializer_list<uint8_t> op, const Bytes& head, const Bytes& body) {
  Bytes inner = head;
  Append(inner, body);
  Bytes out(op);
  Append(out, PkgLength(inner.size()));
  Append(out, inner);
  return out;
}

}  // namespace

Bytes PkgLength(size_t body_len) {
  // One byte holds up to 63 (6 bits); n following bytes add 4 + 8n bits. The length includes
  // the PkgLength bytes themselves.
  if (body_len + 1 < 0x40) return {static_cast<uint8_t>(body_len + 1)};
  for (int extra = 1; extra <= 3; ++extra) {
    const size_t total = body_len + 1 + extra;
    if (total < (size_t{1} << (4 + 8 * extra))) {
      Bytes out{static_cast<uint8_t>((extra << 6) | (total & 0xf))};
      for (int i = 0; i < extra; ++i) out.push_back(static_cast<uint8_t>(total >> (4 + 8 * i)));
      return out;
    }
  }
  return {};  // beyond 256 MiB: no DSDT of ours comes close
}

Bytes NameString(std::string_view path) {
  Bytes out;
  if (!path.empty() && path.front() == '\\') {
    out.push_back(kRootChar);
    path.remove_prefix(1);
  }
  std::vector<std::string_view> segs;
  while (!path.empty()) {
    const size_t dot = path.find('.');
    segs.push_back(path.substr(0, dot));
    path = dot == std::string_view::npos ? std::string_view() : path.substr(dot + 1);
  }
  if (segs.size() == 2) out.push_back(kDualNamePrefix);
  if (segs.size() > 2) {
    out.push_back(kMultiNamePrefix);
    out.push_back(static_cast<uint8_t>(segs.size()));
  }
  if (segs.empty()) out.push_back(0x00);  // NullName
  for (std::string_view s : segs) {
    for (size_t i = 0; i < 4; ++i) out.push_back(i < s.size() ? static_cast<uint8_t>(s[i]) : '_');
  }
  return out;
}

Bytes Integer(uint64_t v) {
  Bytes out;
  if (v == 0) return {kZeroOp};
  if (v == 1) return {kOneOp};
  if (v <= 0xff) {
    out.push_back(kBytePrefix);
    AppendLe(out, v, 1);
  } else if (v <= 0xffff) {
    out.push_back(kWordPrefix);
    AppendLe(out, v, 2);
  } else if (v <= 0xffffffff) {
    out.push_back(kDWordPrefix);
    AppendLe(out, v, 4);
  } else {
    out.push_back(kQWordPrefix);
    AppendLe(out, v, 8);
  }
  return out;
}

Bytes String(std::string_view s) {
  Bytes out{kStringPrefix};
  for (char c : s) out.push_back(static_cast<uint8_t>(c));
  out.push_back(0);
  return out;
}

Bytes EisaId(std::string_view id) {
  // Three letters, 5 bits each ('A' = 1), then four hex digits; stored big-endian.
  auto letter = [&](size_t i) -> uint32_t { return i < id.size() ? (id[i] - '@') & 0x1f : 0; };
  auto hex = [&](size_t i) -> uint32_t {
    if (i >= id.size()) return 0;
    const char c = id[i];
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return 0;
  };
  const uint32_t be = (letter(0) << 26) | (letter(1) << 21) | (letter(2) << 16) | (hex(3) << 12) |
                      (hex(4) << 8) | (hex(5) << 4) | hex(6);
  const uint32_t v = __builtin_bswap32(be);
  Bytes out{kDWordPrefix};
  AppendLe(out, v, 4);
  return out;
}

Bytes Buffer(const Bytes& data) { return Container({kBufferOp}, Integer(data.size()), data); }

Bytes Package(const std::vector<Bytes>& elements) {
  return Container({kPackageOp}, {static_cast<uint8_t>(elements.size())}, Concat(elements));
}

Bytes Name(std::string_view name, const Bytes& value) {
  Bytes out{kNameOp};
  Append(out, NameString(name));
  Append(out, value);
  return out;
}

Bytes Scope(std::string_view name, const std::vector<Bytes>& terms) {
  return Container({kScopeOp}, NameString(name), Concat(terms));
}

Bytes Device(std::string_view name, const std::vector<Bytes>& terms) {
  return Container({kExtOpPrefix, kDeviceOp}, NameString(name), Concat(terms));
}

Bytes IoPort(uint16_t base, uint8_t length) {
  // Small item 0x08 (I/O port), length 7: info (bit 0: 16-bit decode), min, max, align, length.
  Bytes out{0x47, 0x01};
  AppendLe(out, base, 2);
  AppendLe(out, base, 2);
  out.push_back(0x01);
  out.push_back(length);
  return out;
}

Bytes IrqNoFlags(uint8_t irq) {
  // Small item 0x04 (IRQ), length 2: the 16-bit mask; without the flags byte it means edge,
  // active high, exclusive.
  Bytes out{0x22};
  AppendLe(out, irq < 16 ? (1u << irq) : 0u, 2);
  return out;
}

Bytes Memory32Fixed(uint32_t base, uint32_t length) {
  // Large item 0x06, length 9: info (bit 0: read-write), base, length.
  Bytes out{0x86, 0x09, 0x00, 0x01};
  AppendLe(out, base, 4);
  AppendLe(out, length, 4);
  return out;
}

Bytes Interrupt(uint32_t gsi, bool edge) {
  // Large item 0x09, length 6: flags (bit 0 consumer, bit 1 edge, bit 2 active low, bit 3
  // shared), table length 1, the interrupt number.
  Bytes out{0x89, 0x06, 0x00, static_cast<uint8_t>(0x01 | (edge ? 0x02 : 0x00)), 0x01};
  AppendLe(out, gsi, 4);
  return out;
}

Bytes ResourceTemplate(const std::vector<Bytes>& descriptors) {
  Bytes body = Concat(descriptors);
  body.push_back(0x79);  // End Tag
  body.push_back(0x00);  // checksum 0: "the checksum is treated as correct"
  return Buffer(body);
}

}  // namespace edgevisor::acpi::aml
