// Volatile MMIO accessors. Addresses are guest-physical; the runtime identity-maps them.
#ifndef EDGEVISOR_FW_RT_MMIO_H
#define EDGEVISOR_FW_RT_MMIO_H

#include <stdint.h>

#define RT_BARRIER() __asm__ volatile("" ::: "memory")

#if defined(__aarch64__)
// One plain load or store per access, written out: KVM can only emulate an MMIO access whose
// syndrome it gets (ISV=1), which rules out the writeback and pair forms a compiler may pick for
// a volatile dereference.
#define RT_MMIO_ACCESSORS(bits, type, suffix, reg)                                       \
  static inline type rt_mmio_read##bits(uintptr_t addr) {                                \
    type v;                                                                              \
    __asm__ volatile("ldr" suffix " %" reg "0, [%1]" : "=r"(v) : "r"(addr) : "memory");  \
    return v;                                                                            \
  }                                                                                      \
  static inline void rt_mmio_write##bits(uintptr_t addr, type v) {                       \
    __asm__ volatile("str" suffix " %" reg "0, [%1]" : : "rZ"(v), "r"(addr) : "memory"); \
  }
RT_MMIO_ACCESSORS(8, uint8_t, "b", "w")
RT_MMIO_ACCESSORS(16, uint16_t, "h", "w")
RT_MMIO_ACCESSORS(32, uint32_t, "", "w")
RT_MMIO_ACCESSORS(64, uint64_t, "", "x")
#undef RT_MMIO_ACCESSORS
#else
static inline uint8_t rt_mmio_read8(uintptr_t addr) { return *(const volatile uint8_t*)addr; }
static inline uint16_t rt_mmio_read16(uintptr_t addr) { return *(const volatile uint16_t*)addr; }
static inline uint32_t rt_mmio_read32(uintptr_t addr) { return *(const volatile uint32_t*)addr; }
static inline uint64_t rt_mmio_read64(uintptr_t addr) { return *(const volatile uint64_t*)addr; }
static inline void rt_mmio_write8(uintptr_t addr, uint8_t v) { *(volatile uint8_t*)addr = v; }
static inline void rt_mmio_write16(uintptr_t addr, uint16_t v) { *(volatile uint16_t*)addr = v; }
static inline void rt_mmio_write32(uintptr_t addr, uint32_t v) { *(volatile uint32_t*)addr = v; }
static inline void rt_mmio_write64(uintptr_t addr, uint64_t v) { *(volatile uint64_t*)addr = v; }

#endif

#endif  // EDGEVISOR_FW_RT_MMIO_H
