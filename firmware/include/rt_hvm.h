// PVH boot ABI structures (Xen public/arch-x86/hvm/start_info.h). The VMM (or QEMU's PVH option
// ROM / qboot) passes a pointer to struct hvm_start_info in EBX at the 32-bit entry point.
#ifndef EDGEVISOR_FW_RT_HVM_H
#define EDGEVISOR_FW_RT_HVM_H

#include <stddef.h>
#include <stdint.h>

#define HVM_START_MAGIC_VALUE 0x336ec578u

// ELF note (name "Xen") carrying the 32-bit physical PVH entry point.
#define XEN_ELFNOTE_PHYS32_ENTRY 18

// E820-style memory map entry types.
#define HVM_MEMMAP_TYPE_RAM 1
#define HVM_MEMMAP_TYPE_RESERVED 2
#define HVM_MEMMAP_TYPE_ACPI 3
#define HVM_MEMMAP_TYPE_NVS 4
#define HVM_MEMMAP_TYPE_UNUSABLE 5

struct hvm_start_info {
  uint32_t magic;    // HVM_START_MAGIC_VALUE
  uint32_t version;  // memmap_* fields are only valid for version >= 1
  uint32_t flags;
  uint32_t nr_modules;
  uint64_t modlist_paddr;  // struct hvm_modlist_entry[nr_modules]
  uint64_t cmdline_paddr;  // NUL-terminated ASCII, 0 if none
  uint64_t rsdp_paddr;
  uint64_t memmap_paddr;  // struct hvm_memmap_table_entry[memmap_entries]
  uint32_t memmap_entries;
  uint32_t reserved;
};

struct hvm_modlist_entry {
  uint64_t paddr;
  uint64_t size;
  uint64_t cmdline_paddr;
  uint64_t reserved;
};

struct hvm_memmap_table_entry {
  uint64_t addr;
  uint64_t size;
  uint32_t type;
  uint32_t reserved;
};

_Static_assert(sizeof(struct hvm_start_info) == 56, "hvm_start_info layout");
_Static_assert(offsetof(struct hvm_start_info, cmdline_paddr) == 0x18, "hvm_start_info layout");
_Static_assert(offsetof(struct hvm_start_info, memmap_paddr) == 0x28, "hvm_start_info layout");
_Static_assert(offsetof(struct hvm_start_info, memmap_entries) == 0x30, "hvm_start_info layout");
_Static_assert(sizeof(struct hvm_modlist_entry) == 32, "hvm_modlist_entry layout");
_Static_assert(sizeof(struct hvm_memmap_table_entry) == 24, "hvm_memmap_table_entry layout");

#endif  // EDGEVISOR_FW_RT_HVM_H
