// Portable runtime start-up: capture the boot info, poke the boot timer, run the payload.
#include "rt.h"

// Linker-script / entry-code symbols.
extern char __image_start[];
extern char __image_end[];
extern char rt_boot_stack_bottom[];
extern char rt_boot_stack_top[];

static bool g_boot_ok;
static char g_cmdline[RT_CMDLINE_MAX];
static struct hvm_memmap_table_entry g_memmap[RT_MEMMAP_MAX];
static uint32_t g_memmap_count;

static bool boot_timer_enabled(void) {
  char v[8];
  return !(rt_cmdline_get("boottimer", v, sizeof(v)) && strcmp(v, "off") == 0);
}

void runtime_start(const void* boot_info) {
  rt_arch_init();
  g_cmdline[0] = '\0';
  g_memmap_count = 0;
  g_boot_ok = rt_arch_boot_info(boot_info, g_cmdline, sizeof(g_cmdline), g_memmap, RT_MEMMAP_MAX,
                                &g_memmap_count);
  if (boot_timer_enabled()) rt_mmio_write8(BOOT_TIMER_ADDR, BOOT_TIMER_MAGIC);
  rt_console_init();
  if (!g_boot_ok) {
    rt_printf("rt: warning: no valid boot information at %p; empty cmdline and memmap\n",
              boot_info);
  }
  rt_exit(payload_main(g_cmdline));
}

const char* rt_cmdline(void) { return g_cmdline; }

bool rt_boot_ok(void) { return g_boot_ok; }

const struct hvm_memmap_table_entry* rt_memmap(uint32_t* count) {
  if (count != NULL) *count = g_memmap_count;
  return g_memmap;
}

uint64_t rt_ram_top(void) {
  uint64_t top = 0;
  for (uint32_t i = 0; i < g_memmap_count; i++) {
    const struct hvm_memmap_table_entry* m = &g_memmap[i];
    if (m->type == HVM_MEMMAP_TYPE_RAM && m->addr + m->size > top) top = m->addr + m->size;
  }
  return top;
}

void rt_image_range(uintptr_t* start, uintptr_t* end) {
  if (start != NULL) *start = (uintptr_t)__image_start;
  if (end != NULL) *end = (uintptr_t)__image_end;
}

void rt_stack_range(uintptr_t* bottom, uintptr_t* top) {
  if (bottom != NULL) *bottom = (uintptr_t)rt_boot_stack_bottom;
  if (top != NULL) *top = (uintptr_t)rt_boot_stack_top;
}
