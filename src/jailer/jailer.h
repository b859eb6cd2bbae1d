// The jailer's run, in Firecracker's order (docs/jailer.md): check what the host must have,
// make and join the cgroups, build the jail, join the netns, pivot into the jail, daemonize,
// fork into a PID namespace if asked, set the rlimits, drop every privilege, exec the VMM.
#pragma once

#include <cstdint>

#include "absl/status/status.h"
#include "src/jailer/args.h"

namespace edgevisor::jailer {

// When the jailer started; the VMM gets them as --start-time-us / --start-time-cpu-us.
struct StartTimes {
  uint64_t monotonic_us = 0;
  uint64_t cpu_us = 0;
  static StartTimes Now();
};

// Returns only if something failed (the status carries the exit code, exit_codes.h), or OK in
// the parent that --new-pid-ns leaves behind, once it has written <root>/<exec file name>.pid.
absl::Status RunJailer(const JailerArgs& a, StartTimes start);

}  // namespace edgevisor::jailer
