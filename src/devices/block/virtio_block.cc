#include "src/devices/block/virtio_block.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <poll.h>

#include <cstring>

#include "absl/strings/str_format.h"
#include "src/devices/virtio/virtio_spec.h"
#include "src/vmm/util/errors.h"
#include "src/vmm/util/log.h"

namespace edgevisor::block {

using namespace virtio_blk;  // NOLINT(build/namespaces): spec constants
using virtio::Bit;

struct VirtioBlock::Slot {
  bool busy = false;
  BlockRequest req;
  uint32_t pending = 0;
  bool failed = false;
};

struct VirtioBlock::Queue {
  std::unique_ptr<virtio::Virtqueue> vq;
  std::unique_ptr<IoEngine> engine;
  std::vector<Slot> slots;  // indexed by head: a head is in flight at most once
  bool broken = false;
  uint32_t inflight = 0;
};

absl::StatusOr<VirtioBlock::Backing> VirtioBlock::OpenBacking(const DriveConfig& cfg,
                                                              const std::string& path) {
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

absl::StatusOr<std::unique_ptr<VirtioBlock>> VirtioBlock::Create(const DriveConfig& cfg,
                                                                 std::string thread_name) {
  if (cfg.queues == 0 || cfg.queues > 16) {
    return UsageError(absl::StrFormat("queues=%d: must be 1 to 16", cfg.queues));
  }
  std::unique_ptr<VirtioBlock> b(new VirtioBlock(cfg, std::move(thread_name)));
  auto backing = OpenBacking(cfg, cfg.path);
  if (!backing.ok()) return backing.status();
  b->disk_fd_ = std::move(backing->fd);
  b->limits_.capacity_sectors = backing->capacity_sectors;
  b->limits_.read_only = cfg.read_only;
  b->limits_.seg_max = kQueueSize - 2;

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
  return b;
}

VirtioBlock::~VirtioBlock() { Reset(); }

uint64_t VirtioBlock::capacity_sectors() const {
  std::lock_guard lock(config_mu_);
  return config_.capacity;
}

void VirtioBlock::InstallBacking(Backing b) {
  disk_fd_ = std::move(b.fd);
  limits_.capacity_sectors = b.capacity_sectors;
  std::lock_guard lock(config_mu_);
  config_.capacity = b.capacity_sectors;
}

absl::Status VirtioBlock::ReplaceBacking(const std::string& path) {
  auto b = OpenBacking(cfg_, path);
  if (!b.ok()) return b.status();
  std::lock_guard swap_lock(swap_mu_);
  if (!running_.load()) {  // not activated: nothing in flight, nobody to tell
    InstallBacking(std::move(*b));
    spdlog::info("{}: now backed by {}", thread_name_, path);
    return absl::OkStatus();
  }
  std::unique_lock lock(pending_mu_);
  pending_ = std::move(*b);
  pending_result_.reset();
  const uint64_t one = 1;
  [[maybe_unused]] ssize_t n = write(swap_fd_.get(), &one, sizeof(one));
  if (!pending_cv_.wait_for(lock, std::chrono::seconds(5),
                            [&] { return pending_result_.has_value(); })) {
    pending_.reset();
    return absl::DeadlineExceededError("the device did not switch files within 5 s");
  }
  if (pending_result_->ok()) spdlog::info("{}: now backed by {}", thread_name_, path);
  return *pending_result_;
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
  std::lock_guard lock(config_mu_);
  const auto* cfg = reinterpret_cast<const uint8_t*>(&config_);
  for (size_t i = 0; i < data.size(); ++i) {
    data[i] = offset + i < sizeof(config_) ? cfg[offset + i] : 0;
  }
}

absl::Status VirtioBlock::Activate(virtio::ActivateArgs args) {
  Reset();
  std::lock_guard swap_lock(swap_mu_);
  const bool event_idx = args.features & Bit(virtio::kFeatureRingEventIdx);
  const bool indirect = args.features & Bit(virtio::kFeatureRingIndirectDesc);
  std::vector<std::unique_ptr<IoEngine>> engines;
  for (const virtio::QueueConfig& q : args.queues) {
    if (q.ready) {
      virtio::Virtqueue vq(args.mem, q, event_idx, indirect);
      absl::Status s = vq.Validate();
      if (!s.ok()) return s;
    }
    auto e = engine_kind_ == IoEngine::Kind::kUring ? CreateUringEngine(disk_fd_.get(), kQueueSize)
                                                    : CreateSyncEngine(disk_fd_.get());
    if (!e.ok()) return e.status();
    engines.push_back(std::move(*e));
  }
  stop_fd_.Reset(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!stop_fd_.valid()) return ErrnoError("eventfd for block worker");
  swap_fd_.Reset(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!swap_fd_.valid()) return ErrnoError("eventfd for block worker");
  worker_ = std::thread([this, args = std::move(args), engines = std::move(engines)]() mutable {
    Run(std::move(args), std::move(engines));
  });
  pthread_setname_np(worker_.native_handle(), thread_name_.substr(0, 15).c_str());
  running_ = true;
  return absl::OkStatus();
}

void VirtioBlock::Reset() {
  if (!worker_.joinable()) return;
  uint64_t one = 1;
  [[maybe_unused]] ssize_t n = write(stop_fd_.get(), &one, sizeof(one));
  worker_.join();
  running_ = false;
}

void VirtioBlock::Run(virtio::ActivateArgs args, std::vector<std::unique_ptr<IoEngine>> engines) {
  const GuestMemory& mem = *args.mem;
  virtio::InterruptSink& irq = *args.interrupt;
  const bool event_idx = args.features & Bit(virtio::kFeatureRingEventIdx);
  const bool indirect = args.features & Bit(virtio::kFeatureRingIndirectDesc);
  std::vector<Queue> queues(args.queues.size());
  UniqueFd ep(epoll_create1(EPOLL_CLOEXEC));
  auto watch = [&](int fd, uint64_t tag) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = tag;
    epoll_ctl(ep.get(), EPOLL_CTL_ADD, fd, &ev);
  };
  constexpr uint64_t kStopTag = ~0ull;
  constexpr uint64_t kSwapTag = ~1ull;
  watch(stop_fd_.get(), kStopTag);
  watch(swap_fd_.get(), kSwapTag);
  for (size_t i = 0; i < queues.size(); ++i) {
    Queue& q = queues[i];
    q.engine = std::move(engines[i]);
    if (!args.queues[i].ready) continue;
    q.vq = std::make_unique<virtio::Virtqueue>(args.mem, args.queues[i], event_idx, indirect);
    q.slots.resize(q.vq->size());
    watch(args.notify_fds[i], 2 * i);
    watch(q.engine->event_fd(), 2 * i + 1);
  }

  auto broken = [&](Queue& q, const absl::Status& why) {
    counters_.bad_requests++;
    if (!q.broken) spdlog::warn("{}: {}", thread_name_, why.message());
    q.broken = true;
    irq.NeedsReset();
  };
  auto complete = [&](Queue& q, uint16_t head, uint8_t status, uint32_t used_len) {
    Slot& s = q.slots[head];
    *s.req.status = status;
    s.busy = false;
    if (status == kStatusIoErr) counters_.io_errors++;
    absl::Status st = q.vq->AddUsed(head, status == kStatusOk ? used_len : 1);
    if (!st.ok()) broken(q, st);
  };
  auto start = [&](Queue& q, size_t qi, uint16_t head, BlockRequest req) {
    Slot& s = q.slots[head];
    s.busy = true;
    s.req = std::move(req);
    s.failed = false;
    const BlockRequest& r = s.req;
    if (r.immediate) {
      counters_.bad_requests++;
      complete(q, head, r.immediate_status, 1);
      return;
    }
    std::vector<IoOp> ops;
    const uint64_t tag = (uint64_t{qi} << 16) | head;
    switch (r.type) {
      case kTypeIn:
      case kTypeOut:
        ops.push_back({r.type == kTypeIn ? IoOp::Kind::kRead : IoOp::Kind::kWrite, r.offset, 0,
                       r.data.data(), static_cast<int>(r.data.size()), false, tag});
        (r.type == kTypeIn ? counters_.read_ops : counters_.write_ops)++;
        (r.type == kTypeIn ? counters_.read_bytes : counters_.write_bytes) += r.data_len;
        break;
      case kTypeFlush:
        ops.push_back({IoOp::Kind::kFlush, 0, 0, nullptr, 0, false, tag});
        counters_.flush_ops++;
        break;
      case kTypeGetId:
        FillDeviceId(r, cfg_.id);
        complete(q, head, kStatusOk, r.used_len);
        return;
      case kTypeDiscard:
      case kTypeWriteZeroes:
        for (const Range& rg : r.ranges) {
          ops.push_back({r.type == kTypeDiscard ? IoOp::Kind::kDiscard : IoOp::Kind::kWriteZeroes,
                         rg.offset, rg.len, nullptr, 0, rg.unmap, tag});
        }
        counters_.discard_ops++;
        break;
    }
    s.pending = static_cast<uint32_t>(ops.size());
    q.inflight++;
    for (size_t i = 0; i < ops.size(); ++i) {
      absl::Status st = q.engine->Submit(ops[i]);
      if (!st.ok()) {  // the rest never reach the kernel: fail the request once they drain
        s.failed = true;
        s.pending -= static_cast<uint32_t>(ops.size() - i);
        if (s.pending == 0) {
          q.inflight--;
          complete(q, head, kStatusIoErr, 1);
        }
        break;
      }
    }
  };
  auto process = [&](Queue& q, size_t qi) {
    bool armed = false;
    q.vq->SuppressNotifications();
    while (!q.broken) {
      auto head = q.vq->PopHead();
      if (!head.ok()) return broken(q, head.status());
      if (!*head) {
        if (armed) break;
        q.vq->ArmNotification();  // then look once more: the driver may have raced us
        armed = true;
        continue;
      }
      armed = false;
      if (q.slots[**head].busy) {
        return broken(q, absl::InvalidArgumentError("driver reused a head still in flight"));
      }
      auto chain = q.vq->ReadChain(**head);
      if (!chain.ok()) return broken(q, chain.status());
      auto req = ParseBlockRequest(mem, *chain, limits_);
      if (!req.ok()) return broken(q, req.status());
      start(q, qi, **head, std::move(*req));
    }
    q.engine->Kick();
  };
  auto reap = [&](Queue& q) {
    q.engine->Reap([&](uint64_t tag, int64_t res) {
      Slot& s = q.slots[tag & 0xffff];
      const BlockRequest& r = s.req;
      const bool rw = r.type == kTypeIn || r.type == kTypeOut;
      if (res < 0 || (rw && static_cast<uint64_t>(res) != r.data_len)) {
        if (!s.failed && res < 0) {
          spdlog::debug("{}: host I/O error: {}", thread_name_, strerror(static_cast<int>(-res)));
        }
        s.failed = true;
      }
      if (--s.pending > 0) return;
      q.inflight--;
      if (!q.broken) complete(q, tag & 0xffff, s.failed ? kStatusIoErr : kStatusOk, r.used_len);
    });
  };
  auto maybe_interrupt = [&](Queue& q) {
    if (q.vq && !q.broken && q.vq->ShouldInterrupt()) irq.Signal(virtio::kInterruptUsedBuffer);
  };

  // Waits for the host I/O in flight on every queue. `finish` completes the requests normally
  // (a swap); otherwise they are dropped (reset or teardown: the rings are not ours any more).
  auto drain = [&](bool finish) {
    for (Queue& q : queues) {
      while (q.inflight > 0) {
        pollfd p{q.engine->event_fd(), POLLIN, 0};
        poll(&p, 1, 100);
        if (!finish) q.broken = true;  // completions must not touch the rings any more
        reap(q);
      }
      if (finish) maybe_interrupt(q);
    }
  };
  // PATCH /drives: switch every queue's engine to the new file, then tell the driver.
  auto swap = [&] {
    uint64_t v;
    [[maybe_unused]] ssize_t r = read(swap_fd_.get(), &v, sizeof(v));
    std::unique_lock lock(pending_mu_);
    if (!pending_) return;
    drain(/*finish=*/true);
    std::vector<std::unique_ptr<IoEngine>> fresh;
    absl::Status st;
    for (size_t i = 0; i < queues.size() && st.ok(); ++i) {
      auto e = engine_kind_ == IoEngine::Kind::kUring
                   ? CreateUringEngine(pending_->fd.get(), kQueueSize)
                   : CreateSyncEngine(pending_->fd.get());
      if (e.ok()) {
        fresh.push_back(std::move(*e));
      } else {
        st = e.status();
      }
    }
    if (st.ok()) {
      for (size_t i = 0; i < queues.size(); ++i) {
        if (queues[i].vq) {
          epoll_ctl(ep.get(), EPOLL_CTL_DEL, queues[i].engine->event_fd(), nullptr);
          watch(fresh[i]->event_fd(), 2 * i + 1);
        }
        queues[i].engine = std::move(fresh[i]);  // the old engine closes its ring
      }
      InstallBacking(std::move(*pending_));
      irq.Signal(virtio::kInterruptConfigChange);
    }
    pending_.reset();
    pending_result_ = st;
    pending_cv_.notify_all();
  };

  bool running = true;
  while (running) {
    epoll_event evs[16];
    int n = epoll_wait(ep.get(), evs, 16, -1);
    for (int i = 0; i < n; ++i) {
      const uint64_t tag = evs[i].data.u64;
      if (tag == kStopTag) {
        running = false;
        break;
      }
      if (tag == kSwapTag) {
        swap();
        continue;
      }
      const size_t qi = tag / 2;
      Queue& q = queues[qi];
      if (tag % 2 == 0) {
        uint64_t v;
        [[maybe_unused]] ssize_t r = read(args.notify_fds[qi], &v, sizeof(v));
        process(q, qi);
      } else {
        reap(q);
        // Completions free slots; anything the driver queued meanwhile is picked up now.
        process(q, qi);
      }
      maybe_interrupt(q);
    }
  }
  // Reset or teardown: wait for the host I/O that still points into guest memory.
  drain(/*finish=*/false);
  // A swap that raced with the reset: nothing is in flight any more, so install it here.
  std::lock_guard lock(pending_mu_);
  if (pending_) {
    InstallBacking(std::move(*pending_));
    pending_.reset();
    pending_result_ = absl::OkStatus();
    pending_cv_.notify_all();
  }
}

}  // namespace edgevisor::block
