// Command-line parsing for `edgevisor run ...` into VmConfig.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "src/vmm/config/vm_config.h"

namespace edgevisor {

struct RunOptions {
  VmConfig vm;
  std::string log_level = "info";
};

// Parses the arguments after `run`. Errors are InvalidArgument and name the flag.
absl::StatusOr<RunOptions> ParseRunArgs(const std::vector<std::string>& args,
                                        const HostLimits& host);

// Firecracker's own flags, so that tools which exec `firecracker` can exec edgevisor:
// `--config-file F --no-api [--id ID] [--level L] [--boot-timer]`. The REST API (--api-sock)
// is not implemented yet and is refused with a clear message.
struct FirecrackerArgs {
  std::string config_file;
  std::string id;
  std::string level;  // Firecracker spelling (Info, Debug, ...) or empty
};
absl::StatusOr<FirecrackerArgs> ParseFirecrackerArgs(const std::vector<std::string>& args);

// Checks a filled VmConfig: values (ValidateVmConfig) and that the kernel file is readable.
absl::Status CheckVmInputs(const VmConfig& vm, const HostLimits& host);

// `path=F[,id=S][,ro=on][,direct=on][,queues=N][,engine=uring|sync]`; `index` names the default
// id (drive0, drive1, ...).
absl::StatusOr<DriveConfig> ParseDriveSpec(const std::string& spec, size_t index);

// `tap=NAME[,mac=M][,queues=N]`; `index` picks the default MAC 06:ed:9e:00:00:<index>.
absl::StatusOr<NetConfig> ParseNetSpec(const std::string& spec, size_t index);

std::string RunUsage();

}  // namespace edgevisor
