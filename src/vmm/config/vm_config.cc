#include "src/vmm/config/vm_config.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include "absl/strings/str_format.h"

namespace edgevisor {

absl::StatusOr<MacAddress> ParseMac(const std::string& text) {
  unsigned b[6];
  char extra;
  if (std::sscanf(text.c_str(), "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4],
                  &b[5], &extra) != 6) {
    return absl::InvalidArgumentError("must look like 52:54:00:12:34:56");
  }
  if (b[0] & 1) {
    return absl::InvalidArgumentError("must be unicast (the first octet's low bit is clear)");
  }
  MacAddress mac;
  for (int i = 0; i < 6; ++i) mac[i] = static_cast<uint8_t>(b[i]);
  return mac;
}

absl::Status CheckIdLength(const std::string& id, const std::string& field) {
  if (!id.empty() && id.size() <= kMaxIdLength) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrFormat("%s: must be 1 to %d characters", field, kMaxIdLength));
}

MacAddress DefaultMac(size_t index) {
  return {0x06, 0xed, 0x9e, 0x00, 0x00, static_cast<uint8_t>(index)};
}

HostLimits HostLimits::Detect() {
  HostLimits h;
  const long pages = sysconf(_SC_PHYS_PAGES);  // NOLINT(runtime/int)
  const long page = sysconf(_SC_PAGESIZE);     // NOLINT(runtime/int)
  h.mem_mib = pages > 0 && page > 0 ? (static_cast<uint64_t>(pages) * page) >> 20 : 0;
  h.max_vcpus = 254;  // the xAPIC ID limit; KVM's own limit is checked when the VM is built
  return h;
}

absl::Status ValidateVmConfig(const VmConfig& cfg, const HostLimits& host) {
  if (cfg.boot.kernel_path.empty()) return absl::InvalidArgumentError("--kernel: missing");
  if (cfg.machine.mem_mib == 0) return absl::InvalidArgumentError("--mem: must be at least 1 MiB");
  if (host.mem_mib != 0 && cfg.machine.mem_mib > host.mem_mib) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "--mem: %d MiB is more than the host's %d MiB of RAM", cfg.machine.mem_mib, host.mem_mib));
  }
  if (cfg.machine.vcpus < 1) return absl::InvalidArgumentError("--vcpus: must be at least 1");
  if (cfg.machine.vcpus > host.max_vcpus) {
    return absl::InvalidArgumentError(absl::StrFormat("--vcpus: %d is more than the limit of %d",
                                                      cfg.machine.vcpus, host.max_vcpus));
  }
  if (cfg.serial.mode == SerialConfig::Mode::kFile && cfg.serial.path.empty()) {
    return absl::InvalidArgumentError("--serial: file: needs a path (file:PATH)");
  }
  if (absl::Status s = CheckIdLength(cfg.id, "--id"); !s.ok()) return s;
  if (VirtioDeviceCount(cfg) > kMaxVirtioDevices) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "--drive/--net: at most %d virtio devices in all (the entropy device and the balloon count "
        "too)",
        kMaxVirtioDevices));
  }
  if (cfg.mmds) {
    if (cfg.mmds->network_interfaces.empty()) {
      return absl::InvalidArgumentError("mmds-config.network_interfaces: names no interface");
    }
    for (const std::string& id : cfg.mmds->network_interfaces) {
      if (std::none_of(cfg.nets.begin(), cfg.nets.end(),
                       [&](const NetConfig& n) { return n.id == id; })) {
        return absl::InvalidArgumentError(absl::StrFormat(
            "mmds-config.network_interfaces: '%s' is not a network interface of this VM", id));
      }
    }
  }
  for (size_t i = 0; i < cfg.nets.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (cfg.nets[i].tap == cfg.nets[j].tap) {
        return absl::InvalidArgumentError(
            absl::StrFormat("--net: tap '%s' is used twice", cfg.nets[i].tap));
      }
      if (cfg.nets[i].mac == cfg.nets[j].mac) {
        return absl::InvalidArgumentError("--net: two devices have the same mac");
      }
    }
  }
  for (size_t i = 0; i < cfg.drives.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (cfg.drives[i].id == cfg.drives[j].id) {
        return absl::InvalidArgumentError(
            absl::StrFormat("--drive: id '%s' is used twice", cfg.drives[i].id));
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace edgevisor
