#include "src/appliance/bundle.h"

#include <sodium.h>

#include <cstring>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "nlohmann/json.hpp"
#include "src/base/errors.h"
#include "src/base/json_fields.h"

namespace edgevisor::appliance::bundle {
namespace {

using json_fields::Bad;
using json_fields::CheckObject;
using json_fields::GetBool;
using json_fields::GetString;
using json_fields::GetUint;
using Json = nlohmann::json;

static_assert(sizeof(crypto_hash_sha256_state) <= 128);

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Exactly 2*N hex digits into OUT.
bool FromHex(std::string_view hex, absl::Span<uint8_t> out) {
  if (hex.size() != 2 * out.size()) return false;
  for (size_t i = 0; i < out.size(); ++i) {
    const int hi = HexDigit(hex[2 * i]), lo = HexDigit(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return true;
}

absl::StatusOr<Version> GetVersion(const Json& j, const std::string& key, bool required) {
  EV_ASSIGN_OR_RETURN(const std::string text, GetString(j, "", key, required));
  auto v = ParseVersion(text);
  if (!v.ok()) return Bad(key, std::string(v.status().message()));
  return v;
}

}  // namespace

absl::StatusOr<Version> ParseVersion(std::string_view text) {
  Version v;
  v.text = std::string(text);
  const std::vector<absl::string_view> parts =
      absl::StrSplit(absl::string_view(text.data(), text.size()), '.');
  if (text.empty() || parts.size() > 4) {
    return absl::InvalidArgumentError(
        absl::StrFormat("'%s' is not a version (1 to 4 numbers with dots, like 1.2.3)", text));
  }
  for (absl::string_view p : parts) {
    uint32_t n = 0;
    if (p.empty() || p.size() > 6 ||
        !std::all_of(p.begin(), p.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
        !absl::SimpleAtoi(p, &n)) {
      return absl::InvalidArgumentError(
          absl::StrFormat("'%s' is not a version (1 to 4 numbers with dots, like 1.2.3)", text));
    }
    v.parts.push_back(n);
  }
  return v;
}

int CompareVersions(const Version& a, const Version& b) {
  const size_t n = std::max(a.parts.size(), b.parts.size());
  for (size_t i = 0; i < n; ++i) {
    const uint32_t x = i < a.parts.size() ? a.parts[i] : 0;
    const uint32_t y = i < b.parts.size() ? b.parts[i] : 0;
    if (x != y) return x < y ? -1 : 1;
  }
  return 0;
}

absl::StatusOr<uint32_t> ParseHeader(absl::Span<const uint8_t> h) {
  if (h.size() < kHeaderSize) {
    return absl::InvalidArgumentError(
        absl::StrFormat("truncated: %d bytes, shorter than the bundle header", h.size()));
  }
  if (std::memcmp(h.data(), kMagic, sizeof(kMagic)) != 0) {
    return absl::InvalidArgumentError("not an edgevisor update bundle (no EVBUNDL1 header)");
  }
  const uint32_t len = static_cast<uint32_t>(h[8]) | static_cast<uint32_t>(h[9]) << 8 |
                       static_cast<uint32_t>(h[10]) << 16 | static_cast<uint32_t>(h[11]) << 24;
  if (h[12] != 0 || h[13] != 0 || h[14] != 0 || h[15] != 0) {
    return absl::InvalidArgumentError("header: the reserved bytes are not zero");
  }
  if (len < 2 || len > kMaxManifest) {
    return absl::InvalidArgumentError(
        absl::StrFormat("header: a manifest of %d bytes (2 to %d)", len, kMaxManifest));
  }
  return len;
}

absl::StatusOr<Manifest> ParseManifest(std::string_view text) {
  const Json j = Json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return absl::InvalidArgumentError("manifest: not valid JSON");
  EV_RETURN_IF_ERROR(CheckObject(j, "",
                                 {"format", "arch", "version", "min_version", "allow_downgrade",
                                  "slot", "edgevisor", "kernel", "created"}));
  EV_ASSIGN_OR_RETURN(const uint64_t format, GetUint(j, "", "format", 0, 1000000));
  if (format != 1) return Bad("format", absl::StrFormat("%d is not 1 (this reader's)", format));
  Manifest m;
  EV_ASSIGN_OR_RETURN(m.arch, GetString(j, "", "arch", true));
  if (m.arch != "x86_64" && m.arch != "arm64") {
    return Bad("arch", absl::StrFormat("'%s' is not x86_64 or arm64", m.arch));
  }
  EV_ASSIGN_OR_RETURN(m.version, GetVersion(j, "version", true));
  if (j.contains("min_version")) {
    EV_ASSIGN_OR_RETURN(m.min_version, GetVersion(j, "min_version", true));
  }
  EV_ASSIGN_OR_RETURN(m.allow_downgrade, GetBool(j, "", "allow_downgrade", false, false));
  if (!j.contains("slot")) return Bad("slot", "is missing");
  const Json& s = j["slot"];
  EV_RETURN_IF_ERROR(CheckObject(s, "slot", {"size", "sha256"}));
  // A slot partition is far smaller than 64 GiB; the bound keeps arithmetic on it safe.
  EV_ASSIGN_OR_RETURN(m.slot_size, GetUint(s, "slot", "size", 4096, uint64_t{1} << 36));
  EV_ASSIGN_OR_RETURN(const std::string sha, GetString(s, "slot", "sha256", true));
  if (!FromHex(sha, absl::MakeSpan(m.slot_sha256))) {
    return Bad("slot.sha256", "must be 64 hex digits");
  }
  EV_ASSIGN_OR_RETURN(m.edgevisor, GetString(j, "", "edgevisor", false));
  EV_ASSIGN_OR_RETURN(m.kernel, GetString(j, "", "kernel", false));
  if (j.contains("created")) {
    EV_RETURN_IF_ERROR(GetUint(j, "", "created", 0, ~uint64_t{0}).status());
  }
  return m;
}

absl::StatusOr<std::vector<PublicKey>> ParseKeys(std::string_view text) {
  std::vector<PublicKey> keys;
  int line_no = 0;
  for (absl::string_view line : absl::StrSplit(absl::string_view(text.data(), text.size()), '\n')) {
    ++line_no;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line[0] == '#') continue;
    PublicKey k{};
    if (!FromHex(std::string_view(line.data(), line.size()), absl::MakeSpan(k))) {
      return absl::InvalidArgumentError(
          absl::StrFormat("line %d: not an Ed25519 public key (64 hex digits)", line_no));
    }
    keys.push_back(k);
  }
  if (keys.empty()) return absl::InvalidArgumentError("no key in it");
  return keys;
}

absl::Status VerifySignature(absl::Span<const uint8_t> signed_bytes,
                             absl::Span<const uint8_t> signature,
                             const std::vector<PublicKey>& keys) {
  if (sodium_init() < 0) return absl::InternalError("libsodium did not initialise");
  if (signature.size() != kSignatureSize) {
    return absl::InvalidArgumentError("truncated: the signature is incomplete");
  }
  for (const PublicKey& k : keys) {
    if (crypto_sign_verify_detached(signature.data(), signed_bytes.data(), signed_bytes.size(),
                                    k.data()) == 0) {
      return absl::OkStatus();
    }
  }
  return absl::PermissionDeniedError(absl::StrFormat(
      "the signature is not by any of the %d trusted key(s) (a bad signature, or another key's)",
      keys.size()));
}

absl::Status CheckApplicable(const Manifest& m, std::string_view arch, const Version& running) {
  if (m.arch != arch) {
    return absl::FailedPreconditionError(
        absl::StrFormat("the bundle is for %s; this box is %s", m.arch, arch));
  }
  const int c = CompareVersions(m.version, running);
  if (c <= 0 && !m.allow_downgrade) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "release %s is %s the running %s (a bundle may allow that with allow_downgrade)",
        m.version.text, c == 0 ? "the same as" : "older than", running.text));
  }
  if (m.min_version && CompareVersions(running, *m.min_version) < 0) {
    return absl::FailedPreconditionError(
        absl::StrFormat("release %s updates from %s or later; this box runs %s", m.version.text,
                        m.min_version->text, running.text));
  }
  return absl::OkStatus();
}

Hasher::Hasher() {
  crypto_hash_sha256_init(reinterpret_cast<crypto_hash_sha256_state*>(state_.data()));
}

void Hasher::Update(absl::Span<const uint8_t> data) {
  crypto_hash_sha256_update(reinterpret_cast<crypto_hash_sha256_state*>(state_.data()), data.data(),
                            data.size());
}

Sha256 Hasher::Finish() {
  Sha256 out{};
  crypto_hash_sha256_final(reinterpret_cast<crypto_hash_sha256_state*>(state_.data()), out.data());
  return out;
}

std::string Hex(absl::Span<const uint8_t> bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string s;
  for (uint8_t b : bytes) {
    s += kDigits[b >> 4];
    s += kDigits[b & 15];
  }
  return s;
}

}  // namespace edgevisor::appliance::bundle
