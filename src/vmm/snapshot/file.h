// The snapshot state file: a fixed header, then the VM's state as one CBOR document.
//
//   offset  size  field
//        0     8  magic "EVSNAPSH"
//        8     4  format version (kFormatVersion), little endian like every field
//       12     4  architecture (Arch)
//       16     8  length of the state that follows the header
//       24     4  CRC-32 (zlib's) of the header with this field zeroed, then the state
//       28     4  reserved, 0
//       32    32  the VMM version that wrote it, NUL-padded
//       64     …  the state (CBOR, RFC 8949; nlohmann-json reads and writes it)
//
// The guest's memory is a separate file (mem_file_path), as in Firecracker. Decode treats the
// file as hostile: every header field is checked, the checksum before the state is parsed, and
// what it returns is only a JSON value that VmState's parser checks field by field.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "nlohmann/json.hpp"

namespace edgevisor::snapshot {

using Json = nlohmann::json;

inline constexpr char kMagic[8] = {'E', 'V', 'S', 'N', 'A', 'P', 'S', 'H'};
inline constexpr uint32_t kFormatVersion = 1;
inline constexpr size_t kHeaderSize = 64;
// The largest state accepted: vCPU state is a few KiB per vCPU; this bounds what a hostile
// header can make us allocate.
inline constexpr uint64_t kMaxStateBytes = 64 << 20;

enum class Arch : uint32_t { kX86_64 = 1, kAarch64 = 2 };
Arch HostArch();
const char* ArchName(uint32_t arch);

// A state file's bytes.
std::string Encode(const Json& state, const std::string& vmm_version, Arch arch = HostArch());

struct Decoded {
  Json state;
  std::string vmm_version;
};
// Errors (InvalidArgument, or FailedPrecondition for a good file this host cannot load) say
// what is wrong: "snapshot: ..." .
absl::StatusOr<Decoded> Decode(absl::Span<const uint8_t> bytes, Arch host = HostArch());

}  // namespace edgevisor::snapshot
