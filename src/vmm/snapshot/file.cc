#include "src/vmm/snapshot/file.h"

#include <zlib.h>

#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace edgevisor::snapshot {
namespace {

constexpr size_t kCrcOffset = 24;
constexpr size_t kVersionStringOffset = 32;
constexpr size_t kVersionStringSize = 32;

void PutU32(std::string& b, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) b[at + i] = static_cast<char>(v >> (8 * i));
}
void PutU64(std::string& b, size_t at, uint64_t v) {
  for (int i = 0; i < 8; ++i) b[at + i] = static_cast<char>(v >> (8 * i));
}
uint32_t GetU32(absl::Span<const uint8_t> b, size_t at) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= uint32_t{b[at + i]} << (8 * i);
  return v;
}
uint64_t GetU64(absl::Span<const uint8_t> b, size_t at) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= uint64_t{b[at + i]} << (8 * i);
  return v;
}

// CRC-32 of the header with its CRC field read as 0, then of the state.
uint32_t Checksum(absl::Span<const uint8_t> header, absl::Span<const uint8_t> state) {
  uint8_t h[kHeaderSize];
  std::memcpy(h, header.data(), kHeaderSize);
  std::memset(h + kCrcOffset, 0, 4);
  uLong crc = crc32(0L, Z_NULL, 0);
  crc = crc32(crc, h, kHeaderSize);
  // zlib takes uInt lengths; the state is bounded by kMaxStateBytes.
  if (!state.empty()) crc = crc32(crc, state.data(), static_cast<uInt>(state.size()));
  return static_cast<uint32_t>(crc);
}

// The DOM builder, refusing nesting deeper than the state ever has: nlohmann's CBOR reader
// recurses once per level, so a crafted file of nested arrays would otherwise exhaust the stack.
class DepthLimitedSax : public nlohmann::detail::json_sax_dom_parser<Json> {
 public:
  static constexpr int kMaxDepth = 16;
  explicit DepthLimitedSax(Json& out) : json_sax_dom_parser(out, /*allow_exceptions=*/false) {}
  bool start_object(std::size_t n) {
    return ++depth_ <= kMaxDepth && json_sax_dom_parser::start_object(n);
  }
  bool end_object() {
    --depth_;
    return json_sax_dom_parser::end_object();
  }
  bool start_array(std::size_t n) {
    return ++depth_ <= kMaxDepth && json_sax_dom_parser::start_array(n);
  }
  bool end_array() {
    --depth_;
    return json_sax_dom_parser::end_array();
  }

 private:
  int depth_ = 0;
};

absl::Status Bad(const std::string& why) {
  return absl::InvalidArgumentError(absl::StrCat("snapshot: ", why));
}

}  // namespace

Arch HostArch() {
#if defined(__aarch64__)
  return Arch::kAarch64;
#else
  return Arch::kX86_64;
#endif
}

const char* ArchName(uint32_t arch) {
  switch (static_cast<Arch>(arch)) {
    case Arch::kX86_64:
      return "x86_64";
    case Arch::kAarch64:
      return "aarch64";
  }
  return "an unknown architecture";
}

std::string Encode(const Json& state, const std::string& vmm_version, Arch arch) {
  const std::vector<uint8_t> body = Json::to_cbor(state);
  std::string out(kHeaderSize, '\0');
  std::memcpy(out.data(), kMagic, sizeof(kMagic));
  PutU32(out, 8, kFormatVersion);
  PutU32(out, 12, static_cast<uint32_t>(arch));
  PutU64(out, 16, body.size());
  std::memcpy(out.data() + kVersionStringOffset, vmm_version.data(),
              std::min(vmm_version.size(), kVersionStringSize - 1));
  out.append(reinterpret_cast<const char*>(body.data()), body.size());
  const auto* bytes = reinterpret_cast<const uint8_t*>(out.data());
  PutU32(out, kCrcOffset,
         Checksum({bytes, kHeaderSize}, {bytes + kHeaderSize, out.size() - kHeaderSize}));
  return out;
}

absl::StatusOr<Decoded> Decode(absl::Span<const uint8_t> bytes, Arch host) {
  if (bytes.size() < kHeaderSize) {
    return Bad(absl::StrFormat("truncated: %d bytes, shorter than the %d-byte header", bytes.size(),
                               kHeaderSize));
  }
  if (std::memcmp(bytes.data(), kMagic, sizeof(kMagic)) != 0) {
    return Bad("not an edgevisor snapshot state file (bad magic)");
  }
  const uint32_t version = GetU32(bytes, 8);
  if (version != kFormatVersion) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "snapshot: format version %d; this edgevisor reads version %d", version, kFormatVersion));
  }
  const uint32_t arch = GetU32(bytes, 12);
  if (arch != static_cast<uint32_t>(Arch::kX86_64) &&
      arch != static_cast<uint32_t>(Arch::kAarch64)) {
    return Bad(absl::StrFormat("unknown architecture %d in the header", arch));
  }
  if (arch != static_cast<uint32_t>(host)) {
    return absl::FailedPreconditionError(absl::StrFormat("snapshot: taken on %s; this host is %s",
                                                         ArchName(arch),
                                                         ArchName(static_cast<uint32_t>(host))));
  }
  const uint64_t length = GetU64(bytes, 16);
  if (length > kMaxStateBytes) {
    return Bad(absl::StrFormat("the header claims %d bytes of state, more than the limit of %d",
                               length, kMaxStateBytes));
  }
  if (length != bytes.size() - kHeaderSize) {
    return Bad(absl::StrFormat("%s: the header says %d bytes of state, the file has %d",
                               length > bytes.size() - kHeaderSize ? "truncated" : "trailing data",
                               length, bytes.size() - kHeaderSize));
  }
  if (GetU32(bytes, 28) != 0) return Bad("reserved header field is not 0");
  const auto state = bytes.subspan(kHeaderSize);
  const uint32_t want = GetU32(bytes, kCrcOffset);
  const uint32_t got = Checksum(bytes.first(kHeaderSize), state);
  if (want != got) {
    return Bad(
        absl::StrFormat("checksum mismatch (file 0x%08x, computed 0x%08x): the file is "
                        "corrupt",
                        want, got));
  }
  Decoded d;
  const char* v = reinterpret_cast<const char*>(bytes.data() + kVersionStringOffset);
  d.vmm_version.assign(v, strnlen(v, kVersionStringSize));
  DepthLimitedSax sax(d.state);
  bool ok = false;
  try {
    ok = Json::sax_parse(state.begin(), state.end(), &sax, nlohmann::detail::input_format_t::cbor,
                         /*strict=*/true);
  } catch (const Json::exception&) {
    ok = false;
  }
  if (!ok || sax.is_errored()) {
    return Bad(absl::StrFormat("the state is not valid CBOR, or nested deeper than %d levels",
                               DepthLimitedSax::kMaxDepth));
  }
  return d;
}

}  // namespace edgevisor::snapshot
