// What the jailer gives up before it execs the VMM: inherited fds, resource headroom,
// capabilities, supplementary groups and root.
#pragma once

#include <sys/types.h>

#include <vector>

#include "absl/status/status.h"
#include "src/jailer/args.h"

namespace edgevisor::jailer {

// Closes every fd above 2 (close_range(2)).
absl::Status CloseInheritedFds();

// setrlimit for each --resource-limit (soft and hard), or no-file=2048 when none is given, as
// Firecracker does. kExitPrivileges on failure.
absl::Status SetResourceLimits(const std::vector<ResourceLimit>& limits);

// no_new_privs, an empty bounding and ambient set, no supplementary groups, real/effective/saved
// uid and gid = uid:gid, empty permitted/effective/inheritable sets; then checks that it holds.
// kExitPrivileges on failure.
absl::Status DropPrivileges(uid_t uid, gid_t gid);

}  // namespace edgevisor::jailer
