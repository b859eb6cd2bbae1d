// The one VM model. The CLI fills it today; the config file and the REST API fill the same type.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "src/devices/balloon/balloon_config.h"
#include "src/devices/block/drive_config.h"
#include "src/devices/net/mmds_config.h"
#include "src/devices/net/net_config.h"
#include "src/devices/rng/rng_config.h"
#include "src/devices/vsock/vsock_config.h"
#include "src/vmm/config/boot_protocol.h"

namespace edgevisor::mmds {
class Service;  // src/devices/net/mmds_service.h
}  // namespace edgevisor::mmds

namespace edgevisor {

// aarch64 vCPU features that KVM can give a guest. Each is on where the host's KVM offers it,
// unless turned off (--arm64-off); a restored VM gets exactly the ones its snapshot had.
struct Arm64CpuFeatures {
  bool pmu = true;      // PMUv3 (KVM_ARM_VCPU_PMU_V3), its overflow interrupt on PPI 7
  bool sve = true;      // the Scalable Vector Extension, every vector length the host has
  bool ptrauth = true;  // pointer authentication, address and generic keys
  bool operator==(const Arm64CpuFeatures&) const = default;
};

struct MachineConfig {
  int vcpus = 1;
  int gic = 0;  // aarch64 interrupt controller: 0 (auto: GICv3, else GICv2), 2 or 3
  uint64_t mem_mib = 128;
  // Dirty-page tracking (Firecracker's track_dirty_pages): needed for Diff snapshots.
  bool track_dirty_pages = false;
  Arm64CpuFeatures arm64;  // aarch64 only; what the VM got, once built
};

struct BootSource {
  std::string kernel_path;
  std::string initrd_path;  // empty: none
  std::string cmdline = "console=ttyS0 reboot=k panic=1";
  BootProtocol protocol = BootProtocol::kAuto;
};

struct SerialConfig {
  enum class Mode { kStdio, kFile, kOff };
  Mode mode = Mode::kStdio;
  std::string path;  // kFile only
};

// "52:54:00:12:34:56" -> bytes. Errors say why: not six hex octets, or not unicast.
absl::StatusOr<MacAddress> ParseMac(const std::string& text);
// The MAC a net device gets when none is given: locally administered, 06:ed:9e:00:00:<index>.
MacAddress DefaultMac(size_t index);

struct VmConfig {
  std::string id = "anonymous";
  MachineConfig machine;
  BootSource boot;
  SerialConfig serial;
  bool debug_exit = false;
  // Also name each virtio-mmio device on the kernel command line (virtio_mmio.device=, for
  // kernels with CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES and for our payloads). ACPI always has them.
  // x86_64 only: on aarch64 the device tree lists them and the command line never does.
  bool virtio_mmio_cmdline = true;
  int reboot_exit_code = 0;  // the VMM's exit status when the guest reboots
  std::vector<DriveConfig> drives;
  std::vector<NetConfig> nets;
  std::optional<EntropyConfig> entropy;  // a virtio-rng device
  std::optional<BalloonConfig> balloon;  // a virtio-balloon device
  std::optional<VsockConfig> vsock;      // a virtio-vsock device
  std::optional<MmdsConfig> mmds;        // the metadata service, on the interfaces it names
  // The service's data store, shared with whoever fills it (the API, --metadata); null: the
  // builder makes an empty one.
  std::shared_ptr<mmds::Service> mmds_service;
};

inline constexpr size_t kMaxVirtioDevices = 16;
// Drives, network interfaces, the entropy device, the balloon and vsock: the virtio devices the
// VM will have.
inline size_t VirtioDeviceCount(const VmConfig& c) {
  return c.drives.size() + c.nets.size() + (c.entropy ? 1 : 0) + (c.balloon ? 1 : 0) +
         (c.vsock ? 1 : 0);
}

// Firecracker's rule for VM, drive and interface ids: 1 to 64 characters. The error names
// `field` ("--id: must be 1 to 64 characters").
inline constexpr size_t kMaxIdLength = 64;
absl::Status CheckIdLength(const std::string& id, const std::string& field);

// Limits of the host the VM is checked against.
struct HostLimits {
  uint64_t mem_mib = 0;
  int max_vcpus = 0;
  static HostLimits Detect();  // physical RAM; max_vcpus from sysconf, refined by KVM at build
};

// Checks values alone (no I/O). Messages name the field as the CLI spells it.
absl::Status ValidateVmConfig(const VmConfig& cfg, const HostLimits& host);

}  // namespace edgevisor
