// The device tree an aarch64 guest boots with, built with libfdt: memory, cpus (PSCI enable
// method), psci, the architected timer, the GIC (v2 or v3), the ns16550a UART, the PL031 RTC,
// one virtio,mmio node per device, and /chosen (bootargs, initrd, stdout-path).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace edgevisor::aarch64 {

struct FdtVirtioMmio {
  uint64_t base;
  uint32_t size;
  uint32_t spi;
};

struct FdtConfig {
  uint64_t ram_base = 0;
  uint64_t ram_size = 0;
  int vcpus = 1;
  int gic_version = 3;
  bool gic_its = false;  // GICv3 only: an ITS node (msi-controller) under the GIC
  bool pmu = false;      // a PMUv3 node (arm,armv8-pmuv3) with its PPI
  std::string cmdline;
  uint64_t initrd_addr = 0;  // 0: no initrd
  uint64_t initrd_size = 0;
  std::vector<FdtVirtioMmio> virtio;
};

// KVM's default MPIDR for vCPU `index` (Aff0 = index % 16, Aff1 = index / 16), which is also
// what the cpus' reg properties hold.
uint64_t DefaultMpidr(int index);

absl::StatusOr<std::vector<uint8_t>> BuildFdt(const FdtConfig& c);

}  // namespace edgevisor::aarch64
