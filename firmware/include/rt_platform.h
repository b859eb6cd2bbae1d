// Fixed guest-physical addresses and ports of the platform devices the runtime talks to. They
// must match the host VMM (src/vmm/arch/<arch>/layout.h) and, where noted, QEMU.
#ifndef EDGEVISOR_FW_RT_PLATFORM_H
#define EDGEVISOR_FW_RT_PLATFORM_H

#if defined(__x86_64__)

// Image load address; must match the linker script (firmware/x86_64/link.ld).
#define RT_IMAGE_BASE 0x100000ull

// edgevisor boot-timer MMIO device (Firecracker semantics: write BOOT_TIMER_MAGIC to offset 0).
// On QEMU this is unassigned MMIO and the write is ignored.
#define BOOT_TIMER_ADDR 0xd0000000ull
#define BOOT_TIMER_MAGIC 123

// 16550 UART (COM1), polled.
#define RT_COM1_PORT 0x3f8

// QEMU isa-debug-exit compatible port: writing v exits the VMM with status (v << 1) | 1.
#define RT_DEBUG_EXIT_PORT 0xf4

// Start of the default virtio-mmio window on QEMU microvm (and edgevisor).
#define RT_VIRTIO_MMIO_BASE 0xfeb00000ull

#elif defined(__aarch64__)

// Image load address: the start of RAM (text_offset 0); must match the linker script
// (firmware/aarch64/link.ld) and edgevisor's kRamBase.
#define RT_IMAGE_BASE 0x80000000ull

// edgevisor boot-timer MMIO device (Firecracker semantics, as on x86_64).
#define BOOT_TIMER_ADDR 0x09020000ull
#define BOOT_TIMER_MAGIC 123

// ns16550a UART, byte-wide registers (reg-shift 0), polled.
#define RT_UART_BASE 0x09000000ull

// edgevisor's debug-exit window (--debug-exit): a 32-bit write of v exits the VMM with status
// (v << 1) | 1, as QEMU's isa-debug-exit does on x86.
#define RT_DEBUG_EXIT_ADDR 0x09030000ull

// The first virtio-mmio slot (edgevisor's kVirtioMmioBase); the payloads find their devices in
// the device tree, the self-test checks how the window is mapped.
#define RT_VIRTIO_MMIO_BASE 0x0a000000ull

#else
#error "edgevisor firmware: unsupported architecture"
#endif

#endif  // EDGEVISOR_FW_RT_PLATFORM_H
