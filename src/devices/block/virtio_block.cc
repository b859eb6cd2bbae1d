#include "src/devices/block/virtio_block.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "src/base/errors.h"
#include "src/base/event_fd.h"
#include "src/base/log.h"
#include "src/devices/block/disk_lock.h"
#include "src/devices/virtio/virtio_spec.h"

namespace edgevisor::block {

using namespace virtio_blk;  // NOLINT(build/namespaces): spec constants
using virtio::Bit;

namespace {

bool SameFile(int a, int b) {
  struct stat sa {
  }, sb{};
  return fstat(a, &sa) == 0 && fstat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
         sa.st_ino == sb.st_ino;
}

}  // namespace

// The image's lock for a new backing B: the current one when B is the same file (PATCH
// /drives to the same path after a resize), else a fresh lock on B's own file description.
absl::Status VirtioBlock::TakeLock(Backing& b, const std::string& path, bool read_only,
                                   int current_lock_fd) {
  if (current_lock_fd >= 0 && SameFile(current_lock_fd, b.fd.get())) {
    b.lock_fd.Reset(fcntl(current_lock_fd, F_DUPFD_CLOEXEC, 0));
  } else {
    EV_RETURN_IF_ERROR(LockDisk(b.fd.get(), path, read_only));
    b.lock_fd.Reset(fcntl(b.fd.get(), F_DUPFD_CLOEXEC, 0));
  }
  if (!b.lock_fd.valid()) return ErrnoError(absl::StrFormat("path=%s: dup", path));
  return absl::OkStatus();
}

absl::StatusOr<VirtioBlock::Backing> VirtioBlock::OpenBacking(const DriveConfig& cfg,
                                                              const std::string& path,
                                                              int current_lock_fd) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) {
    return UsageError(absl::StrFormat("path=%s: %s", path, strerror(errno)));
  }
  if (S_ISDIR(st.st_mode)) return UsageError(absl::StrFormat("path=%s: is a directory", path));
  if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
    return UsageError(absl::StrFormat("path=%s: not a regular file or block device", path));
  }
  Backing b;
  int flags = (cfg.read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC | (cfg.direct ? O_DIRECT : 0);
  b.fd.Reset(open(path.c_str(), flags));
  if (!b.fd.valid()) {
    const int err = errno;
    if (err == EINVAL && cfg.direct) {
      return UsageError(
          absl::StrFormat("path=%s: the filesystem does not support direct=on", path));
    }
    return UsageError(absl::StrFormat("path=%s: %s%s", path, strerror(err),
                                      err == EACCES || err == EROFS ? " (try ro=on)" : ""));
  }
  EV_RETURN_IF_ERROR(TakeLock(b, path, cfg.read_only, current_lock_fd));
  uint64_t size = static_cast<uint64_t>(st.st_size);
  if (S_ISBLK(st.st_mode) && ioctl(b.fd.get(), BLKGETSIZE64, &size) != 0) {
    return ErrnoError(absl::StrFormat("path=%s: BLKGETSIZE64", path));
  }
  if (size < kSectorSize) {
    return UsageError(absl::StrFormat("path=%s: image is smaller than one sector", path));
  }
  b.capacity_sectors = size / kSectorSize;
  return b;
}

absl::StatusOr<std::unique_ptr<VirtioBlock>> VirtioBlock::Create(
    const DriveConfig& cfg, std::string thread_name, std::shared_ptr<const ThreadFilter> filter) {
  if (cfg.queues == 0 || cfg.queues > 16) {
    return UsageError(absl::StrFormat("queues=%d: must be 1 to 16", cfg.queues));
  }
  std::unique_ptr<VirtioBlock> b(new VirtioBlock(cfg, std::move(thread_name)));
  auto backing = OpenBacking(cfg, cfg.path);
  if (!backing.ok()) return backing.status();
  b->disk_fd_ = std::move(backing->fd);
  b->lock_fd_ = std::move(backing->lock_fd);
  b->limits_.capacity_sectors = backing->capacity_sectors;
  b->limits_.read_only = cfg.read_only;
  b->limits_.seg_max = kQueueSize - 2;
  EV_ASSIGN_OR_RETURN(b->limiter_, virtio::RateLimiter::Create(cfg.rate_limiter));

  // Probe io_uring once; per-queue rings are created on activation.
  if (cfg.engine != DriveConfig::Engine::kSync) {
    auto probe = CreateUringEngine(b->disk_fd_.get(), 2);
    if (probe.ok()) {
      b->engine_kind_ = IoEngine::Kind::kUring;
    } else if (cfg.engine == DriveConfig::Engine::kUring) {
      return absl::FailedPreconditionError(
          absl::StrFormat("engine=uring: io_uring is unavailable: %s", probe.status().message()));
    } else {
      spdlog::warn("drive {}: io_uring unavailable ({}); using the sync engine", cfg.id,
                   probe.status().message());
    }
  }

  absl::MutexLock lock(&b->config_mu_);  // not shared yet; the analysis wants it all the same
  Config& c = b->config_;
  c.capacity = b->limits_.capacity_sectors;
  c.size_max = b->limits_.size_max;
  c.seg_max = b->limits_.seg_max;
  c.blk_size = kSectorSize;
  c.num_queues = cfg.queues;
  c.max_discard_sectors = b->limits_.max_discard_sectors;
  c.max_discard_seg = b->limits_.max_discard_seg;
  c.discard_sector_alignment = 8;  // 4 KiB: the host filesystem's hole granularity
  c.max_write_zeroes_sectors = b->limits_.max_write_zeroes_sectors;
  c.max_write_zeroes_seg = b->limits_.max_write_zeroes_seg;
  c.write_zeroes_may_unmap = 1;
  EV_RETURN_IF_ERROR(b->thread_.Prepare(b->thread_name_, std::move(filter)));
  return b;
}

VirtioBlock::~VirtioBlock() { Reset(); }

uint64_t VirtioBlock::capacity_sectors() const {
  absl::MutexLock lock(&config_mu_);
  return config_.capacity;
}

void VirtioBlock::InstallBacking(Backing b) {
  disk_fd_ = std::move(b.fd);
  lock_fd_ = std::move(b.lock_fd);
  limits_.capacity_sectors = b.capacity_sectors;
  absl::MutexLock lock(&config_mu_);
  config_.capacity = b.capacity_sectors;
}

absl::Status VirtioBlock::ReplaceBacking(const std::string& path) {
  absl::MutexLock swap_lock(&swap_mu_);
  auto b = OpenBacking(cfg_, path, lock_fd_.get());
  if (!b.ok()) return b.status();
  if (!running_.load()) {  // not activated: nothing in flight, nobody to tell
    InstallBacking(std::move(*b));
    spdlog::info("{}: now backed by {}", thread_name_, path);
    return absl::OkStatus();
  }
  absl::MutexLock lock(&pending_mu_);
  pending_ = std::move(*b);
  pending_result_.reset();
  swap_fd_.Signal();
  if (!pending_mu_.AwaitWithTimeout(absl::Condition(this, &VirtioBlock::SwapAnswered),
                                    absl::Seconds(5))) {
    pending_.reset();
    return absl::DeadlineExceededError("the device did not switch files within 5 s");
  }
  if (pending_result_->ok()) spdlog::info("{}: now backed by {}", thread_name_, path);
  return *pending_result_;
}

virtio::VirtioDevice::CounterList VirtioBlock::Counters() const {
  const BlockCounters& c = counters_;
  return {{"read_count", c.read_ops.load()},
          {"write_count", c.write_ops.load()},
          {"flush_count", c.flush_ops.load()},
          {"discard_count", c.discard_ops.load()},
          {"read_bytes", c.read_bytes.load()},
          {"write_bytes", c.write_bytes.load()},
          {"execute_fails", c.io_errors.load()},
          {"invalid_reqs_count", c.bad_requests.load()},
          {"rate_limiter_throttled_events", limiter_->throttled()},
          {"rate_limiter_event_count", c.limiter_wakeups.load()}};
}

uint32_t VirtioBlock::device_id() const { return virtio::kDeviceIdBlock; }

uint64_t VirtioBlock::features() const {
  uint64_t f = Bit(virtio::kFeatureVersion1) | Bit(virtio::kFeatureRingIndirectDesc) |
               Bit(virtio::kFeatureRingEventIdx) | Bit(kFeatureSizeMax) | Bit(kFeatureSegMax) |
               Bit(kFeatureBlkSize) | Bit(kFeatureFlush) | Bit(kFeatureDiscard) |
               Bit(kFeatureWriteZeroes);
  if (cfg_.queues > 1) f |= Bit(kFeatureMq);
  if (cfg_.read_only) f |= Bit(kFeatureRo);
  return f;
}

void VirtioBlock::ReadConfig(uint64_t offset, absl::Span<uint8_t> data) const {
  absl::MutexLock lock(&config_mu_);
  virtio::ReadConfigBytes(config_, offset, data);
}

absl::StatusOr<std::unique_ptr<IoEngine>> VirtioBlock::CreateEngine(int fd) const {
  if (engine_factory_) return engine_factory_(fd);
  return engine_kind_ == IoEngine::Kind::kUring ? CreateUringEngine(fd, kQueueSize)
                                                : CreateSyncEngine(fd);
}

// ---- the device thread ("blkN"): every queue of the drive -------------------------------------

namespace {
enum class BlkEvent : uint32_t {
  kNotify,      // the driver's queue notify (ioeventfd); index: the queue
  kCompletion,  // host I/O completed (the engine's eventfd); index: the queue
  kSwap,        // ReplaceBacking handed over a new file
  kLimiter,     // the rate limiter's timer: the tokens a held request needs are there
};
}  // namespace

class VirtioBlock::Worker : public virtio::Worker {
 public:
  Worker(VirtioBlock& dev, const virtio::ActivateArgs& args,
         std::vector<std::unique_ptr<virtio::Virtqueue>> vqs,
         std::vector<std::unique_ptr<IoEngine>> engines);
  absl::Status WatchAll();
  std::vector<virtio::QueueState> QueueStates() override;

 protected:
  void OnStart() override;
  void OnEvent(virtio::EventId id) override;
  void OnStop() override;

 private:
  // A request from the pop to its completion: a head is in flight at most once.
  struct Slot {
    bool busy = false;
    BlockRequest req;
    uint32_t pending = 0;  // host operations not yet completed
    bool failed = false;
  };
  struct Queue {
    std::unique_ptr<virtio::Virtqueue> vq;  // null: the driver did not set this queue up
    std::unique_ptr<IoEngine> engine;
    int notify_fd = -1;
    std::vector<Slot> slots;  // indexed by head
    bool broken = false;
    uint32_t inflight = 0;
  };

  void ProcessQueue(Queue& q, uint32_t qi);
  void StartRequest(Queue& q, uint32_t qi, uint16_t head, BlockRequest req);
  std::vector<IoOp> HostOps(const BlockRequest& r, uint64_t tag);
  void Submit(Queue& q, uint16_t head, const std::vector<IoOp>& ops);
  void Reap(Queue& q);
  void Complete(Queue& q, uint16_t head, uint8_t status, uint32_t used_len);
  void MarkBroken(Queue& q, const absl::Status& why);
  void MaybeInterrupt(Queue& q);
  // Returns how many requests were still in flight.
  size_t Drain(bool finish);
  void Swap();
  absl::Status SwitchEngines(int fd);

  VirtioBlock& dev_;
  const GuestMemory& mem_;
  virtio::InterruptSink& irq_;
  std::vector<Queue> queues_;
};

VirtioBlock::Worker::Worker(VirtioBlock& dev, const virtio::ActivateArgs& args,
                            std::vector<std::unique_ptr<virtio::Virtqueue>> vqs,
                            std::vector<std::unique_ptr<IoEngine>> engines)
    : dev_(dev), mem_(*args.mem), irq_(*args.interrupt), queues_(vqs.size()) {
  for (size_t i = 0; i < queues_.size(); ++i) {
    Queue& q = queues_[i];
    q.engine = std::move(engines[i]);
    q.notify_fd = args.notify_fds[i];
    q.vq = std::move(vqs[i]);
    if (q.vq) q.slots.resize(q.vq->size());
  }
}

absl::Status VirtioBlock::Worker::WatchAll() {
  EV_RETURN_IF_ERROR(Watch(dev_.swap_fd_.fd(), virtio::EventId::Of(BlkEvent::kSwap)));
  EV_RETURN_IF_ERROR(Watch(dev_.limiter_->timer_fd(), virtio::EventId::Of(BlkEvent::kLimiter)));
  for (uint32_t i = 0; i < queues_.size(); ++i) {
    if (!queues_[i].vq) continue;
    EV_RETURN_IF_ERROR(Watch(queues_[i].notify_fd, virtio::EventId::Of(BlkEvent::kNotify, i)));
    EV_RETURN_IF_ERROR(
        Watch(queues_[i].engine->event_fd(), virtio::EventId::Of(BlkEvent::kCompletion, i)));
  }
  return absl::OkStatus();
}

// What the driver made available before this worker started was announced to a notification
// this worker never saw (a restored snapshot's, or one that arrived during a quiesce): serve it.
void VirtioBlock::Worker::OnStart() {
  for (uint32_t i = 0; i < queues_.size(); ++i) {
    if (!queues_[i].vq) continue;
    ProcessQueue(queues_[i], i);
    MaybeInterrupt(queues_[i]);
  }
}

void VirtioBlock::Worker::OnEvent(virtio::EventId id) {
  if (id.Is(BlkEvent::kSwap)) return Swap();
  if (id.Is(BlkEvent::kLimiter)) {
    dev_.counters_.limiter_wakeups++;
    dev_.limiter_->OnTimer();
    return OnStart();  // every queue may have a request held
  }
  Queue& q = queues_[id.index];
  if (id.Is(BlkEvent::kNotify)) {
    DrainEventFd(q.notify_fd);
  } else {
    Reap(q);  // completions free slots; what the driver queued meanwhile is picked up now
  }
  ProcessQueue(q, id.index);
  MaybeInterrupt(q);
}

// Pops and starts every request the driver made available, as far as the rate limiter allows,
// then hands them to the kernel. A request the limiter refuses goes back into the ring.
void VirtioBlock::Worker::ProcessQueue(Queue& q, uint32_t qi) {
  q.vq->SuppressNotifications();
  while (!q.broken && !dev_.limiter_->blocked()) {
    auto head = q.vq->PopOrEnableNotification();
    if (!head.ok()) return MarkBroken(q, head.status());
    if (!*head) break;
    if (q.slots[**head].busy) {
      return MarkBroken(q, absl::InvalidArgumentError("driver reused a head still in flight"));
    }
    auto chain = q.vq->ReadChain(**head);
    if (!chain.ok()) return MarkBroken(q, chain.status());
    auto req = ParseBlockRequest(mem_, *chain, dev_.limits_);
    if (!req.ok()) return MarkBroken(q, req.status());
    const bool rw = req->type == kTypeIn || req->type == kTypeOut;
    if (!dev_.limiter_->Consume(1, rw ? req->data_len : 0)) {
      q.vq->UndoPop();
      break;
    }
    StartRequest(q, qi, **head, std::move(*req));
  }
  q.engine->Kick();
}

void VirtioBlock::Worker::StartRequest(Queue& q, uint32_t qi, uint16_t head, BlockRequest req) {
  Slot& s = q.slots[head];
  s.busy = true;
  s.req = std::move(req);
  s.failed = false;
  const BlockRequest& r = s.req;
  if (r.immediate) {  // answered without host I/O: a bad or unsupported request
    dev_.counters_.bad_requests++;
    return Complete(q, head, r.immediate_status, 1);
  }
  if (r.type == kTypeGetId) {
    FillDeviceId(r, dev_.cfg_.id);
    return Complete(q, head, kStatusOk, r.used_len);
  }
  Submit(q, head, HostOps(r, (uint64_t{qi} << 16) | head));
}

// The host operations for a request, counted in the device's counters.
std::vector<IoOp> VirtioBlock::Worker::HostOps(const BlockRequest& r, uint64_t tag) {
  BlockCounters& c = dev_.counters_;
  std::vector<IoOp> ops;
  switch (r.type) {
    case kTypeIn:
    case kTypeOut: {
      const bool in = r.type == kTypeIn;
      ops.push_back({in ? IoOp::Kind::kRead : IoOp::Kind::kWrite, r.offset, 0, r.data.data(),
                     static_cast<int>(r.data.size()), false, tag});
      (in ? c.read_ops : c.write_ops)++;
      (in ? c.read_bytes : c.write_bytes) += r.data_len;
      break;
    }
    case kTypeFlush:
      ops.push_back({IoOp::Kind::kFlush, 0, 0, nullptr, 0, false, tag});
      c.flush_ops++;
      break;
    case kTypeDiscard:
    case kTypeWriteZeroes:
      for (const Range& rg : r.ranges) {
        ops.push_back({r.type == kTypeDiscard ? IoOp::Kind::kDiscard : IoOp::Kind::kWriteZeroes,
                       rg.offset, rg.len, nullptr, 0, rg.unmap, tag});
      }
      c.discard_ops++;
      break;
  }
  return ops;
}

void VirtioBlock::Worker::Submit(Queue& q, uint16_t head, const std::vector<IoOp>& ops) {
  Slot& s = q.slots[head];
  s.pending = static_cast<uint32_t>(ops.size());
  q.inflight++;
  for (size_t i = 0; i < ops.size(); ++i) {
    if (q.engine->Submit(ops[i]).ok()) continue;
    // The rest never reach the kernel: fail the request once those already submitted drain.
    s.failed = true;
    s.pending -= static_cast<uint32_t>(ops.size() - i);
    if (s.pending == 0) {
      q.inflight--;
      Complete(q, head, kStatusIoErr, 1);
    }
    return;
  }
}

void VirtioBlock::Worker::Reap(Queue& q) {
  q.engine->Reap([&](uint64_t tag, int64_t res) {
    const uint16_t head = tag & 0xffff;
    Slot& s = q.slots[head];
    const BlockRequest& r = s.req;
    const bool rw = r.type == kTypeIn || r.type == kTypeOut;
    if (res < 0 || (rw && static_cast<uint64_t>(res) != r.data_len)) {
      if (!s.failed && res < 0) {
        spdlog::debug("{}: host I/O error: {}", dev_.thread_name_,
                      strerror(static_cast<int>(-res)));
      }
      s.failed = true;
    }
    if (--s.pending > 0) return;
    q.inflight--;
    if (!q.broken) Complete(q, head, s.failed ? kStatusIoErr : kStatusOk, r.used_len);
  });
}

void VirtioBlock::Worker::Complete(Queue& q, uint16_t head, uint8_t status, uint32_t used_len) {
  Slot& s = q.slots[head];
  *s.req.status = status;
  s.busy = false;
  if (status == kStatusIoErr) dev_.counters_.io_errors++;
  absl::Status st = q.vq->AddUsed(head, status == kStatusOk ? used_len : 1);
  if (!st.ok()) MarkBroken(q, st);
}

// The driver broke the ring (§2.1.2): the queue stops, and the device asks for a reset.
void VirtioBlock::Worker::MarkBroken(Queue& q, const absl::Status& why) {
  dev_.counters_.bad_requests++;
  if (!q.broken) spdlog::warn("{}: {}", dev_.thread_name_, why.message());
  q.broken = true;
  irq_.NeedsReset();
}

void VirtioBlock::Worker::MaybeInterrupt(Queue& q) {
  if (q.vq && !q.broken && q.vq->ShouldInterrupt()) irq_.Signal(virtio::kInterruptUsedBuffer);
}

// Waits for the host I/O in flight on every queue. FINISH completes the requests normally (a
// swap); otherwise they are dropped (reset or teardown: the rings are not ours any more).
size_t VirtioBlock::Worker::Drain(bool finish) {
  size_t waited = 0;
  for (Queue& q : queues_) {
    waited += q.inflight;
    while (q.inflight > 0) {
      pollfd p{q.engine->event_fd(), POLLIN, 0};
      poll(&p, 1, 100);
      if (!finish) q.broken = true;  // completions must not touch the rings any more
      Reap(q);
    }
    if (finish) MaybeInterrupt(q);
  }
  return waited;
}

// PATCH /drives: switch every queue's engine to the new file, then tell the driver.
void VirtioBlock::Worker::Swap() {
  dev_.swap_fd_.Drain();
  absl::MutexLock lock(&dev_.pending_mu_);
  if (!dev_.pending_) return;
  Drain(/*finish=*/true);
  absl::Status st = SwitchEngines(dev_.pending_->fd.get());
  if (st.ok()) {
    dev_.InstallBacking(std::move(*dev_.pending_));
    irq_.Signal(virtio::kInterruptConfigChange);
  }
  dev_.pending_.reset();
  dev_.pending_result_ = st;  // releasing pending_mu_ wakes ReplaceBacking
}

// New engines on FD for every queue, or none: on an error the old ones stay.
absl::Status VirtioBlock::Worker::SwitchEngines(int fd) {
  std::vector<std::unique_ptr<IoEngine>> fresh;
  for (size_t i = 0; i < queues_.size(); ++i) {
    EV_ASSIGN_OR_RETURN(auto e, dev_.CreateEngine(fd));
    fresh.push_back(std::move(e));
  }
  for (uint32_t i = 0; i < queues_.size(); ++i) {
    Queue& q = queues_[i];
    if (q.vq) {
      EV_RETURN_IF_ERROR(Unwatch(q.engine->event_fd()));
      EV_RETURN_IF_ERROR(
          Watch(fresh[i]->event_fd(), virtio::EventId::Of(BlkEvent::kCompletion, i)));
    }
    q.engine = std::move(fresh[i]);  // the old engine closes its ring
  }
  return absl::OkStatus();
}

// Reset or teardown: wait for the host I/O that still points into guest memory (a quiesce
// completes it). A swap that raced with the reset finds nothing in flight any more, so it is
// installed here.
void VirtioBlock::Worker::OnStop() {
  const size_t waited = Drain(/*finish=*/finish_on_stop());
  if (finish_on_stop()) {
    spdlog::info("{}: quiesced; {} request(s) in flight completed first", dev_.thread_name_,
                 waited);
  }
  absl::MutexLock lock(&dev_.pending_mu_);
  if (dev_.pending_) {
    dev_.InstallBacking(std::move(*dev_.pending_));
    dev_.pending_.reset();
    dev_.pending_result_ = absl::OkStatus();
  }
}

std::vector<virtio::QueueState> VirtioBlock::Worker::QueueStates() {
  std::vector<virtio::QueueState> out;
  for (const Queue& q : queues_) out.push_back(q.vq ? q.vq->state() : virtio::QueueState{});
  return out;
}

absl::StatusOr<std::vector<virtio::QueueState>> VirtioBlock::Quiesce() {
  absl::MutexLock swap_lock(&swap_mu_);
  std::unique_ptr<virtio::Worker> w = thread_.Quiesce();
  running_ = false;
  if (!w) return absl::FailedPreconditionError(thread_name_ + ": not active");
  return w->QueueStates();
}

absl::Status VirtioBlock::Activate(virtio::ActivateArgs args) {
  Reset();
  absl::MutexLock swap_lock(&swap_mu_);
  EV_ASSIGN_OR_RETURN(auto vqs, virtio::MakeQueues(args));
  std::vector<std::unique_ptr<IoEngine>> engines;
  for (size_t i = 0; i < args.queues.size(); ++i) {
    EV_ASSIGN_OR_RETURN(auto e, CreateEngine(disk_fd_.get()));
    engines.push_back(std::move(e));
  }
  EV_ASSIGN_OR_RETURN(swap_fd_, EventFd::Create(thread_name_ + " swap"));
  auto worker = std::make_unique<Worker>(*this, args, std::move(vqs), std::move(engines));
  EV_RETURN_IF_ERROR(worker->WatchAll());
  EV_RETURN_IF_ERROR(thread_.Start(thread_name_, std::move(worker)));
  running_ = true;
  return absl::OkStatus();
}

void VirtioBlock::Reset() {
  thread_.Stop();
  running_ = false;
}

}  // namespace edgevisor::block
