#include "src/vmm/config/fc_config.h"

#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "nlohmann/json.hpp"

namespace edgevisor {
namespace {

using Json = nlohmann::json;

absl::Status Bad(const std::string& field, const std::string& why) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", why));
}

// Checks that `obj` is an object whose keys are all in `known`.
absl::Status CheckObject(const Json& obj, const std::string& where,
                         const std::set<std::string>& known) {
  if (!obj.is_object()) return Bad(where, "must be an object");
  for (const auto& [key, value] : obj.items()) {
    if (!known.count(key)) return Bad(where.empty() ? key : where + "." + key, "unknown field");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> GetString(const Json& obj, const std::string& where,
                                      const std::string& key, bool required) {
  if (!obj.contains(key) || obj[key].is_null()) {
    if (required) return Bad(where + "." + key, "missing required field");
    return std::string();
  }
  if (!obj[key].is_string()) return Bad(where + "." + key, "must be a string");
  return obj[key].get<std::string>();
}

absl::StatusOr<bool> GetBool(const Json& obj, const std::string& where, const std::string& key,
                             bool required, bool fallback) {
  if (!obj.contains(key)) {
    if (required) return Bad(where + "." + key, "missing required field");
    return fallback;
  }
  if (!obj[key].is_boolean()) return Bad(where + "." + key, "must be true or false");
  return obj[key].get<bool>();
}

absl::StatusOr<uint64_t> GetUint(const Json& obj, const std::string& where, const std::string& key,
                                 uint64_t min, uint64_t max) {
  if (!obj.contains(key)) return Bad(where + "." + key, "missing required field");
  if (!obj[key].is_number_unsigned()) {
    return Bad(where + "." + key, "must be a non-negative integer");
  }
  const uint64_t v = obj[key].get<uint64_t>();
  if (v < min || v > max) {
    return Bad(where + "." + key, absl::StrFormat("%d is outside [%d, %d]", v, min, max));
  }
  return v;
}

#define ASSIGN_OR_RETURN(lhs, expr)   \
  do {                                \
    auto r_ = (expr);                 \
    if (!r_.ok()) return r_.status(); \
    lhs = *std::move(r_);             \
  } while (0)

absl::Status ParseBootSource(const Json& j, VmConfig& vm) {
  const std::string w = "boot-source";
  absl::Status s = CheckObject(j, w, {"kernel_image_path", "boot_args", "initrd_path"});
  if (!s.ok()) return s;
  ASSIGN_OR_RETURN(vm.boot.kernel_path, GetString(j, w, "kernel_image_path", true));
  std::string args;
  ASSIGN_OR_RETURN(args, GetString(j, w, "boot_args", false));
  if (!args.empty()) vm.boot.cmdline = args;
  std::string initrd;
  ASSIGN_OR_RETURN(initrd, GetString(j, w, "initrd_path", false));
  if (!initrd.empty()) return Bad(w + ".initrd_path", "initrds are not supported yet");
  return absl::OkStatus();
}

absl::Status ParseMachine(const Json& j, VmConfig& vm) {
  const std::string w = "machine-config";
  absl::Status s = CheckObject(
      j, w,
      {"vcpu_count", "mem_size_mib", "smt", "track_dirty_pages", "cpu_template", "huge_pages"});
  if (!s.ok()) return s;
  uint64_t v;
  ASSIGN_OR_RETURN(v, GetUint(j, w, "vcpu_count", 1, 254));
  vm.machine.vcpus = static_cast<int>(v);
  ASSIGN_OR_RETURN(vm.machine.mem_mib, GetUint(j, w, "mem_size_mib", 1, uint64_t{1} << 32));
  bool b;
  ASSIGN_OR_RETURN(b, GetBool(j, w, "smt", false, false));
  if (b) return Bad(w + ".smt", "true is not supported");
  ASSIGN_OR_RETURN(b, GetBool(j, w, "track_dirty_pages", false, false));
  if (b) return Bad(w + ".track_dirty_pages", "true is not supported");
  std::string t;
  ASSIGN_OR_RETURN(t, GetString(j, w, "cpu_template", false));
  if (!t.empty() && t != "None") return Bad(w + ".cpu_template", "only \"None\" is supported");
  ASSIGN_OR_RETURN(t, GetString(j, w, "huge_pages", false));
  if (!t.empty() && t != "None") return Bad(w + ".huge_pages", "only \"None\" is supported");
  return absl::OkStatus();
}

absl::Status ParseDrives(const Json& j, VmConfig& vm) {
  if (!j.is_array()) return Bad("drives", "must be an array");
  int roots = 0;
  for (size_t i = 0; i < j.size(); ++i) {
    const std::string w = absl::StrFormat("drives[%d]", i);
    const Json& d = j[i];
    absl::Status s = CheckObject(d, w,
                                 {"drive_id", "path_on_host", "is_root_device", "is_read_only",
                                  "partuuid", "cache_type", "io_engine", "rate_limiter", "socket"});
    if (!s.ok()) return s;
    DriveConfig dc;
    ASSIGN_OR_RETURN(dc.id, GetString(d, w, "drive_id", true));
    if (dc.id.empty() || dc.id.size() > 64) return Bad(w + ".drive_id", "must be 1 to 64 chars");
    ASSIGN_OR_RETURN(dc.path, GetString(d, w, "path_on_host", true));
    if (dc.path.empty()) return Bad(w + ".path_on_host", "must not be empty");
    bool root;
    ASSIGN_OR_RETURN(root, GetBool(d, w, "is_root_device", true, false));
    ASSIGN_OR_RETURN(dc.read_only, GetBool(d, w, "is_read_only", false, false));
    std::string partuuid, cache, engine;
    ASSIGN_OR_RETURN(partuuid, GetString(d, w, "partuuid", false));
    ASSIGN_OR_RETURN(cache, GetString(d, w, "cache_type", false));
    if (!cache.empty() && cache != "Unsafe" && cache != "Writeback") {
      return Bad(w + ".cache_type", "must be \"Unsafe\" or \"Writeback\"");
    }
    ASSIGN_OR_RETURN(engine, GetString(d, w, "io_engine", false));
    if (engine == "Async") {
      dc.engine = DriveConfig::Engine::kUring;
    } else if (engine == "Sync") {
      dc.engine = DriveConfig::Engine::kSync;
    } else if (!engine.empty()) {
      return Bad(w + ".io_engine", "must be \"Sync\" or \"Async\"");
    }
    if (d.contains("rate_limiter")) return Bad(w + ".rate_limiter", "is not supported yet");
    if (d.contains("socket")) return Bad(w + ".socket", "vhost-user drives are not supported");
    if (root) {
      // Firecracker's behaviour: the root drive becomes /dev/vda and the kernel is told so.
      if (++roots > 1) return Bad(w + ".is_root_device", "only one drive can be the root");
      absl::StrAppend(&vm.boot.cmdline,
                      partuuid.empty() ? " root=/dev/vda" : " root=PARTUUID=", partuuid,
                      dc.read_only ? " ro" : " rw");
      vm.drives.insert(vm.drives.begin(), dc);
    } else {
      vm.drives.push_back(dc);
    }
  }
  return absl::OkStatus();
}

absl::Status ParseNets(const Json& j, VmConfig& vm) {
  if (!j.is_array()) return Bad("network-interfaces", "must be an array");
  for (size_t i = 0; i < j.size(); ++i) {
    const std::string w = absl::StrFormat("network-interfaces[%d]", i);
    const Json& n = j[i];
    absl::Status s = CheckObject(
        n, w, {"iface_id", "host_dev_name", "guest_mac", "rx_rate_limiter", "tx_rate_limiter"});
    if (!s.ok()) return s;
    std::string id, mac;
    ASSIGN_OR_RETURN(id, GetString(n, w, "iface_id", true));
    NetConfig nc;
    nc.mac = DefaultMac(i);
    ASSIGN_OR_RETURN(nc.tap, GetString(n, w, "host_dev_name", true));
    ASSIGN_OR_RETURN(mac, GetString(n, w, "guest_mac", false));
    if (!mac.empty()) {
      auto parsed = ParseMac(mac);
      if (!parsed.ok()) return Bad(w + ".guest_mac", std::string(parsed.status().message()));
      nc.mac = *parsed;
    }
    if (n.contains("rx_rate_limiter") || n.contains("tx_rate_limiter")) {
      return Bad(w + (n.contains("rx_rate_limiter") ? ".rx_rate_limiter" : ".tx_rate_limiter"),
                 "is not supported yet");
    }
    vm.nets.push_back(nc);
  }
  return absl::OkStatus();
}

absl::Status ParseLogger(const Json& j, LoggerConfig& log) {
  const std::string w = "logger";
  absl::Status s =
      CheckObject(j, w, {"log_path", "level", "show_level", "show_log_origin", "module"});
  if (!s.ok()) return s;
  ASSIGN_OR_RETURN(log.log_path, GetString(j, w, "log_path", false));
  std::string level;
  ASSIGN_OR_RETURN(level, GetString(j, w, "level", false));
  // Firecracker's level names (case-insensitive there; we take its documented spellings).
  static const std::pair<const char*, const char*> kLevels[] = {
      {"Error", "error"}, {"Warning", "warn"}, {"Info", "info"},
      {"Debug", "debug"}, {"Trace", "trace"},  {"Off", "off"}};
  if (!level.empty()) {
    bool found = false;
    for (const auto& [fc, ours] : kLevels) {
      if (level == fc) {
        log.level = ours;
        found = true;
      }
    }
    if (!found) return Bad(w + ".level", "must be Error, Warning, Info, Debug, Trace or Off");
  }
  [[maybe_unused]] bool b;  // accepted for compatibility; our log lines always show the level
  ASSIGN_OR_RETURN(b, GetBool(j, w, "show_level", false, true));
  ASSIGN_OR_RETURN(b, GetBool(j, w, "show_log_origin", false, false));
  std::string module;
  ASSIGN_OR_RETURN(module, GetString(j, w, "module", false));
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<FirecrackerConfig> ParseFirecrackerConfig(const std::string& text) {
  Json j = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return absl::InvalidArgumentError("not valid JSON");
  absl::Status s =
      CheckObject(j, "",
                  {"boot-source", "drives", "machine-config", "network-interfaces", "logger",
                   "metrics", "balloon", "vsock", "mmds-config", "entropy", "cpu-config"});
  if (!s.ok()) return s;
  for (const char* unsupported :
       {"metrics", "balloon", "vsock", "mmds-config", "entropy", "cpu-config"}) {
    if (j.contains(unsupported)) return Bad(unsupported, "is not supported yet");
  }
  FirecrackerConfig cfg;
  if (!j.contains("boot-source")) return Bad("boot-source", "missing required section");
  if (s = ParseBootSource(j["boot-source"], cfg.vm); !s.ok()) return s;
  if (j.contains("machine-config")) {
    if (s = ParseMachine(j["machine-config"], cfg.vm); !s.ok()) return s;
  }
  if (j.contains("drives")) {
    if (s = ParseDrives(j["drives"], cfg.vm); !s.ok()) return s;
  }
  if (j.contains("network-interfaces")) {
    if (s = ParseNets(j["network-interfaces"], cfg.vm); !s.ok()) return s;
  }
  if (j.contains("logger")) {
    if (s = ParseLogger(j["logger"], cfg.logger); !s.ok()) return s;
  }
  return cfg;
}

}  // namespace edgevisor
