// VmConfig -> a VM ready to run, top-down, in one place.
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "src/devices/legacy/boot_timer.h"
#include "src/vmm/config/vm_config.h"
#include "src/vmm/snapshot/vm_state.h"
#include "src/vmm/vmm.h"

namespace edgevisor {

// Errors about the user's inputs (kernel file, sizes) are InvalidArgument; host failures keep
// their errno-derived codes.
// FILTERS are the threads' seccomp filters (default: none); each thread the VM has installs
// its own before it runs guest-controlled work (see seccomp/filters.h).
absl::StatusOr<std::unique_ptr<Vmm>> BuildVm(const VmConfig& cfg, ProcessClock vmm_start,
                                             const seccomp::ThreadFilters& filters = {});

// Where a restored VM's memory comes from and how it runs.
struct RestoreOptions {
  std::string mem_path;  // the snapshot's memory file, mapped MAP_PRIVATE (copy-on-write)
  bool resume = false;   // run at once; else the vCPUs wait for Vmm::Resume
  std::string id = "anonymous";
  SerialConfig serial;  // the console of this process (stdio by default)
};

// Builds a VM from a snapshot's parsed state: the same devices in the same slots (their drives
// and TAPs opened again by the saved paths and names), every vCPU, the irqchip and the devices
// put back as they were. Errors name the input; nothing is left running on an error.
absl::StatusOr<std::unique_ptr<Vmm>> RestoreVm(const snapshot::VmState& state,
                                               const RestoreOptions& opts, ProcessClock vmm_start,
                                               const seccomp::ThreadFilters& filters = {});

}  // namespace edgevisor
