// What the microVM metadata service is asked to be (Firecracker's PUT /mmds/config). The device
// layer owns this type; the VMM's config layer (config file, API) fills it in.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace edgevisor {

struct MmdsConfig {
  enum class Version { kV1, kV2 };
  Version version = Version::kV1;
  // The network interfaces (iface_id) whose guest traffic to ipv4_address MMDS answers.
  std::vector<std::string> network_interfaces;
  std::array<uint8_t, 4> ipv4_address = {169, 254, 169, 254};
  // EC2 IMDS compatibility: text/plain answers whatever the request's Accept header says.
  bool imds_compat = false;
  bool operator==(const MmdsConfig&) const = default;
};

}  // namespace edgevisor
