#include "src/devices/virtio/mmio_transport.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cstring>

#include "absl/synchronization/mutex.h"

#include "src/base/errors.h"
#include "src/base/event_fd.h"
#include "src/base/log.h"
#include "src/devices/virtio/virtio_spec.h"

namespace edgevisor::virtio {
namespace {

// §4.2.2 register offsets.
enum Reg : uint64_t {
  kMagic = VIRTIO_MMIO_MAGIC_VALUE,
  kVersion = VIRTIO_MMIO_VERSION,
  kDeviceId = VIRTIO_MMIO_DEVICE_ID,
  kVendorId = VIRTIO_MMIO_VENDOR_ID,
  kDeviceFeatures = VIRTIO_MMIO_DEVICE_FEATURES,
  kDeviceFeaturesSel = VIRTIO_MMIO_DEVICE_FEATURES_SEL,
  kDriverFeatures = VIRTIO_MMIO_DRIVER_FEATURES,
  kDriverFeaturesSel = VIRTIO_MMIO_DRIVER_FEATURES_SEL,
  kQueueSel = VIRTIO_MMIO_QUEUE_SEL,
  kQueueNumMax = VIRTIO_MMIO_QUEUE_NUM_MAX,
  kQueueNum = VIRTIO_MMIO_QUEUE_NUM,
  kQueueReady = VIRTIO_MMIO_QUEUE_READY,
  kQueueNotify = VIRTIO_MMIO_QUEUE_NOTIFY,
  kInterruptStatus = VIRTIO_MMIO_INTERRUPT_STATUS,
  kInterruptAck = VIRTIO_MMIO_INTERRUPT_ACK,
  kStatus = VIRTIO_MMIO_STATUS,
  kQueueDescLow = VIRTIO_MMIO_QUEUE_DESC_LOW,
  kQueueDescHigh = VIRTIO_MMIO_QUEUE_DESC_HIGH,
  kQueueDriverLow = VIRTIO_MMIO_QUEUE_AVAIL_LOW,
  kQueueDriverHigh = VIRTIO_MMIO_QUEUE_AVAIL_HIGH,
  kQueueDeviceLow = VIRTIO_MMIO_QUEUE_USED_LOW,
  kQueueDeviceHigh = VIRTIO_MMIO_QUEUE_USED_HIGH,
  kShmLenLow = VIRTIO_MMIO_SHM_LEN_LOW,
  kShmLenHigh = VIRTIO_MMIO_SHM_LEN_HIGH,
  kShmBaseLow = VIRTIO_MMIO_SHM_BASE_LOW,
  kShmBaseHigh = VIRTIO_MMIO_SHM_BASE_HIGH,
  kConfigGeneration = VIRTIO_MMIO_CONFIG_GENERATION,
  kConfig = VIRTIO_MMIO_CONFIG,
};
constexpr uint32_t kMagicValue = 0x74726976;  // "virt"
constexpr uint32_t kVendor = 0x45444756;      // "VGDE": edgevisor

void SetLow(uint64_t& v, uint32_t lo) { v = (v & ~0xffffffffull) | lo; }
void SetHigh(uint64_t& v, uint32_t hi) { v = (v & 0xffffffffull) | (uint64_t{hi} << 32); }

}  // namespace

absl::StatusOr<std::unique_ptr<MmioTransport>> MmioTransport::Create(
    std::unique_ptr<VirtioDevice> dev, const GuestMemory* mem) {
  std::unique_ptr<MmioTransport> t(new MmioTransport(std::move(dev), mem));
  t->irq_fd_.Reset(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!t->irq_fd_.valid()) return ErrnoError("eventfd for virtio interrupt");
  for (uint16_t i = 0; i < t->dev_->num_queues(); ++i) {
    UniqueFd fd(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!fd.valid()) return ErrnoError("eventfd for virtio queue notify");
    t->notify_fds_.push_back(std::move(fd));
  }
  absl::MutexLock lock(&t->mu_);
  t->queues_.resize(t->dev_->num_queues());
  for (QueueConfig& q : t->queues_) q.max_size = t->dev_->queue_max_size();
  return t;
}

MmioTransport::~MmioTransport() { dev_->Reset(); }

void MmioTransport::Read(uint64_t offset, absl::Span<uint8_t> data) {
  if (offset >= kConfig) {
    dev_->ReadConfig(offset - kConfig, data);
    return;
  }
  // §4.2.2.2: registers are read with 32-bit aligned accesses; anything else reads as 0.
  if (data.size() != 4 || offset % 4 != 0) {
    std::fill(data.begin(), data.end(), 0);
    return;
  }
  absl::MutexLock lock(&mu_);
  const uint32_t v = ReadReg(offset);
  std::memcpy(data.data(), &v, 4);
}

void MmioTransport::Write(uint64_t offset, absl::Span<const uint8_t> data) {
  if (offset >= kConfig) {
    absl::MutexLock lock(&mu_);
    dev_->WriteConfig(offset - kConfig, data);
    return;
  }
  if (data.size() != 4 || offset % 4 != 0) return;
  uint32_t v;
  std::memcpy(&v, data.data(), 4);
  absl::MutexLock lock(&mu_);
  WriteReg(offset, v);
}

QueueConfig* MmioTransport::SelectedQueue() {
  return queue_sel_ < queues_.size() ? &queues_[queue_sel_] : nullptr;
}

uint32_t MmioTransport::ReadReg(uint64_t offset) {
  const QueueConfig* q = SelectedQueue();
  switch (offset) {
    case kMagic:
      return kMagicValue;
    case kVersion:
      return 2;
    case kDeviceId:
      return dev_->device_id();
    case kVendorId:
      return kVendor;
    case kDeviceFeatures:
      return device_features_sel_ == 0   ? static_cast<uint32_t>(dev_->features())
             : device_features_sel_ == 1 ? static_cast<uint32_t>(dev_->features() >> 32)
                                         : 0;
    case kQueueNumMax:
      return q ? q->max_size : 0;
    case kQueueReady:
      return q && q->ready ? 1 : 0;
    case kInterruptStatus:
      return interrupt_status_.load();
    case kStatus:
      return status_ | (needs_reset_.load() ? kStatusNeedsReset : 0);
    case kShmLenLow:
    case kShmLenHigh:
    case kShmBaseLow:
    case kShmBaseHigh:
      return 0xffffffff;  // no shared memory regions
    case kConfigGeneration:
      return config_generation_.load();
    default:
      return 0;
  }
}

void MmioTransport::WriteReg(uint64_t offset, uint32_t v) {
  // Queue and feature registers are frozen once the driver said DRIVER_OK (§4.2.3).
  const bool setup = !(status_ & kStatusDriverOk);
  QueueConfig* q = SelectedQueue();
  switch (offset) {
    case kDeviceFeaturesSel:
      device_features_sel_ = v;
      break;
    case kDriverFeaturesSel:
      driver_features_sel_ = v;
      break;
    case kDriverFeatures:
      if (setup && !(status_ & kStatusFeaturesOk)) {
        if (driver_features_sel_ == 0) SetLow(driver_features_, v);
        if (driver_features_sel_ == 1) SetHigh(driver_features_, v);
      }
      break;
    case kQueueSel:
      queue_sel_ = v;
      break;
    case kQueueNum:
      if (setup && q) q->size = static_cast<uint16_t>(std::min<uint32_t>(v, 0xffff));
      break;
    case kQueueReady:
      if (setup && q) q->ready = v == 1;
      break;
    case kQueueDescLow:
      if (setup && q) SetLow(q->desc, v);
      break;
    case kQueueDescHigh:
      if (setup && q) SetHigh(q->desc, v);
      break;
    case kQueueDriverLow:
      if (setup && q) SetLow(q->avail, v);
      break;
    case kQueueDriverHigh:
      if (setup && q) SetHigh(q->avail, v);
      break;
    case kQueueDeviceLow:
      if (setup && q) SetLow(q->used, v);
      break;
    case kQueueDeviceHigh:
      if (setup && q) SetHigh(q->used, v);
      break;
    case kQueueNotify:
      // Normally KVM's ioeventfd catches this write; without it we forward by hand.
      if (v < notify_fds_.size()) SignalEventFd(notify_fds_[v].get());
      break;
    case kInterruptAck:
      interrupt_status_.fetch_and(~v);
      break;
    case kStatus:
      WriteStatus(v);
      break;
    default:
      break;
  }
}

void MmioTransport::WriteStatus(uint32_t v) {
  if (v == 0) {
    ResetLocked();
    return;
  }
  v &= ~kStatusNeedsReset;  // device-owned bit
  const uint32_t added = v & ~status_;
  if (added & kStatusFeaturesOk) {
    // §3.1.1: accept only a subset of what we offered, and only modern drivers.
    const bool subset = (driver_features_ & ~dev_->features()) == 0;
    const bool modern = driver_features_ & Bit(kFeatureVersion1);
    if (!subset || !modern) {
      spdlog::warn("virtio-mmio: driver features 0x{:x} rejected ({})", driver_features_,
                   !modern ? "no VIRTIO_F_VERSION_1" : "not offered");
      v &= ~kStatusFeaturesOk;
    }
  }
  status_ = v;
  if ((added & kStatusDriverOk) && (status_ & kStatusFeaturesOk) && !active_) {
    absl::Status s = ActivateLocked({});
    if (!s.ok()) {
      spdlog::warn("virtio-mmio: device {} not activated: {}", dev_->device_id(), s.message());
      needs_reset_ = true;
    }
  }
}

absl::Status MmioTransport::ActivateLocked(std::vector<QueueState> resume) {
  ActivateArgs args;
  args.mem = mem_;
  args.features = driver_features_;
  args.queues = queues_;
  for (const UniqueFd& fd : notify_fds_) args.notify_fds.push_back(fd.get());
  args.interrupt = this;
  args.resume = std::move(resume);
  EV_RETURN_IF_ERROR(dev_->Activate(std::move(args)));
  active_ = true;
  return absl::OkStatus();
}

void MmioTransport::ResetLocked() {
  dev_->Reset();
  active_ = false;
  quiesced_.reset();
  status_ = 0;
  driver_features_ = 0;
  device_features_sel_ = driver_features_sel_ = queue_sel_ = 0;
  for (QueueConfig& q : queues_) q = QueueConfig{q.max_size};
  interrupt_status_ = 0;
  needs_reset_ = false;
}

void MmioTransport::Signal(uint32_t bits) {
  // The device changed its config space before signalling: a driver that read the generation
  // before and after its config reads sees the difference and reads again (§4.2.2.1).
  if (bits & kInterruptConfigChange) config_generation_.fetch_add(1);
  interrupt_status_.fetch_or(bits);
  SignalEventFd(irq_fd_.get());
}

void MmioTransport::NeedsReset() {
  if (!needs_reset_.exchange(true)) {
    spdlog::warn("virtio device {}: guest input it cannot process; needs reset", dev_->device_id());
  }
  Signal(kInterruptConfigChange);
}

}  // namespace edgevisor::virtio
