// An update bundle: one release of the appliance's root file system (a slot's squashfs), with a
// signed manifest in front of it, so that the box can check everything it needs before it writes
// a byte, and then stream the squashfs straight into its inactive slot.
//
//   offset 0       "EVBUNDL1"                      magic and format version
//   offset 8       u32 little-endian M             the manifest's length, 2 to 65536
//   offset 12      u32 0                           reserved
//   offset 16      M bytes                         the manifest (JSON, below)
//   offset 16+M    64 bytes                        Ed25519 signature over bytes 0 to 16+M
//   offset 80+M    manifest.slot.size bytes        the slot's squashfs; nothing after it
//
// The manifest:
//   {"format": 1, "arch": "x86_64"|"arm64", "version": "1.2.3",
//    "min_version": "1.0.0",          optional: the oldest running release it may replace
//    "allow_downgrade": false,        optional: may replace a newer release
//    "slot": {"size": BYTES, "sha256": "64 hex digits"},
//    "edgevisor": "...", "kernel": "...", "created": EPOCH}   informational
// The signature covers the header too, so the manifest's length cannot be changed. The slot's
// bytes are covered through their sha256. Keys are Ed25519 public keys, one per line in hex
// (the slot's /etc/edgevisor/update-keys): the running release names whom it trusts, and a new
// release can rotate the key by carrying the next one.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace edgevisor::appliance::bundle {

inline constexpr char kMagic[8] = {'E', 'V', 'B', 'U', 'N', 'D', 'L', '1'};
inline constexpr size_t kHeaderSize = 16;
inline constexpr size_t kSignatureSize = 64;
inline constexpr size_t kMaxManifest = 65536;
inline constexpr size_t kKeySize = 32;
using PublicKey = std::array<uint8_t, kKeySize>;
using Sha256 = std::array<uint8_t, 32>;

// A release version: 1 to 4 dot-separated decimal numbers, each at most 999999 ("1.2.3").
struct Version {
  std::vector<uint32_t> parts;
  std::string text;
};
absl::StatusOr<Version> ParseVersion(std::string_view text);
// <0, 0, >0 as a is older than, the same as, or newer than b ("1.2" == "1.2.0").
int CompareVersions(const Version& a, const Version& b);

struct Manifest {
  std::string arch;
  Version version;
  std::optional<Version> min_version;
  bool allow_downgrade = false;
  uint64_t slot_size = 0;
  Sha256 slot_sha256{};
  std::string edgevisor;  // informational
  std::string kernel;
};

// The header's manifest length; errors say what is wrong with the 16 bytes.
absl::StatusOr<uint32_t> ParseHeader(absl::Span<const uint8_t> header);
// The manifest; errors name the field ("slot.sha256: ...").
absl::StatusOr<Manifest> ParseManifest(std::string_view json);
// The trusted keys: one hex key per line; blank lines and '#' comments are skipped.
absl::StatusOr<std::vector<PublicKey>> ParseKeys(std::string_view text);
// Whether SIGNATURE over SIGNED (the header and the manifest) is by one of KEYS.
absl::Status VerifySignature(absl::Span<const uint8_t> signed_bytes,
                             absl::Span<const uint8_t> signature,
                             const std::vector<PublicKey>& keys);

// Whether a box of ARCH running release RUNNING may install M: the architecture, and no
// downgrade (nor the same version) unless the bundle allows it, and RUNNING not older than
// M's min_version. FailedPrecondition with the reason otherwise.
absl::Status CheckApplicable(const Manifest& m, std::string_view arch, const Version& running);

// Streaming SHA-256 (libsodium's).
class Hasher {
 public:
  Hasher();
  void Update(absl::Span<const uint8_t> data);
  Sha256 Finish();

 private:
  alignas(64) std::array<uint8_t, 128> state_{};  // crypto_hash_sha256_state, opaque here
};
std::string Hex(absl::Span<const uint8_t> bytes);

}  // namespace edgevisor::appliance::bundle
