// Portable runtime start-up: capture the boot info, poke the boot timer, run the payload.
#include "rt.h"

// Linker-script / entry-code symbols.
extern char __image_start[];
extern char __image_end[];
extern char rt_boot_stack_bottom[];
extern char rt_boot_stack_top[];

#define LOW_4G 0x100000000ull

static const struct hvm_start_info* g_start_info;
static bool g_boot_ok;
static char g_cmdline[RT_CMDLINE_MAX];
static struct hvm_memmap_table_entry g_memmap[RT_MEMMAP_MAX];
static uint32_t g_memmap_count;

// The identity map only covers the low 4 GiB; refuse boot-info pointers outside it.
static bool below_4g(uint64_t addr, uint64_t size) {
  return addr < LOW_4G && size <= LOW_4G - addr;
}

static void capture_boot_info(const struct hvm_start_info* si) {
  g_cmdline[0] = '\0';
  g_memmap_count = 0;
  if (si == NULL || !below_4g((uintptr_t)si, sizeof(*si)) || si->magic != HVM_START_MAGIC_VALUE) {
    return;
  }
  g_boot_ok = true;

  if (si->cmdline_paddr != 0 && below_4g(si->cmdline_paddr, 1)) {
    const char* src = (const char*)(uintptr_t)si->cmdline_paddr;
    size_t max = RT_CMDLINE_MAX - 1;
    if (LOW_4G - si->cmdline_paddr < max) max = (size_t)(LOW_4G - si->cmdline_paddr);
    size_t n = strnlen(src, max);
    memcpy(g_cmdline, src, n);
    g_cmdline[n] = '\0';
  }

  if (si->version >= 1 && si->memmap_paddr != 0) {
    uint32_t n = si->memmap_entries;
    if (n > RT_MEMMAP_MAX) n = RT_MEMMAP_MAX;
    if (below_4g(si->memmap_paddr, (uint64_t)n * sizeof(struct hvm_memmap_table_entry))) {
      memcpy(g_memmap, (const void*)(uintptr_t)si->memmap_paddr,
             n * sizeof(struct hvm_memmap_table_entry));
      g_memmap_count = n;
    }
  }
}

static bool boot_timer_enabled(void) {
  char v[8];
  return !(rt_cmdline_get("boottimer", v, sizeof(v)) && strcmp(v, "off") == 0);
}

void runtime_start(const struct hvm_start_info* si) {
  rt_arch_init();
  g_start_info = si;
  capture_boot_info(si);
  if (boot_timer_enabled()) rt_mmio_write8(BOOT_TIMER_ADDR, BOOT_TIMER_MAGIC);
  rt_console_init();
  if (!g_boot_ok) {
    rt_printf("rt: warning: no valid hvm_start_info (ebx=%p); empty cmdline and memmap\n",
              (const void*)si);
  }
  rt_exit(payload_main(g_cmdline));
}

const char* rt_cmdline(void) { return g_cmdline; }

const struct hvm_start_info* rt_start_info(void) { return g_start_info; }

bool rt_boot_ok(void) { return g_boot_ok; }

const struct hvm_memmap_table_entry* rt_memmap(uint32_t* count) {
  if (count != NULL) *count = g_memmap_count;
  return g_memmap;
}

void rt_image_range(uintptr_t* start, uintptr_t* end) {
  if (start != NULL) *start = (uintptr_t)__image_start;
  if (end != NULL) *end = (uintptr_t)__image_end;
}

void rt_stack_range(uintptr_t* bottom, uintptr_t* top) {
  if (bottom != NULL) *bottom = (uintptr_t)rt_boot_stack_bottom;
  if (top != NULL) *top = (uintptr_t)rt_boot_stack_top;
}
