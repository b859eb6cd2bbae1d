// ELF64 kernel/payload parsing. The file is untrusted input: every offset and size is checked
// before use, and the parser only reads from the span it is given (fuzzed by tests/fuzz/elf_fuzz).
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "src/platform/guest_memory.h"

namespace edgevisor {

struct ElfSegment {
  uint64_t paddr = 0;
  uint64_t file_offset = 0;
  uint64_t filesz = 0;
  uint64_t memsz = 0;
};

struct ElfImage {
  uint16_t machine = 0;
  uint64_t entry = 0;  // e_entry (a virtual address for Linux vmlinux)
  std::vector<ElfSegment> loads;
  // XEN_ELFNOTE_PHYS32_ENTRY: the 32-bit PVH entry point, when the image has one.
  std::optional<uint64_t> pvh_entry;
};

inline constexpr uint32_t kXenElfNotePhys32Entry = 18;

// Validates the ELF header, program headers and notes against the file's bounds. Rejects
// truncated files, segments whose file data lies outside the file, p_filesz > p_memsz, loads
// whose physical ranges wrap or overlap each other, and malformed notes.
absl::StatusOr<ElfImage> ParseElf64(absl::Span<const uint8_t> file, uint16_t expected_machine);

// Copies each PT_LOAD into guest memory and zeroes its bss tail. Fails if any segment is not
// entirely inside guest RAM. `file` must be the span ParseElf64 validated.
absl::Status LoadElfSegments(const ElfImage& image, absl::Span<const uint8_t> file,
                             const GuestMemory& mem);

}  // namespace edgevisor
