// aarch64 guest-physical layout. Devices live below 2 GiB, RAM starts at 2 GiB (as in
// Firecracker), so a 32-bit device address never collides with RAM.
#pragma once

#include <cstdint>

namespace edgevisor::aarch64 {

// Interrupt controller (QEMU virt's addresses).
inline constexpr uint64_t kGicDistBase = 0x08000000;  // 64 KiB reserved
inline constexpr uint64_t kGicDistSize = 0x10000;     // GICv3 distributor
inline constexpr uint64_t kGicV2DistSize = 0x1000;    // GICv2 distributor
inline constexpr uint64_t kGicCpuBase = 0x08010000;   // GICv2 CPU interface
inline constexpr uint64_t kGicCpuSize = 0x2000;
// GICv3 ITS (when KVM has one): two 64 KiB frames, control and translater (QEMU virt's place).
inline constexpr uint64_t kGicItsBase = 0x08080000;
inline constexpr uint64_t kGicItsSize = 0x20000;
inline constexpr uint64_t kGicRedistBase = 0x080a0000;  // GICv3: one 128 KiB frame per vCPU
inline constexpr uint64_t kGicRedistSizePerCpu = 0x20000;
inline constexpr uint64_t kGicRedistEnd = 0x09000000;  // room for 123 vCPUs
inline constexpr uint32_t kGicNumIrqs = 128;           // SGIs + PPIs + 96 SPIs
// The PMU's overflow interrupt: PPI 7, INTID 16 + 7 (what QEMU's virt board and kvmtool use).
inline constexpr uint32_t kPmuPpi = 7;
inline constexpr uint32_t kPmuIntid = 16 + kPmuPpi;

// Legacy devices, each one 4 KiB window and one SPI.
inline constexpr uint64_t kUartBase = 0x09000000;  // ns16550a, byte registers
inline constexpr uint32_t kUartSpi = 1;
inline constexpr uint64_t kRtcBase = 0x09010000;  // PL031
inline constexpr uint32_t kRtcSpi = 2;
inline constexpr uint64_t kBootTimerAddr = 0x09020000;
// --debug-exit: a 4-byte MMIO window with QEMU isa-debug-exit semantics (the test payloads'
// exit status; firmware/include/rt_platform.h). Not in the device tree: only our payloads use it.
inline constexpr uint64_t kDebugExitBase = 0x09030000;
inline constexpr uint64_t kDeviceWindowSize = 0x1000;
inline constexpr uint32_t kUartClockHz = 1843200;

// virtio-mmio devices: 4 KiB windows from here, interrupts on SPIs from 16.
inline constexpr uint64_t kVirtioMmioBase = 0x0a000000;
inline constexpr uint64_t kVirtioMmioStride = 0x1000;
inline constexpr uint32_t kVirtioSpiBase = 16;

// RAM, and where the device tree goes inside it: the last 2 MiB (booting.rst: 8-byte aligned,
// at most 2 MiB, not overlapping the kernel).
inline constexpr uint64_t kRamBase = 0x80000000;
inline constexpr uint64_t kFdtMaxSize = 0x200000;

// The architected timer's PPIs (INTIDs 16 + n): secure, non-secure, virtual, hypervisor.
inline constexpr uint32_t kTimerPpis[4] = {13, 14, 11, 10};

}  // namespace edgevisor::aarch64
