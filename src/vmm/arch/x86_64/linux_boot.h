// The x86 Linux 64-bit boot protocol (Documentation/arch/x86/boot.rst, "64-bit boot protocol"):
// the kernel is entered in long mode with an identity map, RSI pointing at struct boot_params
// (the "zero page": setup header, e820 map, command line and initrd pointers). Two kernel forms:
// a bzImage (its protected-mode part loaded at pref_address, entry at +0x200) and a vmlinux ELF
// without a PVH note (segments at their physical addresses, entry at e_entry).
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "src/platform/guest_memory.h"
#include "src/vmm/loader/bzimage.h"
#include "src/vmm/loader/elf.h"

namespace edgevisor::x86 {

inline constexpr uint64_t kZeroPageAddr = 0x7000;
inline constexpr uint64_t kPml4Addr = 0x9000;  // then the PDPT and 4 page directories
inline constexpr uint64_t kPageTablesEnd = 0xf000;
inline constexpr uint8_t kLoaderTypeUndefined = 0xff;
inline constexpr uint32_t kE820Reserved = 2;

// boot_params offsets used here.
inline constexpr uint64_t kBpAcpiRsdpAddr = 0x070;
inline constexpr uint64_t kBpExtRamdiskImage = 0x0c0;
inline constexpr uint64_t kBpExtRamdiskSize = 0x0c4;
inline constexpr uint64_t kBpExtCmdLinePtr = 0x0c8;
inline constexpr uint64_t kBpE820Entries = 0x1e8;
inline constexpr uint64_t kBpBootFlag = 0x1fe;
inline constexpr uint64_t kBpHeader = 0x202;
inline constexpr uint64_t kBpVersion = 0x206;
inline constexpr uint64_t kBpTypeOfLoader = 0x210;
inline constexpr uint64_t kBpLoadflags = 0x211;
inline constexpr uint64_t kBpRamdiskImage = 0x218;
inline constexpr uint64_t kBpRamdiskSize = 0x21c;
inline constexpr uint64_t kBpCmdLinePtr = 0x228;
inline constexpr uint64_t kBpKernelAlignment = 0x230;
inline constexpr uint64_t kBpCmdlineSize = 0x238;
inline constexpr uint64_t kBpE820Table = 0x2d0;
inline constexpr size_t kE820MaxEntries = 128;

struct LinuxBoot {
  uint64_t entry = 0;        // 64-bit entry point (guest physical)
  uint64_t kernel_end = 0;   // first byte after the kernel's memory (init_size / memsz)
  uint64_t initrd_addr = 0;  // 0 when there is no initrd
};

// Loads a bzImage and writes boot_params. `initrd` may be empty.
absl::StatusOr<LinuxBoot> LoadBzImage(const BzImage& bz, const std::string& cmdline,
                                      absl::Span<const uint8_t> initrd, const GuestMemory& mem);

// Loads a vmlinux ELF (already parsed) and writes boot_params with a synthesized setup header.
absl::StatusOr<LinuxBoot> LoadVmlinux(const ElfImage& elf, absl::Span<const uint8_t> file,
                                      const std::string& cmdline, absl::Span<const uint8_t> initrd,
                                      const GuestMemory& mem);

// Identity-maps the low 4 GiB with 2 MiB pages at kPml4Addr (for the 64-bit entry).
absl::Status WriteIdentityPageTables(const GuestMemory& mem);

// Where an initrd of `size` bytes goes: the highest page-aligned place that ends at or below
// min(addr_max, end of low RAM) and starts at or above `kernel_end`.
absl::StatusOr<uint64_t> PlaceInitrd(const GuestMemory& mem, uint64_t size, uint64_t kernel_end,
                                     uint64_t addr_max);

}  // namespace edgevisor::x86
