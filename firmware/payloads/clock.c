// Clock payload (x86_64): checks that time and timer interrupts go on as a guest expects, for
// the snapshot tests. It programs its local APIC timer to interrupt every `period=MS` (default
// 10) milliseconds and sleeps in `hlt` between interrupts. Every `every=N` ticks (default 20)
// it prints
//
//   clock: tick=<n> tsc_ms=<guest TSC since start, ms> gap_ms=<TSC since the previous line>
//
// and after `ticks=N` ticks (default 300) "clock: done ticks=<n> backwards=<b> max_gap_ms=<g>"
// and returns 0 (1 if the TSC ever went backwards). A VM snapshotted and restored in another
// process must keep both: the timer still fires, and the TSC continues from where it was, so no
// gap is much longer than `every` periods, however long the VM was away (where the host's KVM
// can set a guest's TSC at all).
//
// `touch=MIB` first writes a pattern into that much RAM past the image and the stack (one word
// per 4 KiB page), and reads it all back before each tick line, which then ends with
// "touched_ok=<0|1>": the guest owns and uses real memory, as clones restored from one snapshot
// do when the tests count how much of it they share.
#include "rt.h"
#include "rt_mmio.h"
#include "rt_x86_64.h"

#define LAPIC 0xfee00000u
#define LAPIC_EOI 0xb0
#define LAPIC_SVR 0xf0
#define LAPIC_LVT_TIMER 0x320
#define LAPIC_TIMER_INIT 0x380
#define LAPIC_TIMER_DIV 0x3e0
#define TIMER_VECTOR 0x40
#define LVT_PERIODIC (1u << 17)
// KVM's APIC timer runs at 1 GHz; divided by 16 that is 62500 counts per millisecond.
#define COUNTS_PER_MS 62500u

static volatile uint64_t g_ticks;

__attribute__((interrupt)) static void timer_isr(void* frame) {
  (void)frame;
  g_ticks++;
  rt_mmio_write32(LAPIC + LAPIC_EOI, 0);
}

static uint64_t g_touch_start, g_touch_bytes;

static inline uint64_t touch_word(uint64_t off) { return 0x1d1e000000000000ull | off; }

// Picks MIB MiB of RAM above the image and the stack and writes its pattern; false when the
// memory map has no such range.
static bool touch(uint64_t mib) {
  uintptr_t img_start, img_end, stack_bottom, stack_top;
  rt_image_range(&img_start, &img_end);
  rt_stack_range(&stack_bottom, &stack_top);
  uint64_t start = img_end > stack_top ? img_end : stack_top;
  start = (start + (2u << 20) - 1) & ~(uint64_t)((2u << 20) - 1);
  const uint64_t bytes = mib << 20;
  uint32_t n = 0;
  const struct hvm_memmap_table_entry* map = rt_memmap(&n);
  for (uint32_t i = 0; i < n; i++) {
    if (map[i].type != 1 || map[i].addr > start || map[i].addr + map[i].size < start + bytes) {
      continue;
    }
    for (uint64_t off = 0; off < bytes; off += 4096) {
      *(volatile uint64_t*)(uintptr_t)(start + off) = touch_word(off);
    }
    g_touch_start = start;
    g_touch_bytes = bytes;
    return true;
  }
  return false;
}

static bool touched_ok(void) {
  for (uint64_t off = 0; off < g_touch_bytes; off += 4096) {
    if (*(volatile uint64_t*)(uintptr_t)(g_touch_start + off) != touch_word(off)) return false;
  }
  return true;
}

static uint64_t arg(const char* cmdline, const char* key, uint64_t fallback) {
  uint64_t v = fallback;
  if (!rt_cmdline_get_u64_in(cmdline, key, &v) || v == 0) v = fallback;
  return v;
}

int payload_main(const char* cmdline) {
  const uint64_t period = arg(cmdline, "period", 10);
  const uint64_t every = arg(cmdline, "every", 20);
  const uint64_t total = arg(cmdline, "ticks", 300);
  uint64_t touch_mib = 0;
  if (rt_cmdline_get_u64_in(cmdline, "touch", &touch_mib) && !touch(touch_mib)) {
    rt_printf("clock: no %lu MiB of free RAM to touch\n", touch_mib);
    return 1;
  }
  rt_x86_set_interrupt_handler(TIMER_VECTOR, timer_isr);
  rt_mmio_write32(LAPIC + LAPIC_SVR, 0x100 | 0xff);  // APIC on, spurious vector 0xff
  rt_mmio_write32(LAPIC + LAPIC_TIMER_DIV, 0x3);     // divide by 16
  rt_mmio_write32(LAPIC + LAPIC_LVT_TIMER, LVT_PERIODIC | TIMER_VECTOR);
  rt_mmio_write32(LAPIC + LAPIC_TIMER_INIT, (uint32_t)(period * COUNTS_PER_MS));
  const uint64_t hz_ms = rt_ticks_hz() / 1000;
  const uint64_t start = rt_ticks();
  uint64_t last = start, next_print = every, backwards = 0, max_gap = 0;
  rt_printf("clock: ready period=%lu ms\n", period);
  while (g_ticks < total) {
    __asm__ volatile("sti; hlt; cli" ::: "memory");
    if (g_ticks < next_print) continue;
    next_print = g_ticks + every;
    const uint64_t now = rt_ticks();
    if (now < last) backwards++;
    const uint64_t gap = now >= last ? (now - last) / hz_ms : 0;
    if (gap > max_gap) max_gap = gap;
    if (g_touch_bytes) {
      rt_printf("clock: tick=%lu tsc_ms=%lu gap_ms=%lu touched_ok=%d\n", g_ticks,
                (now - start) / hz_ms, gap, touched_ok());
    } else {
      rt_printf("clock: tick=%lu tsc_ms=%lu gap_ms=%lu\n", g_ticks, (now - start) / hz_ms, gap);
    }
    last = now;
  }
  rt_mmio_write32(LAPIC + LAPIC_LVT_TIMER, 1u << 16);  // masked
  rt_printf("clock: done ticks=%lu backwards=%lu max_gap_ms=%lu\n", g_ticks, backwards, max_gap);
  return backwards == 0 ? 0 : 1;
}
