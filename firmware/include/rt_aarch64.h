// aarch64-only inline helpers: system registers, the generic timer, PSCI calls.
#ifndef EDGEVISOR_FW_RT_AARCH64_H
#define EDGEVISOR_FW_RT_AARCH64_H

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

#endif  // EDGEVISOR_FW_RT_AARCH64_H
