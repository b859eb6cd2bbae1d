#include "src/devices/virtio/device.h"

#include "absl/strings/str_format.h"
#include "src/base/errors.h"
#include "src/devices/virtio/virtio_spec.h"

namespace edgevisor::virtio {

absl::StatusOr<std::vector<std::unique_ptr<Virtqueue>>> MakeQueues(const ActivateArgs& args) {
  const bool event_idx = args.features & Bit(kFeatureRingEventIdx);
  const bool indirect = args.features & Bit(kFeatureRingIndirectDesc);
  std::vector<std::unique_ptr<Virtqueue>> vqs(args.queues.size());
  for (size_t i = 0; i < vqs.size(); ++i) {
    if (!args.queues[i].ready) continue;
    vqs[i] = std::make_unique<Virtqueue>(args.mem, args.queues[i], event_idx, indirect);
    EV_RETURN_IF_ERROR(Annotate(vqs[i]->Validate(), absl::StrFormat("queue %d", i)));
    if (i < args.resume.size()) vqs[i]->Restore(args.resume[i]);
  }
  return vqs;
}

}  // namespace edgevisor::virtio
