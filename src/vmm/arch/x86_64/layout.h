// x86_64 guest-physical layout.
#pragma once

#include <cstdint>

namespace edgevisor::x86 {

inline constexpr uint64_t kGdtAddr = 0x500;
inline constexpr uint64_t kStartInfoAddr = 0x6000;
inline constexpr uint64_t kMemmapAddr = 0x7000;
inline constexpr uint64_t kMemmapMaxEntries = 32;
inline constexpr uint64_t kCmdlineAddr = 0x20000;
inline constexpr uint64_t kCmdlineMax = 4096;    // bytes including the NUL
inline constexpr uint64_t kEbdaStart = 0x9fc00;  // RAM below this, legacy hole up to 1 MiB
inline constexpr uint64_t kHighMemStart = 0x100000;

// 32-bit MMIO hole [3 GiB, 4 GiB): devices, IOAPIC, LAPIC. RAM above it continues at 4 GiB.
inline constexpr uint64_t kMmioHoleStart = 0xc0000000;
inline constexpr uint64_t kMmioHoleEnd = 0x100000000;
inline constexpr uint64_t kBootTimerAddr = 0xd0000000;  // Firecracker's x86_64 address
// virtio-mmio devices: one 4 KiB window each after the boot timer, interrupts on IOAPIC pins
// from 5 (4 is COM1).
inline constexpr uint64_t kVirtioMmioBase = 0xd0001000;
inline constexpr uint64_t kVirtioMmioStride = 0x1000;
inline constexpr uint32_t kVirtioGsiBase = 5;
inline constexpr uint64_t kTssAddr = 0xfffbd000;
inline constexpr uint64_t kIdentityMapAddr = 0xfffbc000;

// Legacy devices.
inline constexpr uint64_t kCom1Port = 0x3f8;
inline constexpr uint32_t kCom1Irq = 4;
inline constexpr uint32_t kKeyboardIrq = 1;  // i8042 keyboard

}  // namespace edgevisor::x86
