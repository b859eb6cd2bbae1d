// The ACPI tables an x86_64 microVM boots with, generated at start: RSDP, XSDT, a hardware-
// reduced FADT, the MADT (one local APIC per vCPU and the IOAPIC) and a DSDT that describes
// COM1, the i8042, and every virtio-mmio device as LNRO0005. Linux kernels without
// CONFIG_X86_MPPARSE find the secondary CPUs only here, and kernels without
// CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES (Debian's) find virtio-mmio devices only here.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "src/platform/guest_memory.h"
#include "src/vmm/acpi/sdt.h"

namespace edgevisor::x86 {

// The tables live in the BIOS area [0xe0000, 1 MiB): the e820 map reserves it, and Linux's
// fallback scan for the RSDP looks there too.
inline constexpr uint64_t kAcpiBase = 0xe0000;
inline constexpr uint64_t kAcpiEnd = 0x100000;

// The ACPI power-management registers of the hardware-reduced model, on I/O ports.
inline constexpr uint16_t kAcpiSleepControlPort = 0x600;
inline constexpr uint16_t kAcpiSleepStatusPort = 0x601;
inline constexpr uint16_t kAcpiResetPort = 0x602;
inline constexpr uint8_t kAcpiResetValue = 0x01;
inline constexpr uint8_t kAcpiS5SleepType = 5;  // the value \_S5 hands the OS

struct AcpiVirtioMmio {
  uint64_t base;
  uint32_t size;
  uint32_t gsi;
};

struct AcpiTable {
  std::string signature;  // "RSD PTR " for the RSDP
  uint64_t addr;          // guest-physical
  acpi::Bytes data;
};

// The tables in address order, the RSDP first.
absl::StatusOr<std::vector<AcpiTable>> BuildAcpiTables(int vcpus,
                                                       absl::Span<const AcpiVirtioMmio> virtio);

// Builds and writes the tables; returns the RSDP's address.
absl::StatusOr<uint64_t> WriteAcpiTables(const GuestMemory& mem, int vcpus,
                                         absl::Span<const AcpiVirtioMmio> virtio);

}  // namespace edgevisor::x86
