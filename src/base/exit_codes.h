// The exit statuses of edgevisor and ev-appliance (besides the debug-exit's (v << 1) | 1). The
// appliance's supervisor reads the VMM's status with the same names.
#pragma once

namespace edgevisor {

inline constexpr int kExitOk = 0;
inline constexpr int kExitVmmError = 1;
inline constexpr int kExitUsage = 2;  // bad flags, config or input files: a usage error
inline constexpr int kExitGuestCrash = 3;
// A thread made a syscall its seccomp filter forbids (Firecracker's BadSyscall status).
inline constexpr int kExitSeccomp = 148;

}  // namespace edgevisor
