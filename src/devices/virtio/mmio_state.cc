// The virtio-mmio transport's part of a snapshot: its registers, each queue's configuration and
// position, and the interrupt state. A loaded state is hostile input: every field is checked
// before any of it is used, and the queues again when the device activates (MakeQueues).
#include "absl/strings/str_format.h"
#include "src/base/errors.h"
#include "src/base/event_fd.h"
#include "src/base/json_fields.h"
#include "src/devices/virtio/mmio_transport.h"
#include "src/devices/virtio/virtio_spec.h"

namespace edgevisor::virtio {
namespace {

using json_fields::Bad;
using json_fields::CheckObject;
using json_fields::Field;
using json_fields::GetBool;
using json_fields::GetUint;

constexpr uint64_t kU16 = 0xffff;
constexpr uint64_t kU32 = 0xffffffff;
constexpr uint64_t kU64 = ~uint64_t{0};

Json QueueJson(const QueueConfig& q, const QueueState& pos) {
  return {{"size", q.size},
          {"ready", q.ready},
          {"desc", q.desc},
          {"avail", q.avail},
          {"used", q.used},
          {"next_avail", pos.next_avail},
          {"next_used", pos.next_used},
          {"signalled_used", pos.signalled_used},
          {"notify_suppressed", pos.notify_suppressed}};
}

absl::Status ParseQueue(const Json& j, const std::string& where, QueueConfig& q, QueueState& pos) {
  EV_RETURN_IF_ERROR(CheckObject(j, where,
                                 {"size", "ready", "desc", "avail", "used", "next_avail",
                                  "next_used", "signalled_used", "notify_suppressed"}));
  EV_ASSIGN_OR_RETURN(uint64_t size, GetUint(j, where, "size", 0, q.max_size));
  EV_ASSIGN_OR_RETURN(q.ready, GetBool(j, where, "ready", true, false));
  EV_ASSIGN_OR_RETURN(q.desc, GetUint(j, where, "desc", 0, kU64));
  EV_ASSIGN_OR_RETURN(q.avail, GetUint(j, where, "avail", 0, kU64));
  EV_ASSIGN_OR_RETURN(q.used, GetUint(j, where, "used", 0, kU64));
  EV_ASSIGN_OR_RETURN(uint64_t next_avail, GetUint(j, where, "next_avail", 0, kU16));
  EV_ASSIGN_OR_RETURN(uint64_t next_used, GetUint(j, where, "next_used", 0, kU16));
  EV_ASSIGN_OR_RETURN(uint64_t signalled, GetUint(j, where, "signalled_used", 0, kU16));
  EV_ASSIGN_OR_RETURN(pos.notify_suppressed, GetBool(j, where, "notify_suppressed", true, false));
  q.size = static_cast<uint16_t>(size);
  pos.next_avail = static_cast<uint16_t>(next_avail);
  pos.next_used = static_cast<uint16_t>(next_used);
  pos.signalled_used = static_cast<uint16_t>(signalled);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Json> MmioTransport::SaveState() {
  absl::MutexLock lock(&mu_);
  if (active_ && !quiesced_) {
    EV_ASSIGN_OR_RETURN(std::vector<QueueState> pos, dev_->Quiesce());
    pos.resize(queues_.size());
    quiesced_ = std::move(pos);
  }
  Json queues = Json::array();
  for (size_t i = 0; i < queues_.size(); ++i) {
    queues.push_back(QueueJson(queues_[i], quiesced_ ? (*quiesced_)[i] : QueueState{}));
  }
  return Json{{"device_id", dev_->device_id()},
              {"status", status_},
              {"driver_features", driver_features_},
              {"device_features_sel", device_features_sel_},
              {"driver_features_sel", driver_features_sel_},
              {"queue_sel", queue_sel_},
              {"active", active_},
              {"interrupt_status", interrupt_status_.load()},
              {"needs_reset", needs_reset_.load()},
              {"config_generation", config_generation_.load()},
              {"queues", std::move(queues)},
              {"device", dev_->SaveDeviceState()}};
}

absl::Status MmioTransport::Unquiesce() {
  absl::MutexLock lock(&mu_);
  if (!quiesced_) return absl::OkStatus();
  std::vector<QueueState> pos = std::move(*quiesced_);
  quiesced_.reset();
  active_ = false;
  return ActivateLocked(std::move(pos));
}

absl::Status MmioTransport::LoadState(const Json& j) {
  EV_RETURN_IF_ERROR(CheckObject(j, "",
                                 {"device_id", "status", "driver_features", "device_features_sel",
                                  "driver_features_sel", "queue_sel", "active", "interrupt_status",
                                  "needs_reset", "config_generation", "queues", "device"}));
  EV_ASSIGN_OR_RETURN(uint64_t id, GetUint(j, "", "device_id", 0, kU32));
  if (id != dev_->device_id()) {
    return Bad("device_id", absl::StrFormat("%d, but this slot holds a device of type %d", id,
                                            dev_->device_id()));
  }
  absl::MutexLock lock(&mu_);
  if (active_) return absl::FailedPreconditionError("the device is already active");
  EV_ASSIGN_OR_RETURN(uint64_t status, GetUint(j, "", "status", 0, 0xff));
  EV_ASSIGN_OR_RETURN(uint64_t features, GetUint(j, "", "driver_features", 0, kU64));
  if (features & ~dev_->features()) {
    return Bad("driver_features",
               absl::StrFormat("0x%x has features this device does not offer (0x%x)", features,
                               dev_->features()));
  }
  EV_ASSIGN_OR_RETURN(uint64_t dsel, GetUint(j, "", "device_features_sel", 0, kU32));
  EV_ASSIGN_OR_RETURN(uint64_t drsel, GetUint(j, "", "driver_features_sel", 0, kU32));
  EV_ASSIGN_OR_RETURN(uint64_t qsel, GetUint(j, "", "queue_sel", 0, kU32));
  EV_ASSIGN_OR_RETURN(bool active, GetBool(j, "", "active", true, false));
  EV_ASSIGN_OR_RETURN(uint64_t isr, GetUint(j, "", "interrupt_status", 0, 3));
  EV_ASSIGN_OR_RETURN(bool needs_reset, GetBool(j, "", "needs_reset", true, false));
  EV_ASSIGN_OR_RETURN(uint64_t generation, GetUint(j, "", "config_generation", 0, kU32));
  if (!j.contains("queues") || !j["queues"].is_array() || j["queues"].size() != queues_.size()) {
    return Bad("queues", absl::StrFormat("must be an array of %d queues", queues_.size()));
  }
  std::vector<QueueConfig> queues = queues_;
  std::vector<QueueState> pos(queues.size());
  for (size_t i = 0; i < queues.size(); ++i) {
    EV_RETURN_IF_ERROR(
        ParseQueue(j["queues"][i], absl::StrFormat("queues[%d]", i), queues[i], pos[i]));
  }
  if (active && !((status & kStatusDriverOk) && (status & kStatusFeaturesOk))) {
    return Bad("active", "the device cannot be active without FEATURES_OK and DRIVER_OK");
  }
  EV_RETURN_IF_ERROR(dev_->LoadDeviceState(j.contains("device") ? j["device"] : Json(nullptr)));
  status_ = static_cast<uint32_t>(status);
  driver_features_ = features;
  device_features_sel_ = static_cast<uint32_t>(dsel);
  driver_features_sel_ = static_cast<uint32_t>(drsel);
  queue_sel_ = static_cast<uint32_t>(qsel);
  queues_ = std::move(queues);
  needs_reset_ = needs_reset;
  config_generation_ = static_cast<uint32_t>(generation);
  interrupt_status_ = static_cast<uint32_t>(isr);
  if (active) {
    if (absl::Status s = ActivateLocked(std::move(pos)); !s.ok()) {
      return Annotate(s, "queues: the device refuses them");
    }
  }
  // An interrupt the device raised while the snapshot was taken may not have reached the
  // irqchip state that was saved with it: raise it again (a driver tolerates a spare one).
  if (isr != 0) SignalEventFd(irq_fd_.get());
  return absl::OkStatus();
}

}  // namespace edgevisor::virtio
