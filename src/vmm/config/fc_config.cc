#include "src/vmm/config/fc_config.h"

#include <algorithm>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "nlohmann/json.hpp"
#include "src/base/json_fields.h"
#include "src/devices/vsock/vsock_config.h"
#include "src/vmm/config/legacy_fields.h"

namespace edgevisor {
namespace {

using json_fields::Bad;
using json_fields::CheckObject;
using json_fields::Field;
using json_fields::GetBool;
using json_fields::GetString;
using json_fields::GetUint;

#define ASSIGN_OR_RETURN(lhs, expr)   \
  do {                                \
    auto r_ = (expr);                 \
    if (!r_.ok()) return r_.status(); \
    lhs = *std::move(r_);             \
  } while (0)

#define RETURN_IF_ERROR(expr) \
  do {                        \
    absl::Status s_ = (expr); \
    if (!s_.ok()) return s_;  \
  } while (0)

// Firecracker's limit on drive and interface ids.
absl::Status CheckId(const std::string& id, const std::string& field) {
  RETURN_IF_ERROR(CheckIdLength(id, field));
  for (char c : id) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '_') {
      return Bad(field, "may contain only letters, digits and '_'");
    }
  }
  return absl::OkStatus();
}

}  // namespace

std::optional<std::string> SpdlogLevelFromFirecracker(const std::string& level) {
  static const std::pair<const char*, const char*> kLevels[] = {
      {"error", "error"}, {"warning", "warn"}, {"warn", "warn"}, {"info", "info"},
      {"debug", "debug"}, {"trace", "trace"},  {"off", "off"}};
  const std::string lower = absl::AsciiStrToLower(level);
  for (const auto& [fc, ours] : kLevels) {
    if (lower == fc) return std::string(ours);
  }
  return std::nullopt;
}

absl::StatusOr<FcBootSource> ParseBootSource(const Json& j, const std::string& where) {
  RETURN_IF_ERROR(CheckObject(j, where, {"kernel_image_path", "boot_args", "initrd_path"}));
  FcBootSource b;
  ASSIGN_OR_RETURN(b.kernel_image_path, GetString(j, where, "kernel_image_path", true));
  if (b.kernel_image_path.empty()) return Bad(Field(where, "kernel_image_path"), "is empty");
  if (j.contains("boot_args") && !j["boot_args"].is_null()) {
    ASSIGN_OR_RETURN(b.boot_args, GetString(j, where, "boot_args", false));
    if (b.boot_args->size() > 4096) return Bad(Field(where, "boot_args"), "longer than 4096");
  }
  ASSIGN_OR_RETURN(b.initrd_path, GetString(j, where, "initrd_path", false));
  return b;
}

absl::StatusOr<MachineConfig> ParseMachineConfig(const Json& j, const std::string& where,
                                                 const MachineConfig* base) {
  RETURN_IF_ERROR(CheckObject(
      j, where,
      {"vcpu_count", "mem_size_mib", "smt", "track_dirty_pages", "cpu_template", "huge_pages"}));
  if (base != nullptr && j.empty()) return Bad(where, "empty PATCH request");
  MachineConfig m = base ? *base : MachineConfig{};
  uint64_t v;
  if (base == nullptr || j.contains("vcpu_count")) {
    ASSIGN_OR_RETURN(v, GetUint(j, where, "vcpu_count", 1, 32));
    m.vcpus = static_cast<int>(v);
  }
  if (base == nullptr || j.contains("mem_size_mib")) {
    ASSIGN_OR_RETURN(m.mem_mib, GetUint(j, where, "mem_size_mib", 1, uint64_t{1} << 32));
  }
  bool b;
  ASSIGN_OR_RETURN(b, GetBool(j, where, "smt", false, false));
  if (b) return Bad(Field(where, "smt"), "true is not supported");
  if (base == nullptr || j.contains("track_dirty_pages")) {
    // KVM's dirty log plus the devices' writes, for Diff snapshots (docs/snapshots.md).
    ASSIGN_OR_RETURN(m.track_dirty_pages, GetBool(j, where, "track_dirty_pages", false, false));
  }
  std::string t;
  ASSIGN_OR_RETURN(t, GetString(j, where, "cpu_template", false));
  if (!t.empty() && t != "None") {
    return Bad(Field(where, "cpu_template"), "only \"None\" is supported");
  }
  ASSIGN_OR_RETURN(t, GetString(j, where, "huge_pages", false));
  if (!t.empty() && t != "None")
    return Bad(Field(where, "huge_pages"), "only \"None\" is supported");
  return m;
}

absl::StatusOr<FcDrive> ParseDrive(const Json& d, const std::string& w) {
  RETURN_IF_ERROR(CheckObject(d, w,
                              {"drive_id", "path_on_host", "is_root_device", "is_read_only",
                               "partuuid", "cache_type", "io_engine", "rate_limiter", "socket"}));
  FcDrive dc;
  ASSIGN_OR_RETURN(dc.drive_id, GetString(d, w, "drive_id", true));
  RETURN_IF_ERROR(CheckId(dc.drive_id, Field(w, "drive_id")));
  if (d.contains("socket")) return Bad(Field(w, "socket"), "vhost-user drives are not supported");
  ASSIGN_OR_RETURN(dc.path_on_host, GetString(d, w, "path_on_host", true));
  if (dc.path_on_host.empty()) return Bad(Field(w, "path_on_host"), "must not be empty");
  ASSIGN_OR_RETURN(dc.is_root_device, GetBool(d, w, "is_root_device", true, false));
  ASSIGN_OR_RETURN(dc.is_read_only, GetBool(d, w, "is_read_only", false, false));
  ASSIGN_OR_RETURN(dc.partuuid, GetString(d, w, "partuuid", false));
  ASSIGN_OR_RETURN(dc.cache_type, GetString(d, w, "cache_type", false));
  if (!dc.cache_type.empty() && dc.cache_type != "Unsafe" && dc.cache_type != "Writeback") {
    return Bad(Field(w, "cache_type"), "must be \"Unsafe\" or \"Writeback\"");
  }
  ASSIGN_OR_RETURN(dc.io_engine, GetString(d, w, "io_engine", false));
  if (!dc.io_engine.empty() && dc.io_engine != "Sync" && dc.io_engine != "Async") {
    return Bad(Field(w, "io_engine"), "must be \"Sync\" or \"Async\"");
  }
  if (d.contains("rate_limiter")) {
    ASSIGN_OR_RETURN(dc.rate_limiter,
                     ParseRateLimiter(d["rate_limiter"], Field(w, "rate_limiter")));
  }
  return dc;
}

absl::StatusOr<FcPartialDrive> ParsePartialDrive(const Json& d, const std::string& w) {
  RETURN_IF_ERROR(CheckObject(d, w, {"drive_id", "path_on_host", "rate_limiter"}));
  FcPartialDrive p;
  ASSIGN_OR_RETURN(p.drive_id, GetString(d, w, "drive_id", true));
  RETURN_IF_ERROR(CheckId(p.drive_id, Field(w, "drive_id")));
  if (d.contains("rate_limiter")) {
    ASSIGN_OR_RETURN(p.rate_limiter, ParseRateLimiter(d["rate_limiter"], Field(w, "rate_limiter")));
  }
  if (d.contains("path_on_host")) {
    ASSIGN_OR_RETURN(p.path_on_host, GetString(d, w, "path_on_host", true));
    if (p.path_on_host->empty()) return Bad(Field(w, "path_on_host"), "must not be empty");
  }
  return p;
}

absl::StatusOr<FcNet> ParseNetworkInterface(const Json& n, const std::string& w) {
  RETURN_IF_ERROR(CheckObject(
      n, w,
      {"iface_id", "host_dev_name", "guest_mac", "mtu", "rx_rate_limiter", "tx_rate_limiter"}));
  FcNet nc;
  ASSIGN_OR_RETURN(nc.iface_id, GetString(n, w, "iface_id", true));
  RETURN_IF_ERROR(CheckId(nc.iface_id, Field(w, "iface_id")));
  ASSIGN_OR_RETURN(nc.host_dev_name, GetString(n, w, "host_dev_name", true));
  if (nc.host_dev_name.empty() || nc.host_dev_name.size() >= 16) {
    return Bad(Field(w, "host_dev_name"), "must be 1 to 15 characters (IFNAMSIZ)");
  }
  ASSIGN_OR_RETURN(nc.guest_mac, GetString(n, w, "guest_mac", false));
  if (!nc.guest_mac.empty()) {
    auto parsed = ParseMac(nc.guest_mac);
    if (!parsed.ok()) return Bad(Field(w, "guest_mac"), std::string(parsed.status().message()));
  }
  if (n.contains("mtu")) return Bad(Field(w, "mtu"), "is not supported yet");
  if (n.contains("rx_rate_limiter")) {
    ASSIGN_OR_RETURN(nc.rx_rate_limiter,
                     ParseRateLimiter(n["rx_rate_limiter"], Field(w, "rx_rate_limiter")));
  }
  if (n.contains("tx_rate_limiter")) {
    ASSIGN_OR_RETURN(nc.tx_rate_limiter,
                     ParseRateLimiter(n["tx_rate_limiter"], Field(w, "tx_rate_limiter")));
  }
  return nc;
}

absl::StatusOr<FcPartialNet> ParsePartialNetworkInterface(const Json& n, const std::string& w) {
  RETURN_IF_ERROR(CheckObject(n, w, {"iface_id", "rx_rate_limiter", "tx_rate_limiter"}));
  FcPartialNet p;
  ASSIGN_OR_RETURN(p.iface_id, GetString(n, w, "iface_id", true));
  if (n.contains("rx_rate_limiter")) {
    ASSIGN_OR_RETURN(p.rx_rate_limiter,
                     ParseRateLimiter(n["rx_rate_limiter"], Field(w, "rx_rate_limiter")));
  }
  if (n.contains("tx_rate_limiter")) {
    ASSIGN_OR_RETURN(p.tx_rate_limiter,
                     ParseRateLimiter(n["tx_rate_limiter"], Field(w, "tx_rate_limiter")));
  }
  return p;
}

namespace {

absl::StatusOr<BucketConfig> ParseBucket(const Json& j, const std::string& w) {
  RETURN_IF_ERROR(CheckObject(j, w, {"size", "one_time_burst", "refill_time"}));
  BucketConfig b;
  ASSIGN_OR_RETURN(b.size, GetUint(j, w, "size", 0, kMaxBucketTokens));
  ASSIGN_OR_RETURN(b.refill_time_ms, GetUint(j, w, "refill_time", 0, kMaxRefillTimeMs));
  if (j.contains("one_time_burst")) {
    ASSIGN_OR_RETURN(b.one_time_burst, GetUint(j, w, "one_time_burst", 0, kMaxBucketTokens));
  }
  return b;
}

Json BucketJson(const BucketConfig& b) {
  return {
      {"size", b.size}, {"one_time_burst", b.one_time_burst}, {"refill_time", b.refill_time_ms}};
}

}  // namespace

absl::StatusOr<RateLimiterConfig> ParseRateLimiter(const Json& j, const std::string& w) {
  RETURN_IF_ERROR(CheckObject(j, w, {"bandwidth", "ops"}));
  RateLimiterConfig r;
  if (j.contains("bandwidth"))
    ASSIGN_OR_RETURN(r.bandwidth, ParseBucket(j["bandwidth"], Field(w, "bandwidth")));
  if (j.contains("ops")) ASSIGN_OR_RETURN(r.ops, ParseBucket(j["ops"], Field(w, "ops")));
  return r;
}

Json RateLimiterJson(const RateLimiterConfig& r) {
  Json out = Json::object();
  if (r.bandwidth.limits()) out["bandwidth"] = BucketJson(r.bandwidth);
  if (r.ops.limits()) out["ops"] = BucketJson(r.ops);
  return out;
}

absl::StatusOr<EntropyConfig> ParseEntropy(const Json& j, const std::string& w) {
  RETURN_IF_ERROR(CheckObject(j, w, {"rate_limiter"}));
  EntropyConfig e;
  if (j.contains("rate_limiter")) {
    ASSIGN_OR_RETURN(e.rate_limiter, ParseRateLimiter(j["rate_limiter"], Field(w, "rate_limiter")));
  }
  return e;
}

absl::StatusOr<VsockConfig> ParseVsock(const Json& j, const std::string& w) {
  RETURN_IF_ERROR(CheckObject(j, w, {"vsock_id", "guest_cid", "uds_path"}));
  VsockConfig v;
  ASSIGN_OR_RETURN(v.guest_cid,
                   GetUint(j, w, "guest_cid", vsock::kMinGuestCid, vsock::kMaxGuestCid));
  ASSIGN_OR_RETURN(v.uds_path, GetString(j, w, "uds_path", true));
  if (v.uds_path.empty()) return Bad(Field(w, "uds_path"), "must not be empty");
  // Guest connections go to "<uds_path>_<port>": room for the longest port too.
  if (v.uds_path.size() + 11 >= 108) {
    return Bad(Field(w, "uds_path"), "is too long for a Unix socket (with \"_<port>\" added)");
  }
  ASSIGN_OR_RETURN(v.vsock_id, GetString(j, w, "vsock_id", false));
  return v;
}

Json VsockJson(const VsockConfig& v) {
  Json out{{"guest_cid", v.guest_cid}, {"uds_path", v.uds_path}};
  if (!v.vsock_id.empty()) out["vsock_id"] = v.vsock_id;
  return out;
}

absl::StatusOr<MmdsConfig> ParseMmdsConfig(const Json& j, const std::string& w,
                                           const std::vector<std::string>* known) {
  RETURN_IF_ERROR(
      CheckObject(j, w, {"version", "network_interfaces", "ipv4_address", "imds_compat"}));
  MmdsConfig m;
  std::string version;
  ASSIGN_OR_RETURN(version, GetString(j, w, "version", false));
  if (version == "V2") {
    m.version = MmdsConfig::Version::kV2;
  } else if (!version.empty() && version != "V1") {
    return Bad(Field(w, "version"), "must be V1 or V2");
  }
  const std::string ifs = Field(w, "network_interfaces");
  if (!j.contains("network_interfaces")) return Bad(ifs, "missing required field");
  if (!j["network_interfaces"].is_array() || j["network_interfaces"].empty()) {
    return Bad(ifs, "must be a non-empty array of interface ids");
  }
  for (const Json& id : j["network_interfaces"]) {
    if (!id.is_string()) return Bad(ifs, "must be a non-empty array of interface ids");
    const std::string s = id.get<std::string>();
    if (known && std::find(known->begin(), known->end(), s) == known->end()) {
      return Bad(ifs, absl::StrFormat("'%s' is not a network interface (PUT it first)", s));
    }
    m.network_interfaces.push_back(s);
  }
  std::string ip;
  ASSIGN_OR_RETURN(ip, GetString(j, w, "ipv4_address", false));
  if (!ip.empty()) {
    std::vector<std::string> parts = absl::StrSplit(ip, '.');
    int v[4];
    bool ok = parts.size() == 4;
    for (size_t i = 0; ok && i < 4; ++i) {
      ok = !parts[i].empty() && parts[i].size() <= 3 &&
           parts[i].find_first_not_of("0123456789") == std::string::npos &&
           absl::SimpleAtoi(parts[i], &v[i]) && v[i] <= 255;
    }
    // The spec's pattern: 169.254.1-254.0-255.
    if (!ok || v[0] != 169 || v[1] != 254 || v[2] < 1 || v[2] > 254) {
      return Bad(Field(w, "ipv4_address"), "must be a link-local address 169.254.1-254.0-255");
    }
    for (int i = 0; i < 4; ++i) m.ipv4_address[i] = static_cast<uint8_t>(v[i]);
  }
  ASSIGN_OR_RETURN(m.imds_compat, GetBool(j, w, "imds_compat", false, false));
  return m;
}

Json MmdsConfigJson(const MmdsConfig& m) {
  return Json{{"version", m.version == MmdsConfig::Version::kV2 ? "V2" : "V1"},
              {"network_interfaces", m.network_interfaces},
              {"ipv4_address", absl::StrFormat("%d.%d.%d.%d", m.ipv4_address[0], m.ipv4_address[1],
                                               m.ipv4_address[2], m.ipv4_address[3])},
              {"imds_compat", m.imds_compat}};
}

absl::StatusOr<BalloonConfig> ParseBalloon(const Json& j, const std::string& w) {
  RETURN_IF_ERROR(CheckObject(j, w,
                              {"amount_mib", "deflate_on_oom", "stats_polling_interval_s",
                               "free_page_hinting", "free_page_reporting"}));
  BalloonConfig b;
  uint64_t v;
  ASSIGN_OR_RETURN(v, GetUint(j, w, "amount_mib", 0, kMaxBalloonMib));
  b.amount_mib = static_cast<uint32_t>(v);
  ASSIGN_OR_RETURN(b.deflate_on_oom, GetBool(j, w, "deflate_on_oom", true, false));
  if (j.contains("stats_polling_interval_s")) {
    ASSIGN_OR_RETURN(v, GetUint(j, w, "stats_polling_interval_s", 0, kMaxStatsIntervalS));
    b.stats_polling_interval_s = static_cast<uint32_t>(v);
  }
  bool hinting = false;
  ASSIGN_OR_RETURN(hinting, GetBool(j, w, "free_page_hinting", false, false));
  if (hinting) {
    return Bad(Field(w, "free_page_hinting"),
               "is not supported by edgevisor (free_page_reporting is)");
  }
  ASSIGN_OR_RETURN(b.free_page_reporting, GetBool(j, w, "free_page_reporting", false, false));
  return b;
}

absl::StatusOr<uint32_t> ParseBalloonUpdate(const Json& j, const std::string& w) {
  RETURN_IF_ERROR(CheckObject(j, w, {"amount_mib"}));
  uint64_t v;
  ASSIGN_OR_RETURN(v, GetUint(j, w, "amount_mib", 0, kMaxBalloonMib));
  return static_cast<uint32_t>(v);
}

absl::StatusOr<uint32_t> ParseBalloonStatsUpdate(const Json& j, const std::string& w) {
  RETURN_IF_ERROR(CheckObject(j, w, {"stats_polling_interval_s"}));
  uint64_t v;
  ASSIGN_OR_RETURN(v, GetUint(j, w, "stats_polling_interval_s", 0, kMaxStatsIntervalS));
  return static_cast<uint32_t>(v);
}

Json BalloonJson(const BalloonConfig& b) {
  return {{"amount_mib", b.amount_mib},
          {"deflate_on_oom", b.deflate_on_oom},
          {"stats_polling_interval_s", b.stats_polling_interval_s},
          {"free_page_hinting", false},
          {"free_page_reporting", b.free_page_reporting}};
}

absl::Status CheckBalloonFits(uint32_t amount_mib, uint64_t mem_mib, const std::string& field) {
  if (amount_mib <= mem_mib) return absl::OkStatus();
  return Bad(field, absl::StrFormat("%d MiB is more than the guest's %d MiB of memory", amount_mib,
                                    mem_mib));
}

absl::StatusOr<LoggerConfig> ParseLogger(const Json& j, const std::string& w) {
  RETURN_IF_ERROR(
      CheckObject(j, w, {"log_path", "level", "show_level", "show_log_origin", "module"}));
  LoggerConfig log;
  ASSIGN_OR_RETURN(log.log_path, GetString(j, w, "log_path", false));
  std::string level;
  ASSIGN_OR_RETURN(level, GetString(j, w, "level", false));
  if (!level.empty()) {
    auto ours = SpdlogLevelFromFirecracker(level);
    if (!ours) return Bad(Field(w, "level"), "must be Error, Warning, Info, Debug, Trace or Off");
    log.level = *ours;
  }
  ASSIGN_OR_RETURN(log.show_level, GetBool(j, w, "show_level", false, true));
  ASSIGN_OR_RETURN(log.show_log_origin, GetBool(j, w, "show_log_origin", false, false));
  if (log.show_log_origin) return Bad(Field(w, "show_log_origin"), "true is not supported");
  std::string module;
  ASSIGN_OR_RETURN(module, GetString(j, w, "module", false));
  if (!module.empty()) return Bad(Field(w, "module"), "module filters are not supported");
  return log;
}

absl::StatusOr<MetricsConfig> ParseMetrics(const Json& j, const std::string& w) {
  RETURN_IF_ERROR(CheckObject(j, w, {"metrics_path", "emit_id", "properties"}));
  MetricsConfig m;
  ASSIGN_OR_RETURN(m.metrics_path, GetString(j, w, "metrics_path", true));
  if (m.metrics_path.empty()) return Bad(Field(w, "metrics_path"), "must not be empty");
  ASSIGN_OR_RETURN(m.emit_id, GetBool(j, w, "emit_id", false, false));
  if (j.contains("properties")) {
    const Json& p = j["properties"];
    if (!p.is_object()) return Bad(Field(w, "properties"), "must be a JSON object");
    for (const auto& [k, v] : p.items()) {
      if (!v.is_string()) return Bad(Field(w, "properties." + k), "must be a string");
      m.properties.emplace_back(k, v.get<std::string>());
    }
  }
  return m;
}

Json MachineConfigJson(const MachineConfig& m) {
  return Json{{"vcpu_count", m.vcpus},
              {"mem_size_mib", m.mem_mib},
              {"smt", false},
              {"track_dirty_pages", m.track_dirty_pages},
              {"huge_pages", "None"}};
}

absl::Status VmResources::PutDrive(FcDrive d) {
  size_t at = drives.size();
  for (size_t i = 0; i < drives.size(); ++i) {
    if (drives[i].drive_id == d.drive_id) {
      at = i;
    } else if (d.is_root_device && drives[i].is_root_device) {
      return Bad("is_root_device",
                 absl::StrFormat("drive '%s' is already the root device", drives[i].drive_id));
    }
  }
  if (at == drives.size()) {
    if (drives.size() + nets.size() >= kMaxVirtioDevices) {
      return Bad("drive_id", absl::StrFormat("at most %d virtio devices", kMaxVirtioDevices));
    }
    drives.push_back(std::move(d));
  } else {
    drives[at] = std::move(d);
  }
  return absl::OkStatus();
}

const FcDrive* VmResources::FindDrive(const std::string& id) const {
  for (const FcDrive& d : drives) {
    if (d.drive_id == id) return &d;
  }
  return nullptr;
}

absl::Status VmResources::PutNet(FcNet n) {
  size_t at = nets.size();
  for (size_t i = 0; i < nets.size(); ++i) {
    if (nets[i].iface_id == n.iface_id) {
      at = i;
      continue;
    }
    if (nets[i].host_dev_name == n.host_dev_name) {
      return Bad("host_dev_name", absl::StrFormat("'%s' is already used by interface '%s'",
                                                  n.host_dev_name, nets[i].iface_id));
    }
    if (!n.guest_mac.empty() && !nets[i].guest_mac.empty() &&
        *ParseMac(nets[i].guest_mac) == *ParseMac(n.guest_mac)) {
      return Bad("guest_mac", absl::StrFormat("'%s' is already used by interface '%s'", n.guest_mac,
                                              nets[i].iface_id));
    }
  }
  if (at == nets.size()) {
    if (drives.size() + nets.size() >= kMaxVirtioDevices) {
      return Bad("iface_id", absl::StrFormat("at most %d virtio devices", kMaxVirtioDevices));
    }
    nets.push_back(std::move(n));
  } else {
    nets[at] = std::move(n);
  }
  return absl::OkStatus();
}

absl::StatusOr<VmConfig> VmResources::ToVmConfig(const std::string& vm_id) const {
  if (!boot_source) {
    return absl::InvalidArgumentError(
        "boot-source: cannot start a microVM without a kernel (PUT /boot-source first)");
  }
  VmConfig vm;
  vm.id = vm_id;
  vm.machine = machine;
  vm.boot.kernel_path = boot_source->kernel_image_path;
  vm.boot.initrd_path = boot_source->initrd_path;
  if (boot_source->boot_args) vm.boot.cmdline = *boot_source->boot_args;
  for (const FcDrive& d : drives) {
    DriveConfig dc;
    dc.id = d.drive_id;
    dc.path = d.path_on_host;
    dc.read_only = d.is_read_only;
    if (d.io_engine == "Async") dc.engine = DriveConfig::Engine::kUring;
    if (d.io_engine == "Sync") dc.engine = DriveConfig::Engine::kSync;
    dc.rate_limiter = d.rate_limiter;
    if (d.is_root_device) {
      // Firecracker's behaviour: the root drive becomes /dev/vda and the kernel is told so.
      absl::StrAppend(&vm.boot.cmdline,
                      d.partuuid.empty() ? " root=/dev/vda" : " root=PARTUUID=", d.partuuid,
                      d.is_read_only ? " ro" : " rw");
      vm.drives.insert(vm.drives.begin(), dc);
    } else {
      vm.drives.push_back(dc);
    }
  }
  for (size_t i = 0; i < nets.size(); ++i) {
    NetConfig nc;
    nc.id = nets[i].iface_id;
    nc.tap = nets[i].host_dev_name;
    nc.mac = nets[i].guest_mac.empty() ? DefaultMac(i) : *ParseMac(nets[i].guest_mac);
    nc.rx_rate_limiter = nets[i].rx_rate_limiter;
    nc.tx_rate_limiter = nets[i].tx_rate_limiter;
    vm.nets.push_back(nc);
  }
  vm.entropy = entropy;
  if (balloon) {
    RETURN_IF_ERROR(CheckBalloonFits(balloon->amount_mib, machine.mem_mib, "balloon.amount_mib"));
  }
  vm.balloon = balloon;
  vm.vsock = vsock;
  vm.mmds = mmds;
  return vm;
}

Json VmResources::ToJson() const {
  Json out = Json::object();
  if (boot_source) {
    Json b{{"kernel_image_path", boot_source->kernel_image_path}};
    if (boot_source->boot_args) b["boot_args"] = *boot_source->boot_args;
    if (!boot_source->initrd_path.empty()) b["initrd_path"] = boot_source->initrd_path;
    out["boot-source"] = b;
  }
  out["machine-config"] = MachineConfigJson(machine);
  Json ds = Json::array();
  for (const FcDrive& d : drives) {
    Json dj{{"drive_id", d.drive_id},
            {"path_on_host", d.path_on_host},
            {"is_root_device", d.is_root_device},
            {"is_read_only", d.is_read_only},
            {"cache_type", d.cache_type.empty() ? "Unsafe" : d.cache_type},
            {"io_engine", d.io_engine.empty() ? "Async" : d.io_engine}};
    if (!d.partuuid.empty()) dj["partuuid"] = d.partuuid;
    if (d.rate_limiter.limits()) dj["rate_limiter"] = RateLimiterJson(d.rate_limiter);
    ds.push_back(dj);
  }
  out["drives"] = ds;
  Json ns = Json::array();
  for (const FcNet& n : nets) {
    Json nj{{"iface_id", n.iface_id}, {"host_dev_name", n.host_dev_name}};
    if (!n.guest_mac.empty()) nj["guest_mac"] = n.guest_mac;
    if (n.rx_rate_limiter.limits()) nj["rx_rate_limiter"] = RateLimiterJson(n.rx_rate_limiter);
    if (n.tx_rate_limiter.limits()) nj["tx_rate_limiter"] = RateLimiterJson(n.tx_rate_limiter);
    ns.push_back(nj);
  }
  out["network-interfaces"] = ns;
  if (entropy) out["entropy"] = Json{{"rate_limiter", RateLimiterJson(entropy->rate_limiter)}};
  if (balloon) out["balloon"] = BalloonJson(*balloon);
  if (vsock) out["vsock"] = VsockJson(*vsock);
  if (mmds) out["mmds-config"] = MmdsConfigJson(*mmds);
  if (logger) {
    static const std::pair<const char*, const char*> kNames[] = {
        {"error", "Error"}, {"warn", "Warning"}, {"info", "Info"},
        {"debug", "Debug"}, {"trace", "Trace"},  {"off", "Off"}};
    Json lj{{"show_level", logger->show_level}, {"show_log_origin", logger->show_log_origin}};
    for (const auto& [ours, fc] : kNames) {
      if (logger->level == ours) lj["level"] = fc;
    }
    if (!logger->log_path.empty()) lj["log_path"] = logger->log_path;
    out["logger"] = lj;
  }
  if (metrics) {
    Json mj{{"metrics_path", metrics->metrics_path}, {"emit_id", metrics->emit_id}};
    if (!metrics->properties.empty()) {
      Json p = Json::object();
      for (const auto& [k, v] : metrics->properties) p[k] = v;
      mj["properties"] = p;
    }
    out["metrics"] = mj;
  }
  return out;
}

absl::StatusOr<FirecrackerConfig> ParseFirecrackerConfig(const std::string& text) {
  Json j = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return absl::InvalidArgumentError("not valid JSON");
  RETURN_IF_ERROR(
      CheckObject(j, "",
                  {"boot-source", "drives", "machine-config", "network-interfaces", "logger",
                   "metrics", "balloon", "vsock", "mmds-config", "entropy", "cpu-config"}));
  for (const char* unsupported : {"cpu-config"}) {
    if (j.contains(unsupported)) return Bad(unsupported, "is not supported yet");
  }
  FirecrackerConfig cfg;
  VmResources& r = cfg.resources;
  if (!j.contains("boot-source")) return Bad("boot-source", "missing required section");
  ASSIGN_OR_RETURN(r.boot_source, ParseBootSource(j["boot-source"], "boot-source"));
  std::vector<std::string>& notes = cfg.deprecations;
  if (j.contains("machine-config")) {
    Json mc;
    ASSIGN_OR_RETURN(mc,
                     TranslateLegacyMachineConfig(j["machine-config"], "machine-config", notes));
    ASSIGN_OR_RETURN(r.machine, ParseMachineConfig(mc, "machine-config", nullptr));
  }
  if (j.contains("drives")) {
    if (!j["drives"].is_array()) return Bad("drives", "must be an array");
    for (size_t i = 0; i < j["drives"].size(); ++i) {
      const std::string w = absl::StrFormat("drives[%d]", i);
      FcDrive d;
      ASSIGN_OR_RETURN(d, ParseDrive(j["drives"][i], w));
      if (r.FindDrive(d.drive_id)) return Bad(w + ".drive_id", "is used twice");
      absl::Status s = r.PutDrive(std::move(d));
      if (!s.ok()) return absl::InvalidArgumentError(absl::StrCat(w, ".", s.message()));
    }
  }
  if (j.contains("network-interfaces")) {
    const Json& ns = j["network-interfaces"];
    if (!ns.is_array()) return Bad("network-interfaces", "must be an array");
    for (size_t i = 0; i < ns.size(); ++i) {
      const std::string w = absl::StrFormat("network-interfaces[%d]", i);
      Json nj;
      ASSIGN_OR_RETURN(nj, TranslateLegacyNetworkInterface(ns[i], w, notes));
      FcNet n;
      ASSIGN_OR_RETURN(n, ParseNetworkInterface(nj, w));
      const size_t before = r.nets.size();
      absl::Status s = r.PutNet(std::move(n));
      if (!s.ok()) return absl::InvalidArgumentError(absl::StrCat(w, ".", s.message()));
      if (r.nets.size() == before) return Bad(w + ".iface_id", "is used twice");
    }
  }
  if (j.contains("logger")) {
    TranslatedLogger tl;
    ASSIGN_OR_RETURN(tl, TranslateLegacyLogger(j["logger"], "logger", notes));
    ASSIGN_OR_RETURN(r.logger, ParseLogger(tl.logger, "logger"));
    cfg.logger = *r.logger;
    if (tl.metrics && j.contains("metrics")) {
      return Bad("logger.metrics_fifo", "and metrics.metrics_path both name the metrics file");
    }
    if (tl.metrics) ASSIGN_OR_RETURN(r.metrics, ParseMetrics(*tl.metrics, "metrics"));
  }
  if (j.contains("metrics")) ASSIGN_OR_RETURN(r.metrics, ParseMetrics(j["metrics"], "metrics"));
  if (j.contains("entropy")) ASSIGN_OR_RETURN(r.entropy, ParseEntropy(j["entropy"], "entropy"));
  if (j.contains("balloon")) ASSIGN_OR_RETURN(r.balloon, ParseBalloon(j["balloon"], "balloon"));
  if (j.contains("vsock")) ASSIGN_OR_RETURN(r.vsock, ParseVsock(j["vsock"], "vsock"));
  if (j.contains("mmds-config")) {
    std::vector<std::string> ids;
    for (const FcNet& n : r.nets) ids.push_back(n.iface_id);
    ASSIGN_OR_RETURN(r.mmds, ParseMmdsConfig(j["mmds-config"], "mmds-config", &ids));
  }
  ASSIGN_OR_RETURN(cfg.vm, r.ToVmConfig("anonymous"));
  return cfg;
}

}  // namespace edgevisor
