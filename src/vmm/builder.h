// VmConfig -> a VM ready to run, top-down, in one place.
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "src/devices/legacy/boot_timer.h"
#include "src/vmm/config/vm_config.h"
#include "src/vmm/vmm.h"

namespace edgevisor {

// Errors about the user's inputs (kernel file, sizes) are InvalidArgument; host failures keep
// their errno-derived codes.
// FILTERS are the threads' seccomp filters (default: none); each thread the VM has installs
// its own before it runs guest-controlled work (see seccomp/filters.h).
absl::StatusOr<std::unique_ptr<Vmm>> BuildVm(const VmConfig& cfg, ProcessClock vmm_start,
                                             const seccomp::ThreadFilters& filters = {});

}  // namespace edgevisor
