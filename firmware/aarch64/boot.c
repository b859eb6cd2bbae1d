// aarch64 boot information: the flattened device tree whose address the VMM put in x0. Read
// with libfdt (Debian's arm64 libfdt.a): /chosen/bootargs, the /memory nodes, and the devices.
#include <libfdt.h>

#include "rt.h"

// Largest device tree we accept; edgevisor's is at most 2 MiB (kFdtMaxSize).
#define FDT_MAX_SIZE 0x200000u

static const void* g_fdt;

const void* rt_fdt(void) { return g_fdt; }

// Reads `cells` big-endian 32-bit cells as one number (cells is 1 or 2).
static uint64_t read_cells(const fdt32_t* p, int cells) {
  uint64_t v = 0;
  for (int i = 0; i < cells; i++) v = (v << 32) | fdt32_ld(&p[i]);
  return v;
}

static int root_cells(const void* fdt, const char* name, int fallback) {
  int len = 0;
  const fdt32_t* p = fdt_getprop(fdt, 0, name, &len);
  if (p == NULL || len != 4) return fallback;
  const uint32_t v = fdt32_ld(p);
  return v == 1 || v == 2 ? (int)v : fallback;
}

// The (address, size) pair number `index` of a node's "reg", with the root's cell counts (our
// device trees put every device directly under the root).
static bool nth_reg(const void* fdt, int node, int index, uint64_t* base, uint64_t* size) {
  const int ac = root_cells(fdt, "#address-cells", 2);
  const int sc = root_cells(fdt, "#size-cells", 1);
  int len = 0;
  const fdt32_t* reg = fdt_getprop(fdt, node, "reg", &len);
  if (reg == NULL || index < 0 || len < (index + 1) * (ac + sc) * 4) return false;
  reg += index * (ac + sc);
  *base = read_cells(reg, ac);
  *size = read_cells(reg + ac, sc);
  return true;
}

static bool first_reg(const void* fdt, int node, uint64_t* base, uint64_t* size) {
  return nth_reg(fdt, node, 0, base, size);
}

bool rt_arch_boot_info(const void* boot_info, char* cmdline, size_t cmdline_max,
                       struct hvm_memmap_table_entry* map, uint32_t map_max, uint32_t* map_count) {
  const void* fdt = boot_info;
  // The header must be readable before libfdt looks at totalsize; anything in RAM is.
  if (fdt == NULL || (uintptr_t)fdt < RT_IMAGE_BASE || ((uintptr_t)fdt & 7) != 0 ||
      fdt_check_header(fdt) != 0 || fdt_totalsize(fdt) > FDT_MAX_SIZE) {
    return false;
  }
  g_fdt = fdt;

  const int chosen = fdt_path_offset(fdt, "/chosen");
  int len = 0;
  const char* args = chosen >= 0 ? fdt_getprop(fdt, chosen, "bootargs", &len) : NULL;
  if (args != NULL && len > 0 && cmdline_max > 0) {
    size_t n = strnlen(args, (size_t)len);
    if (n > cmdline_max - 1) n = cmdline_max - 1;
    memcpy(cmdline, args, n);
    cmdline[n] = '\0';
  }

  uint32_t count = 0;
  for (int node = fdt_next_node(fdt, -1, NULL); node >= 0; node = fdt_next_node(fdt, node, NULL)) {
    const char* type = fdt_getprop(fdt, node, "device_type", &len);
    if (type == NULL || len < 7 || strcmp(type, "memory") != 0) continue;
    const int ac = root_cells(fdt, "#address-cells", 2);
    const int sc = root_cells(fdt, "#size-cells", 1);
    const fdt32_t* reg = fdt_getprop(fdt, node, "reg", &len);
    for (int off = 0; reg != NULL && (off + ac + sc) * 4 <= len && count < map_max;
         off += ac + sc) {
      map[count++] = (struct hvm_memmap_table_entry){
          .addr = read_cells(reg + off, ac),
          .size = read_cells(reg + off + ac, sc),
          .type = HVM_MEMMAP_TYPE_RAM,
          .reserved = 0,
      };
    }
  }
  *map_count = count;
  return true;
}

// Interrupt specifier of a GIC node's first interrupt: <type number flags>, type 0 = SPI
// (INTID 32 + number), 1 = PPI (INTID 16 + number).
static uint32_t first_irq(const void* fdt, int node) {
  int len = 0;
  const fdt32_t* p = fdt_getprop(fdt, node, "interrupts", &len);
  if (p == NULL || len < 12) return 0;
  const uint32_t type = fdt32_ld(&p[0]);
  const uint32_t num = fdt32_ld(&p[1]);
  return type == 0 ? 32 + num : type == 1 ? 16 + num : 0;
}

static bool node_enabled(const void* fdt, int node) {
  int len = 0;
  const char* status = fdt_getprop(fdt, node, "status", &len);
  return status == NULL || (len >= 3 && (strcmp(status, "okay") == 0 || strcmp(status, "ok") == 0));
}

bool rt_device_reg(const char* compatible, int index, uint64_t* base, uint64_t* size) {
  if (g_fdt == NULL) return false;
  for (int node = fdt_node_offset_by_compatible(g_fdt, -1, compatible); node >= 0;
       node = fdt_node_offset_by_compatible(g_fdt, node, compatible)) {
    if (node_enabled(g_fdt, node)) return nth_reg(g_fdt, node, index, base, size);
  }
  return false;
}

int rt_find_devices(const char* compatible, struct rt_device* out, int max) {
  if (g_fdt == NULL) return 0;  // a platform with a device tree, but we did not get a valid one
  int n = 0;
  for (int node = fdt_node_offset_by_compatible(g_fdt, -1, compatible); node >= 0;
       node = fdt_node_offset_by_compatible(g_fdt, node, compatible)) {
    struct rt_device d = {0, 0, 0};
    if (!node_enabled(g_fdt, node) || !first_reg(g_fdt, node, &d.base, &d.size)) continue;
    d.irq = first_irq(g_fdt, node);
    if (n < max) out[n] = d;
    n++;
  }
  return n;
}
