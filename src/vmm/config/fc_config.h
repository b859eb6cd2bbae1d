// Firecracker's JSON configuration file (`--config-file F`), filled into the one VmConfig model.
// The file is user input: every field is checked for type and range, unknown fields are errors,
// and each message names the field ("drives[1].path_on_host: ..."). Fuzzed by
// tests/fuzz/fc_config_fuzz.cc.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "src/vmm/config/vm_config.h"

namespace edgevisor {

struct LoggerConfig {
  std::string level = "info";  // spdlog level name
  std::string log_path;        // empty: stderr
};

struct FirecrackerConfig {
  VmConfig vm;
  LoggerConfig logger;
};

absl::StatusOr<FirecrackerConfig> ParseFirecrackerConfig(const std::string& json);

}  // namespace edgevisor
