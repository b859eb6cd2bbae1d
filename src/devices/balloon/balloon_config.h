// What the balloon device is asked to be (Firecracker's PUT /balloon). The device owns this type;
// the VMM's config layer (config file, API) fills it in.
#pragma once

#include <cstdint>

namespace edgevisor {

struct BalloonConfig {
  uint32_t amount_mib = 0;                // the target: how much guest RAM the balloon holds
  bool deflate_on_oom = false;            // VIRTIO_BALLOON_F_DEFLATE_ON_OOM offered
  uint32_t stats_polling_interval_s = 0;  // 0: no statistics queue
  bool free_page_reporting = false;       // VIRTIO_BALLOON_F_REPORTING offered
};

}  // namespace edgevisor
