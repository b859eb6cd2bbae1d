// x86_64 platform code: 16550 console, debug-exit, halt, exception handling.
#include "rt.h"

// ---- Console: polled 16550 on COM1 ----------------------------------------------------------

#define UART_THR 0  // transmit holding register (DLAB=0)
#define UART_DLL 0  // divisor latch low (DLAB=1)
#define UART_IER 1  // interrupt enable (DLAB=0)
#define UART_DLM 1  // divisor latch high (DLAB=1)
#define UART_FCR 2  // FIFO control (write)
#define UART_LCR 3  // line control
#define UART_MCR 4  // modem control
#define UART_LSR 5  // line status
#define UART_LCR_DLAB 0x80
#define UART_LCR_8N1 0x03
#define UART_LSR_THRE 0x20

// Spins waiting for THRE before giving up on one character. Each LSR read is a VM exit, so this
// bounds the stall if the UART is wedged; after a timeout we only make short attempts until the
// UART shows THRE again. (With no UART at all, port reads return 0xff, i.e. THRE set.)
#define UART_SPINS 1000000
#define UART_SPINS_DEGRADED 64

#define UART_TX_FIFO 16  // 16550A transmit FIFO depth (FIFOs are enabled in rt_console_init)

static bool g_uart_stuck;
// Bytes that may still be written before THRE must be checked again. Once THRE is seen the whole
// FIFO is free, so one LSR read (one VM exit) covers 16 characters instead of one.
static unsigned g_tx_credit;

void rt_console_init(void) {
  outb(RT_COM1_PORT + UART_IER, 0x00);           // no interrupts
  outb(RT_COM1_PORT + UART_LCR, UART_LCR_DLAB);  // divisor 1 (115200 baud)
  outb(RT_COM1_PORT + UART_DLL, 0x01);
  outb(RT_COM1_PORT + UART_DLM, 0x00);
  outb(RT_COM1_PORT + UART_LCR, UART_LCR_8N1);  // 8N1, DLAB off
  // Enable the FIFOs without clearing them: console input the host queued before the payload
  // started must survive.
  outb(RT_COM1_PORT + UART_FCR, 0x01);
  outb(RT_COM1_PORT + UART_MCR, 0x03);  // DTR | RTS, OUT2 off (no IRQ)
}

void rt_putc(char c) {
  if (g_tx_credit > 0) {
    g_tx_credit--;
    outb(RT_COM1_PORT + UART_THR, (uint8_t)c);
    return;
  }
  const unsigned limit = g_uart_stuck ? UART_SPINS_DEGRADED : UART_SPINS;
  unsigned spins = 0;
  while ((inb(RT_COM1_PORT + UART_LSR) & UART_LSR_THRE) == 0) {
    if (++spins >= limit) {
      g_uart_stuck = true;
      return;  // drop the character
    }
    rt_cpu_relax();
  }
  g_uart_stuck = false;
  g_tx_credit = UART_TX_FIFO - 1;
  outb(RT_COM1_PORT + UART_THR, (uint8_t)c);
}

void rt_write(const char* s, size_t len) {
  for (size_t i = 0; i < len; i++) rt_putc(s[i]);
}

void rt_print(const char* s) {
  while (*s != '\0') rt_putc(*s++);
}

// ---- Time: the TSC ------------------------------------------------------------------------

static uint64_t g_tsc_hz;  // cached by rt_ticks_hz()

uint64_t rt_ticks_hz(void) {
  if (g_tsc_hz != 0) return g_tsc_hz;
  uint32_t a, b, c, d;
  uint64_t hz = 0;
  // Hypervisor leaves: 0x40000010 (timing leaf used by KVM/VMware/QEMU) gives TSC kHz in EAX.
  rt_cpuid(1, 0, &a, &b, &c, &d);
  if (c & (1u << 31)) {  // hypervisor present
    rt_cpuid(0x40000000, 0, &a, &b, &c, &d);
    if (a >= 0x40000010 && a < 0x40000100) {
      rt_cpuid(0x40000010, 0, &a, &b, &c, &d);
      hz = (uint64_t)a * 1000;
    }
  }
  rt_cpuid(0, 0, &a, &b, &c, &d);
  const uint32_t max_leaf = a;
  if (hz == 0 && max_leaf >= 0x15) {
    rt_cpuid(0x15, 0, &a, &b, &c, &d);  // TSC = crystal (ECX) * EBX / EAX
    if (a != 0 && b != 0 && c != 0) hz = (uint64_t)c * b / a;
  }
  if (hz == 0 && max_leaf >= 0x16) {
    rt_cpuid(0x16, 0, &a, &b, &c, &d);  // base frequency in MHz
    hz = (uint64_t)(a & 0xffff) * 1000000;
  }
  if (hz < 100000000ull) hz = 3000000000ull;  // unknown (or implausible): assume 3 GHz
  g_tsc_hz = hz;
  return hz;
}

// ---- Exit / halt ---------------------------------------------------------------------------

void rt_halt(void) {
  for (;;) __asm__ volatile("cli; hlt" ::: "memory");
}

void rt_exit(int code) {
  outb(RT_DEBUG_EXIT_PORT, (uint8_t)code);
  rt_halt();  // no debug-exit device: stop cleanly
}

// ---- Exceptions ----------------------------------------------------------------------------

#define RT_TRAP_EXIT_CODE 0x7f
#define IDT_VECTORS 32   // exception stubs installed at start
#define IDT_ENTRIES 256  // room for interrupt vectors installed by payloads

struct rt_trap_frame {
  uint64_t r15, r14, r13, r12, r11, r10, r9, r8;
  uint64_t rbp, rdi, rsi, rdx, rcx, rbx, rax;
  uint64_t vector, error;
  uint64_t rip, cs, rflags, rsp, ss;  // pushed by the CPU
};

struct idt_entry {
  uint16_t offset_lo;
  uint16_t selector;
  uint8_t ist;
  uint8_t type_attr;
  uint16_t offset_mid;
  uint32_t offset_hi;
  uint32_t zero;
};
_Static_assert(sizeof(struct idt_entry) == 16, "idt_entry layout");

struct __attribute__((packed)) idt_desc {
  uint16_t limit;
  uint64_t base;
};

extern const uint64_t rt_trap_stubs[IDT_VECTORS];  // traps.S
static struct idt_entry g_idt[IDT_ENTRIES] __attribute__((aligned(16)));
static bool g_in_trap;

#define SEL_CODE64 0x08
#define IDT_INTERRUPT_GATE 0x8e  // present, DPL0, 64-bit interrupt gate

static void set_gate(unsigned v, uint64_t h) {
  g_idt[v] = (struct idt_entry){
      .offset_lo = (uint16_t)h,
      .selector = SEL_CODE64,
      .ist = 0,
      .type_attr = IDT_INTERRUPT_GATE,
      .offset_mid = (uint16_t)(h >> 16),
      .offset_hi = (uint32_t)(h >> 32),
      .zero = 0,
  };
}

void rt_x86_set_interrupt_handler(uint8_t vector, void (*handler)(void*)) {
  set_gate(vector, (uint64_t)(uintptr_t)handler);
}

void rt_arch_init(void) {
  for (unsigned v = 0; v < IDT_VECTORS; v++) set_gate(v, rt_trap_stubs[v]);
  const struct idt_desc d = {sizeof(g_idt) - 1, (uint64_t)(uintptr_t)g_idt};
  __asm__ volatile("lidt %0" : : "m"(d) : "memory");
}

static const char* const kVectorNames[IDT_VECTORS] = {
    "#DE divide error",
    "#DB debug",
    "NMI",
    "#BP breakpoint",
    "#OF overflow",
    "#BR bound range",
    "#UD invalid opcode",
    "#NM device not available",
    "#DF double fault",
    "coprocessor segment overrun",
    "#TS invalid TSS",
    "#NP segment not present",
    "#SS stack fault",
    "#GP general protection",
    "#PF page fault",
    "reserved",
    "#MF x87 error",
    "#AC alignment check",
    "#MC machine check",
    "#XM SIMD error",
    "#VE virtualization",
    "#CP control protection",
};

RT_NORETURN void rt_trap(const struct rt_trap_frame* f);

void rt_trap(const struct rt_trap_frame* f) {
  if (g_in_trap) rt_exit(RT_TRAP_EXIT_CODE);  // fault while reporting a fault
  g_in_trap = true;
  const char* name = f->vector < IDT_VECTORS && kVectorNames[f->vector] != NULL
                         ? kVectorNames[f->vector]
                         : "reserved";
  rt_printf("\nFATAL: exception %lu (%s) error=0x%lx rip=0x%lx\n", f->vector, name, f->error,
            f->rip);
  if (f->vector == 14) rt_printf("  cr2=0x%016lx\n", rt_read_cr2());
  rt_printf("  rax=0x%016lx rbx=0x%016lx rcx=0x%016lx rdx=0x%016lx\n", f->rax, f->rbx, f->rcx,
            f->rdx);
  rt_printf("  rsi=0x%016lx rdi=0x%016lx rbp=0x%016lx rsp=0x%016lx\n", f->rsi, f->rdi, f->rbp,
            f->rsp);
  rt_printf("  r8 =0x%016lx r9 =0x%016lx r10=0x%016lx r11=0x%016lx\n", f->r8, f->r9, f->r10,
            f->r11);
  rt_printf("  r12=0x%016lx r13=0x%016lx r14=0x%016lx r15=0x%016lx\n", f->r12, f->r13, f->r14,
            f->r15);
  rt_printf("  cs=0x%lx ss=0x%lx rflags=0x%lx cr0=0x%lx cr3=0x%lx cr4=0x%lx\n", f->cs, f->ss,
            f->rflags, rt_read_cr0(), rt_read_cr3(), rt_read_cr4());
  rt_exit(RT_TRAP_EXIT_CODE);
}
