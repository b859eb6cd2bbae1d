// x86_64 boot information: the PVH struct hvm_start_info (pointer in EBX at entry). Devices are
// not described here; virtio-mmio devices come from the command line.
#include "rt.h"

#define LOW_4G 0x100000000ull

static const struct hvm_start_info* g_start_info;

// The identity map only covers the low 4 GiB; refuse boot-info pointers outside it.
static bool below_4g(uint64_t addr, uint64_t size) {
  return addr < LOW_4G && size <= LOW_4G - addr;
}

bool rt_arch_boot_info(const void* boot_info, char* cmdline, size_t cmdline_max,
                       struct hvm_memmap_table_entry* map, uint32_t map_max, uint32_t* map_count) {
  const struct hvm_start_info* si = boot_info;
  g_start_info = si;
  if (si == NULL || !below_4g((uintptr_t)si, sizeof(*si)) || si->magic != HVM_START_MAGIC_VALUE) {
    return false;
  }

  if (si->cmdline_paddr != 0 && below_4g(si->cmdline_paddr, 1) && cmdline_max > 0) {
    const char* src = (const char*)(uintptr_t)si->cmdline_paddr;
    size_t max = cmdline_max - 1;
    if (LOW_4G - si->cmdline_paddr < max) max = (size_t)(LOW_4G - si->cmdline_paddr);
    const size_t n = strnlen(src, max);
    memcpy(cmdline, src, n);
    cmdline[n] = '\0';
  }

  if (si->version >= 1 && si->memmap_paddr != 0) {
    uint32_t n = si->memmap_entries;
    if (n > map_max) n = map_max;
    if (below_4g(si->memmap_paddr, (uint64_t)n * sizeof(struct hvm_memmap_table_entry))) {
      memcpy(map, (const void*)(uintptr_t)si->memmap_paddr,
             n * sizeof(struct hvm_memmap_table_entry));
      *map_count = n;
    }
  }
  return true;
}

const struct hvm_start_info* rt_start_info(void) { return g_start_info; }

int rt_find_devices(const char* compatible, struct rt_device* out, int max) {
  (void)compatible;
  (void)out;
  (void)max;
  return -1;
}
