// Console payload: echoes each line it reads from the serial port as "echo: <line>" and returns
// 0 on the line "exit". By default it polls the UART; with `irq` on the command line it enables
// the receive interrupt and sleeps between interrupts, which exercises the VMM's in-kernel
// irqchip path: on x86_64 the 16550's IER, the 8259 PIC (IRQ 4) and `hlt`; on aarch64 the
// 16550 at RT_UART_BASE, its SPI from the device tree enabled in the GIC (v2 or v3), and `wfi`
// with interrupts masked at the CPU, each interrupt acknowledged and ended at the GIC. There it
// prints "console: N interrupts" before its exit line.
#include "rt.h"

#define UART_IER 1
#define UART_LSR 5
#define UART_LSR_DR 0x01

#if defined(__x86_64__)
#include "rt_x86_64.h"

#define COM1 0x3f8
#define PIC1_CMD 0x20
#define PIC1_DATA 0x21
#define PIC2_CMD 0xa0
#define PIC2_DATA 0xa1
#define PIC_EOI 0x20
#define IRQ_BASE 0x20
#define COM1_IRQ 4

static uint8_t uart_in(unsigned reg) { return inb((uint16_t)(COM1 + reg)); }
#elif defined(__aarch64__)
#include "rt_aarch64.h"
#include "rt_mmio.h"
#include "rt_platform.h"

static uint8_t uart_in(unsigned reg) { return rt_mmio_read8(RT_UART_BASE + reg); }

// The UART's interrupt, enabled at the GIC and in the UART: its INTID, or 0 on failure.
static uint32_t uart_irq_init(void) {
  struct rt_device d[4];
  uint32_t intid = 0;
  const int n = rt_find_devices("ns16550a", d, 4);
  for (int i = 0; i < n && i < 4; i++) {
    if (d[i].base == RT_UART_BASE) intid = d[i].irq;
  }
  if (intid == 0) {
    rt_print("console: the device tree gives the UART no interrupt\n");
    return 0;
  }
  const int v = rt_gic_enable_spi(intid);
  if (v == 0) {
    rt_printf("console: no GIC for INTID %u\n", intid);
    return 0;
  }
  rt_printf("console: UART interrupt: INTID %u on GICv%d\n", intid, v);
  rt_mmio_write8(RT_UART_BASE + UART_IER, 0x01);  // receive-data-available interrupt
  return intid;
}
#endif

static char g_line[256];
static size_t g_len;

#if defined(__x86_64__)
__attribute__((interrupt)) static void com1_isr(void* frame) {
  (void)frame;
  outb(PIC1_CMD, PIC_EOI);  // data is drained by the main loop
}

static void pic_init(void) {
  outb(PIC1_CMD, 0x11);  // ICW1: edge, cascade, ICW4 follows
  outb(PIC2_CMD, 0x11);
  outb(PIC1_DATA, IRQ_BASE);  // ICW2: vector base
  outb(PIC2_DATA, IRQ_BASE + 8);
  outb(PIC1_DATA, 0x04);  // ICW3: slave on IRQ2
  outb(PIC2_DATA, 0x02);
  outb(PIC1_DATA, 0x01);  // ICW4: 8086 mode
  outb(PIC2_DATA, 0x01);
  outb(PIC1_DATA, (uint8_t) ~(1u << COM1_IRQ));
  outb(PIC2_DATA, 0xff);
}
#endif

// Consumes one received byte; returns true when the line "exit" completed.
static bool take(char c) {
  if (c == '\r') return false;
  if (c != '\n') {
    if (g_len < sizeof(g_line) - 1) g_line[g_len++] = c;
    return false;
  }
  g_line[g_len] = '\0';
  g_len = 0;
  if (strcmp(g_line, "exit") == 0) return true;
  rt_printf("echo: %s\n", g_line);
  return false;
}

static bool drain(void) {
  while (uart_in(UART_LSR) & UART_LSR_DR) {
    if (take((char)uart_in(0))) return true;
  }
  return false;
}

int payload_main(const char* cmdline) {
  char v[4];
  const bool irq = rt_cmdline_get_in(cmdline, "irq", v, sizeof(v));
#if defined(__aarch64__)
  uint32_t intid = 0;
  uint64_t interrupts = 0;
  if (irq && (intid = uart_irq_init()) == 0) return 2;
#else
  if (irq) {
    rt_x86_set_interrupt_handler(IRQ_BASE + COM1_IRQ, com1_isr);
    pic_init();
    outb(COM1 + 4, 0x0b);         // MCR: DTR, RTS, OUT2 (gates the IRQ on PC hardware)
    outb(COM1 + UART_IER, 0x01);  // receive-data-available interrupt
  }
#endif
  rt_printf("console: ready (%s)\n", irq ? "irq" : "polling");
  for (;;) {
    if (drain()) break;
#if defined(__x86_64__)
    if (irq) {
      __asm__ volatile("sti; hlt; cli" ::: "memory");
      continue;
    }
#else
    if (irq) {
      // Acknowledge first (the interrupt goes active), then drain, which lowers the UART's
      // level, then end it: a line still high pends it again.
      rt_wait_for_interrupt();
      const uint32_t id = rt_gic_ack();
      if (id == intid) interrupts++;
      const bool done = drain();
      rt_gic_eoi(id);
      if (done) break;
      continue;
    }
#endif
    rt_cpu_relax();
  }
#if defined(__aarch64__)
  if (irq) rt_printf("console: %lu interrupts\n", (unsigned long)interrupts);
#endif
  rt_print("console: exit\n");
  return 0;
}
