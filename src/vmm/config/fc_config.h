// Firecracker's VM description, in the shape its JSON config file and REST API use: a boot
// source, a machine config, drives and network interfaces by id, a logger and metrics. The config
// file (`--config-file F`) and the API (`PUT /drives/{id}`, ...) fill the same VmResources
// through the same section parsers; InstanceStart turns it into the one VmConfig model.
//
// Everything here is user input: every field is checked for type and range, unknown fields are
// errors, and each message names the field ("drives[1].path_on_host: ..." in a file,
// "path_on_host: ..." in an API body). Fuzzed by tests/fuzz/fc_config_fuzz.cc and
// tests/fuzz/api_fuzz.cc.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json_fwd.hpp"
#include "src/vmm/config/vm_config.h"

namespace edgevisor {

using Json = nlohmann::json;

struct FcBootSource {
  std::string kernel_image_path;
  std::optional<std::string> boot_args;
  std::string initrd_path;
};

struct FcDrive {
  std::string drive_id;
  std::string path_on_host;
  bool is_root_device = false;
  bool is_read_only = false;
  std::string partuuid;
  std::string cache_type;  // "Unsafe", "Writeback" or empty (not given)
  std::string io_engine;   // "Sync", "Async" or empty (not given: io_uring when available)
  RateLimiterConfig rate_limiter;
};

// PATCH /drives/{id} after boot: a new backing file for the same drive.
struct FcPartialDrive {
  std::string drive_id;
  std::optional<std::string> path_on_host;
  std::optional<RateLimiterConfig> rate_limiter;
};

struct FcNet {
  std::string iface_id;
  std::string host_dev_name;
  std::string guest_mac;  // empty: DefaultMac(index) at start
  RateLimiterConfig rx_rate_limiter, tx_rate_limiter;
};

// PATCH /network-interfaces/{id} after boot: new rate limiters (either may be absent).
struct FcPartialNet {
  std::string iface_id;
  std::optional<RateLimiterConfig> rx_rate_limiter, tx_rate_limiter;
};

// Firecracker's TokenBucket bounds: the token arithmetic (128-bit) holds for sizes up to 2^62
// tokens and refill times up to 2^32 ms (49 days).
inline constexpr uint64_t kMaxBucketTokens = uint64_t{1} << 62;
inline constexpr uint64_t kMaxRefillTimeMs = (uint64_t{1} << 32) - 1;

struct LoggerConfig {
  std::string level = "info";  // spdlog level name
  std::string log_path;        // empty: stderr
  bool show_level = true;
  bool show_log_origin = false;
};

struct MetricsConfig {
  std::string metrics_path;
  bool emit_id = false;
  std::vector<std::pair<std::string, std::string>> properties;
};

struct VmResources {
  std::optional<FcBootSource> boot_source;
  MachineConfig machine;
  std::vector<FcDrive> drives;  // in the order they were first put
  std::vector<FcNet> nets;
  std::optional<LoggerConfig> logger;
  std::optional<MetricsConfig> metrics;
  std::optional<EntropyConfig> entropy;  // PUT /entropy, or the file's "entropy"
  std::optional<BalloonConfig> balloon;  // PUT /balloon, or the file's "balloon"
  std::optional<VsockConfig> vsock;      // PUT /vsock, or the file's "vsock"
  std::optional<MmdsConfig> mmds;        // PUT /mmds/config, or the file's "mmds-config"

  // Adds or replaces (same id). Errors: a second root drive, too many devices, a TAP or MAC
  // that another interface already has.
  absl::Status PutDrive(FcDrive d);
  absl::Status PutNet(FcNet n);
  const FcDrive* FindDrive(const std::string& id) const;

  // The VM to build: root drive first as /dev/vda, `root=` appended to the boot args.
  absl::StatusOr<VmConfig> ToVmConfig(const std::string& vm_id) const;
  // Firecracker's FullVmConfiguration (GET /vm/config).
  Json ToJson() const;
};

// Section parsers. `where` prefixes the field names in messages; empty in API bodies.
absl::StatusOr<FcBootSource> ParseBootSource(const Json& j, const std::string& where);
// PUT replaces the whole machine config (vcpu_count and mem_size_mib required); PATCH (`base`
// given) changes only the fields present, and needs at least one.
absl::StatusOr<MachineConfig> ParseMachineConfig(const Json& j, const std::string& where,
                                                 const MachineConfig* base);
absl::StatusOr<FcDrive> ParseDrive(const Json& j, const std::string& where);
absl::StatusOr<FcPartialDrive> ParsePartialDrive(const Json& j, const std::string& where);
absl::StatusOr<FcNet> ParseNetworkInterface(const Json& j, const std::string& where);
absl::StatusOr<FcPartialNet> ParsePartialNetworkInterface(const Json& j, const std::string& where);
absl::StatusOr<LoggerConfig> ParseLogger(const Json& j, const std::string& where);
absl::StatusOr<MetricsConfig> ParseMetrics(const Json& j, const std::string& where);
// Firecracker's RateLimiter: {"bandwidth": TokenBucket, "ops": TokenBucket}, both optional; a
// TokenBucket is {"size", "refill_time" (ms), "one_time_burst"}. A size or refill_time of 0
// means that bucket does not limit.
absl::StatusOr<RateLimiterConfig> ParseRateLimiter(const Json& j, const std::string& where);
Json RateLimiterJson(const RateLimiterConfig& r);
absl::StatusOr<EntropyConfig> ParseEntropy(const Json& j, const std::string& where);
// Firecracker's Vsock (PUT /vsock, the file's "vsock"): guest_cid (3 or more) and uds_path
// required, vsock_id (deprecated in Firecracker) optional.
absl::StatusOr<VsockConfig> ParseVsock(const Json& j, const std::string& where);
Json VsockJson(const VsockConfig& v);
// Firecracker's MmdsConfig (PUT /mmds/config, the file's "mmds-config"): network_interfaces
// required; version (V1, V2), ipv4_address (link-local: 169.254.x.y, neither x nor y at an end of
// the range the spec gives) and imds_compat optional. The interfaces must exist: KNOWN lists
// the ids there are (null: not checked here).
absl::StatusOr<MmdsConfig> ParseMmdsConfig(const Json& j, const std::string& where,
                                           const std::vector<std::string>* known);
Json MmdsConfigJson(const MmdsConfig& m);
// Firecracker's Balloon (PUT /balloon, the file's "balloon"): amount_mib and deflate_on_oom
// required; stats_polling_interval_s (0: no statistics) and free_page_reporting optional;
// free_page_hinting is refused when true. BalloonUpdate (PATCH /balloon): amount_mib.
// BalloonStatsUpdate (PATCH /balloon/statistics): stats_polling_interval_s.
absl::StatusOr<BalloonConfig> ParseBalloon(const Json& j, const std::string& where);
absl::StatusOr<uint32_t> ParseBalloonUpdate(const Json& j, const std::string& where);
absl::StatusOr<uint32_t> ParseBalloonStatsUpdate(const Json& j, const std::string& where);
Json BalloonJson(const BalloonConfig& b);
// A balloon can hold at most the guest's memory; FIELD names the value in the error.
absl::Status CheckBalloonFits(uint32_t amount_mib, uint64_t mem_mib, const std::string& field);
// The device counts in 4 KiB pages in a 32-bit field; an interval past a day is a mistake.
inline constexpr uint64_t kMaxBalloonMib = 0xffffffffu / 256;
inline constexpr uint64_t kMaxStatsIntervalS = 86400;

Json MachineConfigJson(const MachineConfig& m);
// Firecracker's level names, case-insensitive ("Warning" -> "warn"); nullopt when unknown.
std::optional<std::string> SpdlogLevelFromFirecracker(const std::string& level);

struct FirecrackerConfig {
  VmResources resources;
  VmConfig vm;  // resources.ToVmConfig("anonymous")
  LoggerConfig logger;
  // One line per pre-1.0 field name the file used (legacy_fields.h), to log as warnings.
  std::vector<std::string> deprecations;
};

absl::StatusOr<FirecrackerConfig> ParseFirecrackerConfig(const std::string& json);

}  // namespace edgevisor
