// The appliance's configuration (appliance.json): its name, the host network, and the VMs that
// the supervisor starts. One schema at two stages:
//   kBuild    the builder's input (image/build --config): a VM is either the bundled demo guest
//             ("demo": {...}) or a Firecracker config file ("config", plus "files" to put on the
//             data partition); "console" and "kernel" choose the boot console and kernel flavour.
//   kRuntime  /config/appliance.json on the appliance, as Render() wrote it: every VM names its
//             Firecracker config file (config partition, "vms/<name>.json").
// Errors name the field: "vms[1].restart: must be one of always, on-failure, never".
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace edgevisor::appliance {

enum class Stage { kBuild, kRuntime };
enum class Restart { kAlways, kOnFailure, kNever };

struct Interface {
  std::string name;
  bool dhcp = false;
  std::string address;  // a.b.c.d/len, when not dhcp
  std::string gateway;  // a.b.c.d or empty
};

// A Linux bridge for the VMs' TAPs, with the host's address on it and an optional uplink.
struct VmBridge {
  std::string name;
  std::string address;  // a.b.c.d/len or empty
  std::string uplink;   // a host interface to enslave, or empty
};

// The bundled demo guest (build stage only).
struct DemoVm {
  int vcpus = 1;
  int mem_mib = 256;
  bool net = false;     // a TAP on the VM bridge; the guest pings the bridge's address
  std::string cmdline;  // appended to the guest's command line
};

struct VmEntry {
  std::string name;
  Restart restart = Restart::kOnFailure;
  std::string config;                        // Firecracker config file (relative path)
  std::optional<DemoVm> demo;                // build stage: instead of config
  std::map<std::string, std::string> files;  // build stage: data-partition name -> source
  // The VM's cgroup (v2) limits, both stages; unset: none. memory.max covers the guest's RAM
  // and the VMM's own memory; cpu.max is a share of one CPU in percent (150: one and a half).
  std::optional<int> memory_max_mib;   // "memory_max_mib": 32 to 1048576
  std::optional<int> cpu_max_percent;  // "cpu_max_percent": 1 to 12800
};

// "update": the A/B update agent (update.h). Every field optional.
struct UpdateConfig {
  std::string url;              // a bundle's http(s) URL to check periodically; empty: none
  int check_interval_s = 3600;  // 30 to 604800
  int trial_boots = 3;          // boots a new release gets to pass its health check: 1 to 3
  int health_timeout_s = 300;   // the health check's limit on a trial boot: 30 to 3600
};

struct ApplianceConfig {
  std::string name;
  std::string console;           // kernel console= for the appliance, empty: the arch's default
  std::string kernel = "cloud";  // Debian kernel: cloud or generic[@RELEASE] (build stage)
  std::vector<Interface> interfaces;
  std::optional<VmBridge> bridge;
  std::vector<VmEntry> vms;
  UpdateConfig update;
  // The hardware watchdog's timeout; the supervisor feeds it (0: leave it alone). 10 to 600.
  int watchdog_s = 60;
};

absl::StatusOr<ApplianceConfig> ParseApplianceConfig(const std::string& json, Stage stage);

const char* RestartName(Restart r);

// Where the appliance keeps things (the root file system and the partitions' mount points).
inline constexpr char kDemoKernel[] = "/usr/share/edgevisor/demo/vmlinuz";
inline constexpr char kDemoInitrd[] = "/usr/share/edgevisor/demo/initramfs.cpio.gz";
inline constexpr char kDataVmDir[] = "/data/vms";

struct RenderOutput {
  nlohmann::json appliance;                                     // the runtime appliance.json
  std::map<std::string, std::string> vm_configs;                // "vms/<name>.json" -> its text
  std::vector<std::pair<std::string, std::string>> data_files;  // source -> "vms/<name>/<file>"
};

// Turns a build-stage config into what goes on the config and data partitions. `base_dir`
// resolves the config's relative paths.
// Every VM's Firecracker config is parsed with edgevisor's own parser, so a bad one fails here.
absl::StatusOr<RenderOutput> Render(const ApplianceConfig& cfg, const std::string& base_dir);

}  // namespace edgevisor::appliance
