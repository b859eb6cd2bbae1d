// aarch64 platform code: ns16550a console over MMIO, debug-exit, PSCI power-off, exception
// reports, the generic timer's frequency.
#include "rt.h"

// ---- Console: polled ns16550a, byte registers ----------------------------------------------

#define UART_THR 0
#define UART_DLL 0
#define UART_IER 1
#define UART_DLM 1
#define UART_FCR 2
#define UART_LCR 3
#define UART_MCR 4
#define UART_LSR 5
#define UART_LCR_DLAB 0x80
#define UART_LCR_8N1 0x03
#define UART_LSR_THRE 0x20
#define UART_SPINS 1000000
#define UART_SPINS_DEGRADED 64
#define UART_TX_FIFO 16

static bool g_uart_stuck;
static unsigned g_tx_credit;  // as on x86_64: one LSR read per FIFO's worth of characters

static void uart_out(unsigned reg, uint8_t v) { rt_mmio_write8(RT_UART_BASE + reg, v); }
static uint8_t uart_in(unsigned reg) { return rt_mmio_read8(RT_UART_BASE + reg); }

void rt_console_init(void) {
  uart_out(UART_IER, 0x00);
  uart_out(UART_LCR, UART_LCR_DLAB);
  uart_out(UART_DLL, 0x01);
  uart_out(UART_DLM, 0x00);
  uart_out(UART_LCR, UART_LCR_8N1);
  uart_out(UART_FCR, 0x01);  // FIFOs on, not cleared
  uart_out(UART_MCR, 0x03);
}

void rt_putc(char c) {
  if (g_tx_credit > 0) {
    g_tx_credit--;
    uart_out(UART_THR, (uint8_t)c);
    return;
  }
  const unsigned limit = g_uart_stuck ? UART_SPINS_DEGRADED : UART_SPINS;
  unsigned spins = 0;
  while ((uart_in(UART_LSR) & UART_LSR_THRE) == 0) {
    if (++spins >= limit) {
      g_uart_stuck = true;
      return;
    }
    rt_cpu_relax();
  }
  g_uart_stuck = false;
  g_tx_credit = UART_TX_FIFO - 1;
  uart_out(UART_THR, (uint8_t)c);
}

void rt_write(const char* s, size_t len) {
  for (size_t i = 0; i < len; i++) rt_putc(s[i]);
}

void rt_print(const char* s) {
  while (*s != '\0') rt_putc(*s++);
}

// ---- Exit / halt ---------------------------------------------------------------------------

void rt_halt(void) {
  rt_psci_call(PSCI_0_2_FN_SYSTEM_OFF, 0, 0, 0);
  for (;;) __asm__ volatile("wfi" ::: "memory");  // no PSCI: sleep with interrupts masked
}

void rt_exit(int code) {
  // Without --debug-exit nothing decodes this address and edgevisor ignores the write.
  rt_mmio_write32(RT_DEBUG_EXIT_ADDR, (uint32_t)(uint8_t)code);
  rt_halt();
}

// ---- Time ----------------------------------------------------------------------------------

uint64_t rt_ticks_hz(void) {
  const uint64_t hz = RT_READ_SYSREG(cntfrq_el0) & 0xffffffffull;
  return hz != 0 ? hz : 62500000ull;  // unset by firmware: assume the common 62.5 MHz
}

// ---- Exceptions ----------------------------------------------------------------------------

#define RT_TRAP_EXIT_CODE 0x7f

void rt_arch_init(void) {}  // the vectors are installed by the entry code, before the MMU is on

static const char* const kVectorKinds[16] = {
    "sync, current EL, SP0",     "IRQ, current EL, SP0",    "FIQ, current EL, SP0",
    "SError, current EL, SP0",   "sync, current EL, SPx",   "IRQ, current EL, SPx",
    "FIQ, current EL, SPx",      "SError, current EL, SPx", "sync, lower EL, AArch64",
    "IRQ, lower EL, AArch64",    "FIQ, lower EL, AArch64",  "SError, lower EL, AArch64",
    "sync, lower EL, AArch32",   "IRQ, lower EL, AArch32",  "FIQ, lower EL, AArch32",
    "SError, lower EL, AArch32",
};

static bool g_in_trap;

RT_NORETURN void rt_aarch64_trap(uint64_t vector, const uint64_t* saved_fp_lr);

void rt_aarch64_trap(uint64_t vector, const uint64_t* saved_fp_lr) {
  if (g_in_trap) rt_exit(RT_TRAP_EXIT_CODE);
  g_in_trap = true;
  const uint64_t esr = RT_READ_SYSREG(esr_el1);
  rt_printf("\nFATAL: exception %lu (%s) esr=0x%lx (class 0x%lx) elr=0x%lx far=0x%lx\n", vector,
            vector < 16 ? kVectorKinds[vector] : "?", esr, (esr >> 26) & 0x3f,
            RT_READ_SYSREG(elr_el1), RT_READ_SYSREG(far_el1));
  rt_printf("  spsr=0x%lx sp=0x%lx x29=0x%lx x30=0x%lx sctlr=0x%lx\n", RT_READ_SYSREG(spsr_el1),
            (uint64_t)(uintptr_t)(saved_fp_lr + 2), saved_fp_lr[0], saved_fp_lr[1],
            RT_READ_SYSREG(sctlr_el1));
  rt_exit(RT_TRAP_EXIT_CODE);
}

// ---- Stack protector -------------------------------------------------------------------------
// The arm64 libfdt.a from Debian is built with -fstack-protector-strong; these are the symbols
// its functions expect (glibc's aarch64 ABI: a global guard word).

uintptr_t __stack_chk_guard = 0x595e9fbd94fda766ull;

RT_NORETURN void __stack_chk_fail(void);
void __stack_chk_fail(void) {
  rt_printf("\nFATAL: stack smashing detected\n");
  rt_exit(RT_TRAP_EXIT_CODE);
}
