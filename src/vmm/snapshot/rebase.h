// `edgevisor rebase-snap`: a Diff snapshot's memory file applied onto the memory file of the
// snapshot before it (Firecracker's rebase-snap, with its flags), so that the result restores
// the Diff snapshot's state file.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace edgevisor::snapshot {

// Copies every data extent of DIFF (SEEK_DATA / SEEK_HOLE) onto BASE at the same offset. Both
// must be regular files of the same length. Refuses a DIFF whose filesystem does not report
// holes (every byte would read as data, and its holes as zero pages over BASE). Returns the
// bytes copied. Errors name --base-file or --diff-file.
absl::StatusOr<uint64_t> RebaseMemoryFile(const std::string& base, const std::string& diff);

}  // namespace edgevisor::snapshot
