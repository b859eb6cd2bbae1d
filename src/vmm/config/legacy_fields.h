// Field names from Firecracker before 1.0 that fleet drivers still send, accepted as aliases of
// the current ones: logger.log_fifo (log_path), logger.metrics_fifo (the metrics section's
// metrics_path), machine-config.ht_enabled (smt), and network-interfaces[].allow_mmds_requests
// (accepted and ignored: MMDS is not supported). Each Translate* takes a section as sent and
// returns it with the old names rewritten to the current ones, adding one deprecation note per
// alias to `notes`, for the caller to log once logging is set up. A section that is not an object
// passes through for its parser to refuse. Old names that have no current equivalent (the
// pre-1.0 logger's `options`) stay unknown fields, refused by name.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace edgevisor {

struct TranslatedLogger {
  nlohmann::json logger;
  std::optional<nlohmann::json> metrics;  // from metrics_fifo: a metrics section
};

absl::StatusOr<TranslatedLogger> TranslateLegacyLogger(nlohmann::json logger,
                                                       const std::string& where,
                                                       std::vector<std::string>& notes);
absl::StatusOr<nlohmann::json> TranslateLegacyMachineConfig(nlohmann::json machine,
                                                            const std::string& where,
                                                            std::vector<std::string>& notes);
absl::StatusOr<nlohmann::json> TranslateLegacyNetworkInterface(nlohmann::json net,
                                                               const std::string& where,
                                                               std::vector<std::string>& notes);

}  // namespace edgevisor
