// What one virtio-blk drive is asked to be. The device owns this type; the VMM's config layer
// (CLI, config file, API) fills it in.
#pragma once

#include <cstdint>
#include <string>

#include "src/devices/virtio/rate_limiter_config.h"

namespace edgevisor {

// One virtio-blk drive (`--drive path=F[,id=S][,ro=on][,direct=on][,queues=N][,engine=E]`).
struct DriveConfig {
  std::string path;
  std::string id;  // also the serial that GET_ID returns (first 20 bytes)
  bool read_only = false;
  bool direct = false;  // O_DIRECT
  uint16_t queues = 1;
  enum class Engine { kAuto, kUring, kSync };
  Engine engine = Engine::kAuto;
  RateLimiterConfig rate_limiter;  // requests and bytes; none: unlimited
};

}  // namespace edgevisor
