// The jail's files: <root> and the VMM binary inside it, made on the host before the jailer
// moves in, and the device nodes the VMM opens, made once it is in. Owned as Firecracker's
// jailer leaves them.
#pragma once

#include <sys/types.h>

#include <string>

#include "absl/status/statusor.h"
#include "src/jailer/args.h"

namespace edgevisor::jailer {

// --exec-file names an executable regular file (kExitExecFile otherwise).
absl::Status CheckExecFile(const std::string& path);

// Makes <root> (an existing one is used as it is: a fleet manager may have prepared it), puts the
// exec file at <root>/<exec file name> (a hard link, or a copy across file systems or when the
// jailed uid could write the original) and gives <root> itself to uid:gid, so that the VMM can
// create its API socket there. Failures are kExitJail.
absl::Status BuildJailTree(const JailerArgs& a);

// The host's /dev/kvm and /dev/net/tun, whose numbers the jail's nodes get.
struct HostDevices {
  dev_t kvm = 0;
  dev_t tun = 0;
};
absl::StatusOr<HostDevices> FindHostDevices();

// Inside the jail (after PivotInto, so that a symlink a previous VMM left in <root> resolves in
// the jail, never on the host, as in Firecracker's order): /dev/kvm and /dev/net/tun, mode 0600,
// owned by uid:gid. An existing node is replaced. Failures are kExitJail.
absl::Status MakeDeviceNodes(const HostDevices& devices, uid_t uid, gid_t gid);

}  // namespace edgevisor::jailer
