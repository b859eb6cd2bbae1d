// Console payload: echoes each line it reads from the serial port as "echo: <line>" and returns
// 0 on the line "exit". By default it polls the UART; with `irq` on the command line (x86_64
// only) it enables the receive interrupt (16550 IER, 8259 PIC, IRQ 4) and sleeps in `hlt`
// between interrupts, which exercises the VMM's in-kernel irqchip path. aarch64 polls the
// 16550 at RT_UART_BASE.
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
  if (irq) {
    rt_print("console: irq mode is x86_64 only\n");
    return 2;
  }
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
#endif
    rt_cpu_relax();
  }
  rt_print("console: exit\n");
  return 0;
}
