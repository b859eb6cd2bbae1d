#include "src/vmm/config/legacy_fields.h"

#include "absl/strings/str_format.h"
#include "src/base/json_fields.h"

namespace edgevisor {
namespace {

using json_fields::Bad;
using json_fields::Field;
using Json = nlohmann::json;

// Moves j[old_name] to j[new_name], refusing a body that sets both.
absl::Status Rename(Json& j, const std::string& where, const std::string& old_name,
                    const std::string& new_name, std::vector<std::string>& notes) {
  if (!j.contains(old_name)) return absl::OkStatus();
  if (j.contains(new_name)) {
    return Bad(Field(where, old_name),
               absl::StrFormat("is the pre-1.0 name of %s, which is also set: set only %s",
                               Field(where, new_name), new_name));
  }
  j[new_name] = std::move(j[old_name]);
  j.erase(old_name);
  notes.push_back(absl::StrFormat("%s is deprecated (Firecracker before 1.0): use %s",
                                  Field(where, old_name), Field(where, new_name)));
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<TranslatedLogger> TranslateLegacyLogger(Json logger, const std::string& where,
                                                       std::vector<std::string>& notes) {
  TranslatedLogger out;
  if (logger.is_object()) {
    if (logger.contains("log_fifo") && !logger["log_fifo"].is_string()) {
      return Bad(Field(where, "log_fifo"), "must be a string");
    }
    if (absl::Status s = Rename(logger, where, "log_fifo", "log_path", notes); !s.ok()) return s;
    if (logger.contains("metrics_fifo")) {
      // Before 1.0, the logger also named the metrics pipe; now the metrics section does.
      const Json& fifo = logger["metrics_fifo"];
      if (!fifo.is_string() || fifo.get<std::string>().empty()) {
        return Bad(Field(where, "metrics_fifo"), "must be a non-empty string");
      }
      out.metrics = Json{{"metrics_path", std::move(logger["metrics_fifo"])}};
      logger.erase("metrics_fifo");
      notes.push_back(
          absl::StrFormat("%s is deprecated (Firecracker before 1.0): use metrics.metrics_path",
                          Field(where, "metrics_fifo")));
    }
  }
  out.logger = std::move(logger);
  return out;
}

absl::StatusOr<Json> TranslateLegacyMachineConfig(Json machine, const std::string& where,
                                                  std::vector<std::string>& notes) {
  if (!machine.is_object()) return machine;
  if (machine.contains("ht_enabled") && !machine["ht_enabled"].is_boolean()) {
    return Bad(Field(where, "ht_enabled"), "must be true or false");
  }
  if (machine.contains("ht_enabled") && machine["ht_enabled"].get<bool>()) {
    return Bad(Field(where, "ht_enabled"), "true (smt, its current name) is not supported");
  }
  if (absl::Status s = Rename(machine, where, "ht_enabled", "smt", notes); !s.ok()) return s;
  return machine;
}

absl::StatusOr<Json> TranslateLegacyNetworkInterface(Json net, const std::string& where,
                                                     std::vector<std::string>& notes) {
  if (!net.is_object() || !net.contains("allow_mmds_requests")) return net;
  if (!net["allow_mmds_requests"].is_boolean()) {
    return Bad(Field(where, "allow_mmds_requests"), "must be true or false");
  }
  notes.push_back(
      absl::StrFormat("%s is deprecated (Firecracker before 1.0) and ignored: there is no MMDS",
                      Field(where, "allow_mmds_requests")));
  net.erase("allow_mmds_requests");
  return net;
}

}  // namespace edgevisor
