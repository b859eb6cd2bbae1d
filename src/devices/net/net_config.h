// What one virtio-net device is asked to be. The device owns this type; the VMM's config layer
// (CLI, config file, API) fills it in.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "src/devices/virtio/rate_limiter_config.h"

namespace edgevisor {

using MacAddress = std::array<uint8_t, 6>;

// One virtio-net device on a TAP (`--net tap=NAME[,mac=M][,queues=N]`).
struct NetConfig {
  std::string id;  // Firecracker's iface_id; empty: net<index>
  std::string tap;
  MacAddress mac{};                   // the parsers fill in DefaultMac(index) when none is given
  uint16_t queues = 1;                // queue pairs; more than one offers MQ and a control queue
  RateLimiterConfig rx_rate_limiter;  // frames and bytes to the guest; none: unlimited
  RateLimiterConfig tx_rate_limiter;  // frames and bytes from the guest
};

}  // namespace edgevisor
