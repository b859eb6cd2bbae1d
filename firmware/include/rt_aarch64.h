// aarch64-only inline helpers: system registers, the generic timer, PSCI calls.
#ifndef EDGEVISOR_FW_RT_AARCH64_H
#define EDGEVISOR_FW_RT_AARCH64_H

#include <stdbool.h>
#include <stdint.h>

#define RT_READ_SYSREG(name)                       \
  ({                                               \
    uint64_t v_;                                   \
    __asm__ volatile("mrs %0, " #name : "=r"(v_)); \
    v_;                                            \
  })

// The virtual counter (CNTVCT_EL0) and its frequency (CNTFRQ_EL0). The ISB keeps the counter
// read from being hoisted above earlier instructions.
static inline uint64_t rt_ticks(void) {
  uint64_t v;
  __asm__ volatile("isb; mrs %0, cntvct_el0" : "=r"(v)::"memory");
  return v;
}

static inline void rt_cpu_relax(void) { __asm__ volatile("yield" ::: "memory"); }

// PSCI 0.2 function IDs (SMC32 calling convention), through HVC: KVM implements PSCI itself.
#define PSCI_0_2_FN_PSCI_VERSION 0x84000000u
#define PSCI_0_2_FN_SYSTEM_OFF 0x84000008u
#define PSCI_0_2_FN_SYSTEM_RESET 0x84000009u

static inline uint64_t rt_psci_call(uint64_t fn, uint64_t a1, uint64_t a2, uint64_t a3) {
  register uint64_t x0 __asm__("x0") = fn;
  register uint64_t x1 __asm__("x1") = a1;
  register uint64_t x2 __asm__("x2") = a2;
  register uint64_t x3 __asm__("x3") = a3;
  __asm__ volatile("hvc #0" : "+r"(x0) : "r"(x1), "r"(x2), "r"(x3) : "memory");
  return x0;
}

// The device tree the VMM passed in x0 (NULL if it failed fdt_check_header).
const void* rt_fdt(void);
// MMIO window number `index` ("reg" pair) of the first enabled node compatible with
// `compatible`: false if there is none.
bool rt_device_reg(const char* compatible, int index, uint64_t* base, uint64_t* size);

// ---- The interrupt controller (gic.c) -------------------------------------------------------
// Interrupts stay masked at the CPU (PSTATE.I): a payload sleeps in WFI, which an interrupt
// pending at the CPU interface ends even while masked, then acknowledges it here.

// Finds the GIC the device tree describes (v3: "arm,gic-v3", distributor and redistributors;
// v2: "arm,cortex-a15-gic", distributor and CPU interface), enables it and this CPU's interface,
// and enables the level-triggered SPI `intid`, routed to this CPU. Returns the GIC version (2 or
// 3), or 0 if there is none or `intid` is not an SPI.
int rt_gic_enable_spi(uint32_t intid);
// Acknowledges the highest-priority pending interrupt: its INTID, or 1020-1023 if none.
uint32_t rt_gic_ack(void);
// Ends the interrupt that rt_gic_ack returned (priority drop and deactivation).
void rt_gic_eoi(uint32_t intid);
// Sleeps until an interrupt is pending (or a spurious wake-up).
static inline void rt_wait_for_interrupt(void) { __asm__ volatile("dsb sy; wfi" ::: "memory"); }

#endif  // EDGEVISOR_FW_RT_AARCH64_H
