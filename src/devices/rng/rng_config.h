// What the entropy device is asked to be (Firecracker's PUT /entropy). The device owns this
// type; the VMM's config layer (config file, API) fills it in.
#pragma once

#include "src/devices/virtio/rate_limiter_config.h"

namespace edgevisor {

struct EntropyConfig {
  RateLimiterConfig rate_limiter;  // bytes and requests the guest may take; none: unlimited
};

}  // namespace edgevisor
