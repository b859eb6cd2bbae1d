#include "src/devices/balloon/virtio_balloon.h"

#include <endian.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "src/base/errors.h"
#include "src/base/json_fields.h"
#include "src/base/log.h"
#include "src/devices/balloon/balloon_parse.h"
#include "src/devices/virtio/virtio_spec.h"

namespace edgevisor::balloon {

absl::StatusOr<std::unique_ptr<VirtioBalloon>> VirtioBalloon::Create(
    const BalloonConfig& cfg, std::string thread_name, std::shared_ptr<const ThreadFilter> filter) {
  std::unique_ptr<VirtioBalloon> b(new VirtioBalloon(cfg, std::move(thread_name)));
  b->target_pages_ = static_cast<uint32_t>(uint64_t{cfg.amount_mib} * kPagesPerMib);
  b->stats_interval_s_ = cfg.stats_polling_interval_s;
  b->stats_timer_ = UniqueFd(timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
  if (!b->stats_timer_.valid()) return ErrnoError("balloon: timerfd_create");
  EV_ASSIGN_OR_RETURN(b->interval_changed_, EventFd::Create("balloon: interval"));
  EV_RETURN_IF_ERROR(b->thread_.Prepare(b->thread_name_, std::move(filter)));
  return b;
}

VirtioBalloon::~VirtioBalloon() { Reset(); }

uint64_t VirtioBalloon::features() const {
  uint64_t f = virtio::Bit(virtio::kFeatureVersion1) |
               virtio::Bit(virtio::kFeatureRingIndirectDesc) |
               virtio::Bit(virtio::kFeatureRingEventIdx);
  if (stats_enabled()) f |= virtio::Bit(kFeatureStatsVq);
  if (cfg_.deflate_on_oom) f |= virtio::Bit(kFeatureDeflateOnOom);
  if (cfg_.free_page_reporting) f |= virtio::Bit(kFeatureReporting);
  return f;
}

uint16_t VirtioBalloon::num_queues() const {
  return static_cast<uint16_t>(2 + (stats_enabled() ? 1 : 0) + (cfg_.free_page_reporting ? 1 : 0));
}

void VirtioBalloon::ReadConfig(uint64_t offset, absl::Span<uint8_t> data) const {
  const Config c{htole32(target_pages_.load()), htole32(actual_pages_.load())};
  virtio::ReadConfigBytes(c, offset, data);
}

void VirtioBalloon::WriteConfig(uint64_t offset, absl::Span<const uint8_t> data) {
  if (offset != offsetof(Config, actual) || data.size() != sizeof(uint32_t)) return;
  uint32_t v;
  std::memcpy(&v, data.data(), sizeof(v));
  actual_pages_ = le32toh(v);
}

virtio::VirtioDevice::CounterList VirtioBalloon::Counters() const {
  const BalloonCounters& c = counters_;
  return {{"activate_fails", c.activate_fails.load()},
          {"inflate_count", c.inflates.load()},
          {"inflate_pages", c.inflated_pages.load()},
          {"inflate_bad_pfns", c.bad_pfns.load()},
          {"deflate_count", c.deflates.load()},
          {"stats_updates_count", c.stats_updates.load()},
          {"stats_update_fails", c.stats_update_fails.load()},
          {"event_fails", c.event_fails.load()},
          {"free_page_report_count", c.reports.load()},
          {"free_page_report_freed", c.reported_bytes.load()},
          {"free_page_report_fails", c.report_fails.load()}};
}

void VirtioBalloon::SetTargetMib(uint32_t mib) {
  target_pages_ = static_cast<uint32_t>(uint64_t{mib} * kPagesPerMib);
  absl::MutexLock lock(&mu_);
  if (irq_ != nullptr) irq_->Signal(virtio::kInterruptConfigChange);
}

absl::Status VirtioBalloon::SetStatsInterval(uint32_t seconds) {
  if (!stats_enabled()) {
    return absl::FailedPreconditionError(
        "stats_polling_interval_s: the balloon was created without statistics (they cannot be "
        "turned on after boot)");
  }
  if (seconds == 0) {
    return absl::InvalidArgumentError(
        "stats_polling_interval_s: statistics cannot be turned off after boot");
  }
  stats_interval_s_ = seconds;
  interval_changed_.Signal();
  return absl::OkStatus();
}

BalloonStats VirtioBalloon::Stats() const {
  BalloonStats s;
  s.target_pages = target_pages_.load();
  s.actual_pages = actual_pages_.load();
  absl::MutexLock lock(&mu_);
  std::copy(std::begin(stats_), std::end(stats_), std::begin(s.values));
  return s;
}

nlohmann::json VirtioBalloon::SaveDeviceState() const {
  return {{"actual_pages", actual_pages_.load()}};
}

absl::Status VirtioBalloon::LoadDeviceState(const nlohmann::json& j) {
  const std::string where = "device";
  EV_RETURN_IF_ERROR(json_fields::CheckObject(j, where, {"actual_pages"}));
  EV_ASSIGN_OR_RETURN(uint64_t actual,
                      json_fields::GetUint(j, where, "actual_pages", 0, 0xffffffffu));
  actual_pages_ = static_cast<uint32_t>(actual);
  return absl::OkStatus();
}

// ---- the device thread ("balloon") ------------------------------------------------------------

namespace {
enum class BalloonEvent : uint32_t {
  kNotify,           // a queue's notify (ioeventfd); the index is the queue's
  kStatsTimer,       // time to ask the driver for new statistics
  kIntervalChanged,  // the API set a new interval: ask now, and re-arm
};
enum class Role { kInflate, kDeflate, kStats, kReporting };
}  // namespace

class VirtioBalloon::Worker : public virtio::Worker {
 public:
  Worker(VirtioBalloon& dev, const virtio::ActivateArgs& args,
         std::vector<std::unique_ptr<virtio::Virtqueue>> vqs)
      : dev_(dev), mem_(*args.mem), irq_(*args.interrupt), vqs_(std::move(vqs)) {
    // §5.5.2: a queue exists only with its feature, and the later ones take the next index.
    roles_ = {Role::kInflate, Role::kDeflate};
    if (args.features & virtio::Bit(kFeatureStatsVq)) roles_.push_back(Role::kStats);
    if (args.features & virtio::Bit(kFeatureReporting)) roles_.push_back(Role::kReporting);
    roles_.resize(std::min(roles_.size(), vqs_.size()));
    notify_fds_ = args.notify_fds;
  }
  absl::Status WatchAll();
  std::vector<virtio::QueueState> QueueStates() override;

 protected:
  // Buffers made available before this worker started (a restored snapshot's) are served now.
  void OnStart() override {
    for (size_t i = 0; i < roles_.size(); ++i) Serve(i);
  }
  void OnEvent(virtio::EventId id) override;
  void AfterEvents() override {
    for (size_t i = 0; i < roles_.size() && !broken_; ++i) {
      if (vqs_[i] && vqs_[i]->ShouldInterrupt()) irq_.Signal(virtio::kInterruptUsedBuffer);
    }
  }

 private:
  void Serve(size_t q);
  void Inflate(const virtio::DescriptorChain& chain);
  // Releases pages [first, first + n) (page frame numbers): all at once when they lie in RAM,
  // else page by page, counting the ones outside it.
  void Release(uint64_t first, uint64_t n);
  void Report(const virtio::DescriptorChain& chain);
  void TakeStats(const virtio::DescriptorChain& chain);
  // Hands the held statistics buffer back, so that the driver refills it (§5.5.6.3).
  void AskForStats();
  void ArmStatsTimer();
  void MarkBroken(const absl::Status& why) {
    dev_.counters_.event_fails++;
    if (!broken_) spdlog::warn("{}: {}", dev_.thread_name_, why.message());
    broken_ = true;
    irq_.NeedsReset();
  }

  VirtioBalloon& dev_;
  const GuestMemory& mem_;
  virtio::InterruptSink& irq_;
  std::vector<std::unique_ptr<virtio::Virtqueue>> vqs_;  // transport order
  std::vector<Role> roles_;                              // what each of vqs_ is
  std::vector<int> notify_fds_;
  std::optional<uint16_t> held_stats_;  // the statistics buffer the device keeps until a refresh
  size_t stats_q_ = 0;                  // its queue
  bool broken_ = false;
};

absl::Status VirtioBalloon::Worker::WatchAll() {
  for (size_t i = 0; i < roles_.size(); ++i) {
    if (!vqs_[i] || i >= notify_fds_.size()) continue;
    EV_RETURN_IF_ERROR(Watch(notify_fds_[i],
                             virtio::EventId::Of(BalloonEvent::kNotify, static_cast<uint32_t>(i))));
    if (roles_[i] == Role::kStats) stats_q_ = i;
  }
  if (!dev_.stats_enabled()) return absl::OkStatus();
  EV_RETURN_IF_ERROR(
      Watch(dev_.stats_timer_.get(), virtio::EventId::Of(BalloonEvent::kStatsTimer)));
  return Watch(dev_.interval_changed_.fd(), virtio::EventId::Of(BalloonEvent::kIntervalChanged));
}

std::vector<virtio::QueueState> VirtioBalloon::Worker::QueueStates() {
  // The held statistics buffer is the last one its queue popped: it goes back into the ring, and
  // the next worker (a restored one) takes it again.
  if (held_stats_) vqs_[stats_q_]->UndoPop();
  held_stats_.reset();
  std::vector<virtio::QueueState> out;
  for (const auto& vq : vqs_) out.push_back(vq ? vq->state() : virtio::QueueState{});
  return out;
}

void VirtioBalloon::Worker::OnEvent(virtio::EventId id) {
  if (id.Is(BalloonEvent::kNotify)) {
    DrainEventFd(notify_fds_[id.index]);
    return Serve(id.index);
  }
  if (id.Is(BalloonEvent::kStatsTimer)) {
    uint64_t expirations;
    if (read(dev_.stats_timer_.get(), &expirations, sizeof(expirations)) < 0 && errno == EAGAIN) {
      return;
    }
  } else {
    dev_.interval_changed_.Drain();
  }
  AskForStats();
}

void VirtioBalloon::Worker::Serve(size_t q) {
  if (broken_ || q >= roles_.size() || !vqs_[q]) return;
  virtio::Virtqueue& vq = *vqs_[q];
  vq.SuppressNotifications();
  while (!broken_) {
    auto head = vq.PopOrEnableNotification();
    if (!head.ok()) return MarkBroken(head.status());
    if (!*head) return;
    auto chain = vq.ReadChain(**head);
    if (!chain.ok()) return MarkBroken(chain.status());
    switch (roles_[q]) {
      case Role::kInflate:
        Inflate(*chain);
        break;
      case Role::kDeflate:
        // Without VIRTIO_BALLOON_F_MUST_TELL_HOST the guest may use the pages before telling:
        // they fault back in on first touch. Only counted.
        dev_.counters_.deflates++;
        break;
      case Role::kReporting:
        Report(*chain);
        break;
      case Role::kStats:
        TakeStats(*chain);
        if (held_stats_) {  // a second buffer while one is held: the older one goes back
          if (absl::Status s = vq.AddUsed(*held_stats_, 0); !s.ok()) return MarkBroken(s);
        }
        held_stats_ = **head;
        ArmStatsTimer();
        continue;  // held, not used
    }
    if (absl::Status s = vq.AddUsed(**head, 0); !s.ok()) return MarkBroken(s);
  }
}

void VirtioBalloon::Worker::Inflate(const virtio::DescriptorChain& chain) {
  dev_.counters_.inflates++;
  dev_.counters_.event_fails +=
      ForEachPfnRun(mem_, chain, [this](uint64_t first, uint64_t n) { Release(first, n); });
}

void VirtioBalloon::Worker::Release(uint64_t first, uint64_t n) {
  if (n == 0) return;
  if (mem_.Contains(first << kPfnShift, n << kPfnShift)) {
    if (absl::Status s = mem_.Discard(first << kPfnShift, n << kPfnShift); !s.ok()) {
      dev_.counters_.event_fails++;
      spdlog::warn("{}: {}", dev_.thread_name_, s.message());
      return;
    }
    dev_.counters_.inflated_pages += n;
    return;
  }
  for (uint64_t pfn = first; pfn < first + n; ++pfn) {
    if (!mem_.Contains(pfn << kPfnShift, kPageSize)) {
      dev_.counters_.bad_pfns++;  // a hostile or stale page number: ignored
      continue;
    }
    Release(pfn, 1);
  }
}

void VirtioBalloon::Worker::Report(const virtio::DescriptorChain& chain) {
  dev_.counters_.reports++;
  for (const virtio::ChainDesc& d : chain.descs) {
    if (absl::Status s = mem_.Discard(d.addr, d.len); !s.ok()) {
      dev_.counters_.report_fails++;
      continue;
    }
    dev_.counters_.reported_bytes += d.len;
  }
}

void VirtioBalloon::Worker::TakeStats(const virtio::DescriptorChain& chain) {
  uint8_t buf[kMaxStats * kStatSize];
  const size_t have = virtio::GatherReadable(mem_, chain, absl::MakeSpan(buf));
  absl::MutexLock lock(&dev_.mu_);
  // Not an array of statistics: what parses is kept, and the failure counted.
  if (!ParseStats(absl::MakeConstSpan(buf, have), dev_.stats_) || chain.readable_bytes != have) {
    dev_.counters_.stats_update_fails++;
  }
  dev_.counters_.stats_updates++;
}

void VirtioBalloon::Worker::AskForStats() {
  if (broken_ || !held_stats_) return;
  const uint16_t head = *held_stats_;
  held_stats_.reset();
  if (absl::Status s = vqs_[stats_q_]->AddUsed(head, 0); !s.ok()) return MarkBroken(s);
}

void VirtioBalloon::Worker::ArmStatsTimer() {
  itimerspec t{};
  t.it_value.tv_sec = dev_.stats_interval_s_.load();
  if (timerfd_settime(dev_.stats_timer_.get(), 0, &t, nullptr) != 0) {
    spdlog::warn("{}: timerfd_settime: {}; statistics stay as they are", dev_.thread_name_,
                 strerror(errno));
  }
}

// ---- activation ---------------------------------------------------------------------------

absl::StatusOr<std::vector<virtio::QueueState>> VirtioBalloon::Quiesce() {
  std::unique_ptr<virtio::Worker> w = thread_.Quiesce();
  if (!w) return absl::FailedPreconditionError(thread_name_ + ": not active");
  return w->QueueStates();
}

absl::Status VirtioBalloon::Activate(virtio::ActivateArgs args) {
  Reset();
  auto vqs = virtio::MakeQueues(args);
  if (!vqs.ok()) {
    counters_.activate_fails++;
    return vqs.status();
  }
  if (vqs->size() < 2 || !(*vqs)[0] || !(*vqs)[1]) {
    counters_.activate_fails++;
    return absl::InvalidArgumentError(
        "balloon: the driver did not set up the inflate and deflate queues");
  }
  virtio::InterruptSink* irq = args.interrupt;
  auto worker = std::make_unique<Worker>(*this, args, std::move(*vqs));
  EV_RETURN_IF_ERROR(worker->WatchAll());
  EV_RETURN_IF_ERROR(thread_.Start(thread_name_, std::move(worker)));
  absl::MutexLock lock(&mu_);
  irq_ = irq;
  return absl::OkStatus();
}

void VirtioBalloon::Reset() {
  {
    absl::MutexLock lock(&mu_);
    irq_ = nullptr;
  }
  // The statistics timer may still fire once: with no buffer held, nothing happens (and this
  // may run on a vCPU thread, whose filter has no timerfd_settime).
  thread_.Stop();
}

}  // namespace edgevisor::balloon
