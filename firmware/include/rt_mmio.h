// Volatile MMIO accessors. Addresses are guest-physical; the runtime identity-maps them.
#ifndef EDGEVISOR_FW_RT_MMIO_H
#define EDGEVISOR_FW_RT_MMIO_H

#include <stdint.h>

#define RT_BARRIER() __asm__ volatile("" ::: "memory")

static inline uint8_t rt_mmio_read8(uintptr_t addr) { return *(const volatile uint8_t*)addr; }
static inline uint16_t rt_mmio_read16(uintptr_t addr) { return *(const volatile uint16_t*)addr; }
static inline uint32_t rt_mmio_read32(uintptr_t addr) { return *(const volatile uint32_t*)addr; }
static inline uint64_t rt_mmio_read64(uintptr_t addr) { return *(const volatile uint64_t*)addr; }
static inline void rt_mmio_write8(uintptr_t addr, uint8_t v) { *(volatile uint8_t*)addr = v; }
static inline void rt_mmio_write16(uintptr_t addr, uint16_t v) { *(volatile uint16_t*)addr = v; }
static inline void rt_mmio_write32(uintptr_t addr, uint32_t v) { *(volatile uint32_t*)addr = v; }
static inline void rt_mmio_write64(uintptr_t addr, uint64_t v) { *(volatile uint64_t*)addr = v; }

#endif  // EDGEVISOR_FW_RT_MMIO_H
