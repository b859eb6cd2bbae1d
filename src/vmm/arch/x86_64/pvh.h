// PVH boot (Xen's direct-boot ABI, also used by Linux with CONFIG_PVH and by QEMU/Firecracker):
// the guest is entered in 32-bit protected mode, paging off, with EBX -> hvm_start_info.
// Layout per xen/include/public/arch-x86/hvm/start_info.h.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "src/platform/guest_memory.h"

namespace edgevisor::x86 {

inline constexpr uint32_t kHvmStartMagic = 0x336ec578;

struct HvmStartInfo {
  uint32_t magic;
  uint32_t version;
  uint32_t flags;
  uint32_t nr_modules;
  uint64_t modlist_paddr;
  uint64_t cmdline_paddr;
  uint64_t rsdp_paddr;
  uint64_t memmap_paddr;
  uint32_t memmap_entries;
  uint32_t reserved;
};
static_assert(sizeof(HvmStartInfo) == 56);

struct HvmMemmapEntry {
  uint64_t addr;
  uint64_t size;
  uint32_t type;  // E820 types: 1 RAM, 2 reserved
  uint32_t reserved;
};
static_assert(sizeof(HvmMemmapEntry) == 24);

inline constexpr uint32_t kE820Ram = 1;

// hvm_modlist_entry: one module (Linux takes the first as its initrd).
struct HvmModlistEntry {
  uint64_t paddr;
  uint64_t size;
  uint64_t cmdline_paddr;
  uint64_t reserved;
};
static_assert(sizeof(HvmModlistEntry) == 32);

inline constexpr uint64_t kModlistAddr = 0x6100;  // after hvm_start_info at 0x6000

struct PvhModule {
  uint64_t paddr = 0;
  uint64_t size = 0;  // 0: no module
};

// Writes the command line, memory map, module list and hvm_start_info. Fails if the command
// line is too long.
absl::Status WritePvhStartInfo(const GuestMemory& mem, const std::string& cmdline,
                               PvhModule initrd = {});

}  // namespace edgevisor::x86
