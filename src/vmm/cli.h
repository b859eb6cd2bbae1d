// Command-line parsing for `edgevisor run ...` into VmConfig.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "src/vmm/config/vm_config.h"

namespace edgevisor {

struct RunOptions {
  VmConfig vm;
  std::string log_level = "info";
  bool seccomp = true;  // --no-seccomp turns the threads' filters off (with a warning)
};

// Parses the arguments after `run`. Errors are InvalidArgument and name the flag.
absl::StatusOr<RunOptions> ParseRunArgs(const std::vector<std::string>& args,
                                        const HostLimits& host);

// Firecracker's own flags, so that tools which exec `firecracker` (firectl, firecracker-go-sdk,
// the jailer) can exec edgevisor: `[--api-sock PATH | --no-api] [--config-file F] [--id ID]
// [--level L] [--log-path P] [--show-level] [--show-log-origin] [--metrics-path P]
// [--boot-timer] [--http-api-max-payload-size N] ...`. Flags for features edgevisor lacks are
// refused by name; the jailer's timing flags are accepted and ignored.
struct FirecrackerArgs {
  std::string api_sock = "/run/firecracker.socket";
  bool no_api = false;
  std::string config_file;
  std::string id;
  std::string level;  // Firecracker spelling (Info, Debug, ...) or empty
  std::string log_path;
  bool show_level = false;
  std::string metrics_path;
  size_t max_payload = 51200;
  std::string metadata;            // --metadata: the MMDS data store's first contents (JSON)
  size_t mmds_size_limit = 51200;  // --mmds-size-limit: the store's limit in bytes
  // Our extension (the appliance's supervisor tells a reboot from a power-off with it); with
  // --no-api only. Firecracker exits 0 on both.
  std::optional<int> reboot_exit_code;
  bool seccomp = true;  // --no-seccomp
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
