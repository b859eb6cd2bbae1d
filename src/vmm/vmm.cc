#include "src/vmm/vmm.h"

#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "nlohmann/json.hpp"
#include "src/base/errors.h"
#include "src/base/event_fd.h"
#include "src/base/event_set.h"
#include "src/base/log.h"

namespace edgevisor {
namespace {

int KickSignal() { return SIGRTMIN; }
void NoopHandler(int) {}

// When the main thread checks whether every vCPU has parked (halted with interrupts off). The
// in-kernel LAPIC handles HLT without an exit, so only a look at each vCPU (a kick, then its MP
// state and flags) tells. A vCPU can only park by running guest code, so the checks follow the
// guest's exits to the VMM: 50 ms after the last one, then 4x further apart each time, and none
// after the one at 51.2 s (68 s after the last exit). The next exit starts them again. An idle
// guest therefore costs no wake-ups at all once its checks have run out.
constexpr int64_t kParkCheckFirstNs = 50'000'000;
constexpr int64_t kParkCheckLastNs = 51'200'000'000;
constexpr int kParkCheckBackoff = 4;

const char* ExitReasonName(uint32_t r) {
  switch (r) {
    case KVM_EXIT_UNKNOWN:
      return "UNKNOWN";
    case KVM_EXIT_EXCEPTION:
      return "EXCEPTION";
    case KVM_EXIT_SHUTDOWN:
      return "SHUTDOWN";
    case KVM_EXIT_FAIL_ENTRY:
      return "FAIL_ENTRY";
    case KVM_EXIT_INTERNAL_ERROR:
      return "INTERNAL_ERROR";
    default:
      return "other";
  }
}

const char* InternalSuberrorName(uint32_t s) {
  switch (s) {
    case KVM_INTERNAL_ERROR_EMULATION:
      return "emulation failure";
    case KVM_INTERNAL_ERROR_SIMUL_EX:
      return "simultaneous exceptions";
    case KVM_INTERNAL_ERROR_DELIVERY_EV:
      return "event delivery failure";
    default:
      return "unknown";
  }
}

// Software or nested virtualization, where KVM's instruction emulator is far less complete.
std::string HostKvmHint() {
  if (access("/sys/module/kvm_pvm", F_OK) == 0) {
    return " hint: this host's KVM is PVM (software virtualization nested in a VM); stock Linux "
           "kernels fail here on instructions it cannot emulate. Use the nested rig (tools/rig).";
  }
  return "";
}

}  // namespace

Vmm::Vmm(VmParts parts)
    : p_(std::move(parts)),
      kvm_hint_(HostKvmHint()),  // now: a vCPU's filter has no access(2)
      counters_(new VcpuCounters[p_.vcpus.size()]),
      parked_(new std::atomic<bool>[p_.vcpus.size()]) {
  for (size_t i = 0; i < p_.vcpus.size(); ++i) parked_[i] = false;
  if (p_.start_paused) pause_requested_ = true;
  absl::StatusOr<EventFd> activity = EventFd::Create("guest activity");
  if (activity.ok()) {
    activity_ = *std::move(activity);
  } else {
    spdlog::warn("{}; checks for a halted guest stop after its first minute",
                 activity.status().message());
  }
}

Vmm::~Vmm() {
  std::vector<std::thread> threads;
  {
    absl::MutexLock lock(&start_mu_);
    if (!threads_.empty()) {
      p_.stop->Request(StopReason::kVmmError, kExitVmmError, "VM destroyed while running");
      KickAll();
    }
    threads = std::move(threads_);
  }
  // Joined without start_mu_: Pause takes it while holding pause_mu_, which vCPUs need to exit.
  for (std::thread& t : threads) {
    if (t.joinable()) t.join();
  }
}

void Vmm::BlockProcessSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, KickSignal());
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  struct sigaction sa {};
  sa.sa_handler = NoopHandler;  // no SA_RESTART: the kick must interrupt KVM_RUN
  sigaction(KickSignal(), &sa, nullptr);
}

void Vmm::KickAll() {
  for (size_t i = 0; i < threads_.size(); ++i) {
    p_.vcpus[i]->RequestImmediateExit();
    pthread_kill(threads_[i].native_handle(), KickSignal());
  }
}

absl::Status Vmm::Start() {
  absl::MutexLock lock(&start_mu_);
  if (!threads_.empty()) return absl::OkStatus();
  for (size_t i = 0; i < p_.vcpus.size(); ++i) {
    threads_.emplace_back([this, i] { VcpuThread(i); });
  }
  // What building the VM allocated and freed goes back to the host now instead of staying in
  // the heap for the VM's whole life. Before the filter: a first call may initialize malloc
  // (getrandom), as it does under the sanitizers, whose allocator leaves glibc's unused.
  malloc_trim(0);
  absl::Status s = InstallThreadFilter(p_.filters.main.get());
  if (!s.ok()) {
    p_.stop->Request(StopReason::kVmmError, kExitVmmError, std::string(s.message()));
  } else if (p_.filters.main) {
    spdlog::debug("seccomp filters installed: main, {} vCPU(s)", p_.vcpus.size());
  }
  go_.Notify();  // with a stop requested, the vCPUs exit without entering the guest
  return s;
}

absl::Status Vmm::Pause() {
  absl::MutexLock lock(&pause_mu_);
  if (p_.stop->requested()) return absl::FailedPreconditionError("the VM is stopping");
  pause_requested_.store(true, std::memory_order_release);
  {
    absl::MutexLock start_lock(&start_mu_);
    KickAll();
  }
  // A vCPU leaves KVM_RUN within one kick; the bound only guards against a wedged host. (A
  // waiter's condition is evaluated again whenever pause_mu_ is released.)
  if (!pause_mu_.AwaitWithTimeout(absl::Condition(this, &Vmm::AllPausedOrStopping),
                                  absl::Seconds(5))) {
    pause_requested_.store(false, std::memory_order_release);  // the paused ones go on
    return absl::DeadlineExceededError("vCPUs did not pause within 5 s");
  }
  if (paused_count_ != p_.vcpus.size()) return absl::FailedPreconditionError("the VM is stopping");
  spdlog::info("VM paused");
  return absl::OkStatus();
}

absl::Status Vmm::Resume() {
  absl::MutexLock lock(&pause_mu_);
  if (p_.stop->requested()) return absl::FailedPreconditionError("the VM is stopping");
  // Devices a snapshot stopped start again where they were, before the vCPUs run.
  for (auto& t : p_.virtio_devices) {
    if (absl::Status s = t->Unquiesce(); !s.ok()) {
      spdlog::error("a virtio device did not start again after the snapshot: {}", s.message());
    }
  }
  if (pause_requested_.exchange(false, std::memory_order_acq_rel)) spdlog::info("VM resumed");
  return absl::OkStatus();  // releasing pause_mu_ wakes the paused vCPUs
}

bool Vmm::AllPausedOrStopping() const {
  return paused_count_ == p_.vcpus.size() || p_.stop->requested();
}

bool Vmm::ResumedOrStopping() const {
  return !pause_requested_.load(std::memory_order_acquire) || p_.stop->requested();
}

absl::Status Vmm::ReplaceDriveBacking(const std::string& id, const std::string& path) {
  for (auto& [drive_id, dev] : p_.blocks) {
    if (drive_id != id) continue;
    EV_RETURN_IF_ERROR(dev->ReplaceBacking(path));
    for (DriveConfig& d : p_.config.drives) {
      if (d.id == id) d.path = path;  // a snapshot reopens the file the drive has now
    }
    return absl::OkStatus();
  }
  return absl::NotFoundError(absl::StrFormat("no drive '%s'", id));
}

absl::Status Vmm::UpdateDriveRateLimiter(const std::string& id, const RateLimiterConfig& cfg) {
  for (auto& [drive_id, dev] : p_.blocks) {
    if (drive_id != id) continue;
    dev->UpdateRateLimiter(cfg);
    for (DriveConfig& d : p_.config.drives) {
      if (d.id == id) d.rate_limiter = cfg;  // a snapshot keeps the limits the drive has now
    }
    return absl::OkStatus();
  }
  return absl::NotFoundError(absl::StrFormat("no drive '%s'", id));
}

absl::Status Vmm::UpdateNetRateLimiters(const std::string& id, const RateLimiterConfig* rx,
                                        const RateLimiterConfig* tx) {
  for (auto& [iface_id, dev] : p_.nets) {
    if (iface_id != id) continue;
    dev->UpdateRateLimiters(rx, tx);
    for (NetConfig& n : p_.config.nets) {
      if (n.id != id) continue;
      if (rx) n.rx_rate_limiter = *rx;
      if (tx) n.tx_rate_limiter = *tx;
    }
    return absl::OkStatus();
  }
  return absl::NotFoundError(absl::StrFormat("no network interface '%s'", id));
}

absl::Status Vmm::UpdateBalloon(uint32_t amount_mib) {
  if (!p_.balloon) return absl::FailedPreconditionError("balloon: this VM has no balloon device");
  EV_RETURN_IF_ERROR(CheckBalloonFits(amount_mib, p_.config.machine.mem_mib, "amount_mib"));
  p_.balloon->SetTargetMib(amount_mib);
  p_.config.balloon->amount_mib = amount_mib;  // a snapshot keeps the target it has now
  return absl::OkStatus();
}

absl::Status Vmm::UpdateBalloonStatsInterval(uint32_t seconds) {
  if (!p_.balloon) return absl::FailedPreconditionError("balloon: this VM has no balloon device");
  EV_RETURN_IF_ERROR(p_.balloon->SetStatsInterval(seconds));
  p_.config.balloon->stats_polling_interval_s = seconds;
  return absl::OkStatus();
}

absl::StatusOr<balloon::BalloonStats> Vmm::BalloonStatistics() const {
  if (!p_.balloon) return absl::FailedPreconditionError("balloon: this VM has no balloon device");
  if (!p_.balloon->stats_enabled()) {
    return absl::FailedPreconditionError(
        "balloon: statistics are not enabled (stats_polling_interval_s was 0 at boot)");
  }
  return p_.balloon->Stats();
}

absl::Status Vmm::SendCtrlAltDel() {
  if (!p_.i8042) return absl::FailedPreconditionError("this machine has no i8042 keyboard");
  if (!p_.i8042->SendCtrlAltDel()) {
    return absl::ResourceExhaustedError(
        "the guest is not reading its keyboard: the i8042 buffer is full");
  }
  return absl::OkStatus();
}

namespace {

// Adds every counter of `part` into `total` (created on first use).
void AddCounters(Json& total, const Json& part) {
  for (const auto& [k, v] : part.items()) {
    total[k] = (total.contains(k) ? total[k].get<uint64_t>() : 0) + v.get<uint64_t>();
  }
}

}  // namespace

Json Vmm::Counters() const {
  // Per device under its own key, and the sum of each kind ("vcpu", "block", "net").
  Json out = Json::object();
  for (size_t i = 0; i < p_.vcpus.size(); ++i) {
    const VcpuCounters& c = counters_[i];
    Json v{{"exit_io_in", c.io_in.load()},
           {"exit_io_out", c.io_out.load()},
           {"exit_mmio_read", c.mmio_read.load()},
           {"exit_mmio_write", c.mmio_write.load()},
           {"failures", c.failures.load()}};
    AddCounters(out["vcpu"], v);
    out[absl::StrFormat("vcpu_%d", i)] = std::move(v);
  }
  for (const auto& [id, dev] : p_.counted) {
    Json d = Json::object();
    for (const auto& [name, value] : dev->Counters()) d[name] = value;
    const std::string group = dev->counter_group();
    AddCounters(out[group], d);
    out[group + "_" + id] = std::move(d);
  }
  return out;
}

namespace {

// What wakes the main thread.
enum class MainEvent : uint32_t {
  kSignal,
  kParkCheck,
  kActivity,
  kMetricsTick,
  kStop,
  kConsoleInput,
  kConsoleRoom,
  kRequest
};

timespec Nanoseconds(int64_t ns) {
  return {static_cast<time_t>(ns / 1'000'000'000),
          static_cast<long>(ns % 1'000'000'000)};  // NOLINT(runtime/int)
}

// A timer: first expiry after `first` ns, then every `period` ns (0: once).
absl::StatusOr<UniqueFd> Timer(int64_t first, int64_t period, const char* what) {
  UniqueFd fd(timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK));
  if (!fd.valid()) return ErrnoError(absl::StrCat("timerfd for ", what));
  itimerspec its{};
  its.it_value = Nanoseconds(first);
  its.it_interval = Nanoseconds(period);
  if (timerfd_settime(fd.get(), 0, &its, nullptr) != 0) {
    return ErrnoError(absl::StrCat("timerfd_settime for ", what));
  }
  return fd;
}

}  // namespace

// The main thread's wait set and what it owns.
struct Vmm::MainLoop {
  EventSet events;
  UniqueFd signals, park_check, metrics_tick;
  EventFd console_room;       // the guest made room in a full console FIFO
  int64_t park_delay_ns = 0;  // the park check's current delay; 0: not armed
  bool input_on = false;      // console input is in `events`
};

void Vmm::ArmParkCheck(MainLoop& loop, int64_t delay_ns) {
  if (delay_ns > kParkCheckFirstNs) {
    // Backing off: the next exit must bring the checks back. Announce that before looking at
    // activity_seen_ (both sequentially consistent, as the vCPU's side): an exit either sees
    // the request or is seen here.
    wake_on_activity_.store(true);
    if (activity_seen_.exchange(false)) delay_ns = kParkCheckFirstNs;
  }
  if (delay_ns > kParkCheckLastNs) {
    delay_ns = 0;  // the checks have run out until the guest's next exit
  }
  loop.park_delay_ns = delay_ns;
  itimerspec its{};
  its.it_value = Nanoseconds(delay_ns);
  if (timerfd_settime(loop.park_check.get(), 0, &its, nullptr) != 0) {
    spdlog::warn("the halted-guest check: timerfd_settime: {}", strerror(errno));
  }
}

void Vmm::NoteActivity() {
  activity_seen_.store(true);
  if (wake_on_activity_.load() && wake_on_activity_.exchange(false) && activity_.valid()) {
    activity_.Signal();
  }
}

absl::Status Vmm::SetUpMainLoop(MainLoop& loop) {
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  loop.signals.Reset(signalfd(-1, &sigs, SFD_CLOEXEC | SFD_NONBLOCK));
  if (!loop.signals.valid()) return ErrnoError("signalfd");
  EV_RETURN_IF_ERROR(loop.events.Watch(loop.signals.get(), EventId::Of(MainEvent::kSignal)));
  EV_ASSIGN_OR_RETURN(loop.park_check, Timer(0, 0, "the halted-guest check"));
  EV_RETURN_IF_ERROR(loop.events.Watch(loop.park_check.get(), EventId::Of(MainEvent::kParkCheck)));
  if (activity_.valid()) {
    EV_RETURN_IF_ERROR(loop.events.Watch(activity_.fd(), EventId::Of(MainEvent::kActivity)));
  }
  ArmParkCheck(loop, kParkCheckFirstNs);
  if (metrics_) {  // nothing else wakes an idle VMM
    const int64_t period = int64_t{MetricsWriter::kPeriodSeconds} * 1'000'000'000;
    EV_ASSIGN_OR_RETURN(loop.metrics_tick, Timer(period, period, "the metrics"));
    EV_RETURN_IF_ERROR(
        loop.events.Watch(loop.metrics_tick.get(), EventId::Of(MainEvent::kMetricsTick)));
  }
  EV_RETURN_IF_ERROR(loop.events.Watch(p_.stop->event_fd(), EventId::Of(MainEvent::kStop)));
  if (request_fd_ >= 0) {
    EV_RETURN_IF_ERROR(loop.events.Watch(request_fd_, EventId::Of(MainEvent::kRequest)));
  }
  if (!p_.uart) p_.serial_input_fd = -1;
  if (p_.serial_input_fd >= 0) {
    absl::Status s = loop.events.Watch(p_.serial_input_fd, EventId::Of(MainEvent::kConsoleInput));
    loop.input_on = s.ok();
    if (!s.ok()) {
      // epoll refuses regular files (EPERM) and closed fds: run without console input.
      spdlog::debug("console input disabled: stdin cannot be polled ({})", s.message());
      p_.serial_input_fd = -1;
    }
  }
  if (p_.serial_input_fd >= 0) {
    // Input stops while the guest's FIFO is full, and goes on when the UART says it has room.
    EV_ASSIGN_OR_RETURN(loop.console_room, EventFd::Create("console room"));
    EV_RETURN_IF_ERROR(
        loop.events.Watch(loop.console_room.fd(), EventId::Of(MainEvent::kConsoleRoom)));
    p_.uart->SetOnRoom([fd = loop.console_room.fd()] { SignalEventFd(fd); });
  }
  return absl::OkStatus();
}

void Vmm::OnMainEvent(MainLoop& loop, EventId id) {
  if (id.Is(MainEvent::kSignal)) {
    signalfd_siginfo si{};
    if (read(loop.signals.get(), &si, sizeof(si)) == sizeof(si)) {
      p_.stop->Request(StopReason::kSignal, kExitOk,
                       absl::StrFormat("stopped by signal %s", strsignal(si.ssi_signo)));
    }
  } else if (id.Is(MainEvent::kParkCheck)) {
    DrainEventFd(loop.park_check.get());  // a timerfd reads like an eventfd: its expiry count
    {
      absl::MutexLock lock(&start_mu_);
      KickAll();  // each vCPU re-checks whether it is parked
    }
    const bool active = activity_seen_.exchange(false);
    ArmParkCheck(loop, active ? kParkCheckFirstNs : loop.park_delay_ns * kParkCheckBackoff);
  } else if (id.Is(MainEvent::kActivity)) {
    activity_.Drain();
    if (loop.park_delay_ns != kParkCheckFirstNs) ArmParkCheck(loop, kParkCheckFirstNs);
  } else if (id.Is(MainEvent::kConsoleRoom)) {
    loop.console_room.Drain();
    if (!loop.input_on && p_.serial_input_fd >= 0 && p_.uart->InputSpace() > 0) {
      loop.input_on =
          loop.events.Watch(p_.serial_input_fd, EventId::Of(MainEvent::kConsoleInput)).ok();
    }
  } else if (id.Is(MainEvent::kMetricsTick)) {
    DrainEventFd(loop.metrics_tick.get());
    if (metrics_) {
      if (absl::Status s = metrics_->Flush(Counters()); !s.ok()) spdlog::warn("{}", s.message());
    }
  } else if (id.Is(MainEvent::kConsoleInput)) {
    OnConsoleInput(loop);
  } else if (id.Is(MainEvent::kRequest)) {
    on_request_();
  }  // kStop: the loop condition sees it
}

void Vmm::OnConsoleInput(MainLoop& loop) {
  uint8_t buf[Uart16550::kRxFifoSize];
  const size_t space = p_.uart->InputSpace();
  if (space == 0) {  // the guest is not draining; go on when it makes room (kConsoleRoom)
    if (absl::Status s = loop.events.Unwatch(p_.serial_input_fd); !s.ok()) {
      spdlog::warn("console input: {}", s.message());
    }
    loop.input_on = false;
    return;
  }
  ssize_t r = read(p_.serial_input_fd, buf, space);
  if (r > 0) {
    p_.uart->EnqueueInput(absl::MakeSpan(buf, static_cast<size_t>(r)));
  } else if (r == 0 || (errno != EINTR && errno != EAGAIN)) {
    // EOF (or a read error): no more console input.
    if (absl::Status s = loop.events.Unwatch(p_.serial_input_fd); !s.ok()) {
      spdlog::warn("console input: {}", s.message());
    }
    p_.serial_input_fd = -1;
    loop.input_on = false;
  }
}

int Vmm::Run() {
  if (absl::Status s = Start(); !s.ok()) {
    spdlog::error("{}", s.message());
    return kExitVmmError;
  }
  MainLoop loop;
  if (absl::Status s = SetUpMainLoop(loop); !s.ok()) {
    p_.stop->Request(StopReason::kVmmError, kExitVmmError,
                     absl::StrCat("main loop setup failed: ", s.message()));
  }
  while (!p_.stop->requested()) {
    EventId ready[8];
    absl::StatusOr<size_t> n = loop.events.Wait(absl::MakeSpan(ready));
    if (!n.ok()) {
      p_.stop->Request(StopReason::kVmmError, kExitVmmError, std::string(n.status().message()));
      break;
    }
    for (size_t i = 0; i < *n; ++i) OnMainEvent(loop, ready[i]);
  }
  return Finish();
}

int Vmm::Finish() {
  if (p_.uart) p_.uart->SetOnRoom(nullptr);  // its eventfd belongs to the main loop
  {
    absl::MutexLock lock(&pause_mu_);  // on release, paused vCPUs see the stop and exit
  }
  std::vector<std::thread> threads;
  {
    absl::MutexLock lock(&start_mu_);
    KickAll();
    threads = std::move(threads_);
    threads_.clear();
  }
  for (std::thread& t : threads) t.join();  // without start_mu_: see ~Vmm
  if (metrics_) {
    if (absl::Status s = metrics_->Flush(Counters()); !s.ok()) spdlog::warn("{}", s.message());
  }

  const StopInfo info = *p_.stop->info();
  if (p_.boot_timer && !p_.boot_timer->boot_time()) {
    spdlog::debug("boot timer: the guest never wrote the boot-complete marker");
  }
  if (info.reason == StopReason::kGuestCrash || info.reason == StopReason::kVmmError) {
    spdlog::error("{}", info.message);
  } else {
    spdlog::info("{} (exit code {})", info.message, info.exit_code);
  }
  return info.exit_code;
}

void Vmm::VcpuThread(size_t index) {
  Vcpu& vcpu = *p_.vcpus[index];
  pthread_setname_np(pthread_self(), absl::StrFormat("vcpu%d", index).c_str());
  if (absl::Status s = InstallThreadFilter(p_.filters.vcpu.get()); !s.ok()) {
    p_.stop->Request(StopReason::kVmmError, kExitVmmError, std::string(s.message()));
  }
  go_.WaitForNotification();
  sigset_t kick;
  sigemptyset(&kick);
  sigaddset(&kick, KickSignal());
  pthread_sigmask(SIG_UNBLOCK, &kick, nullptr);

  while (!p_.stop->requested()) {
    if (pause_requested_.load(std::memory_order_acquire)) {
      CompleteIo(vcpu);
      absl::MutexLock lock(&pause_mu_);
      ++paused_count_;
      pause_mu_.Await(absl::Condition(this, &Vmm::ResumedOrStopping));
      --paused_count_;
      continue;
    }
    absl::Status s = vcpu.Run();
    if (!s.ok()) {
      counters_[index].failures.fetch_add(1, std::memory_order_relaxed);
      p_.stop->Request(StopReason::kVmmError, kExitVmmError, std::string(s.message()));
      break;
    }
    if (!HandleExit(vcpu)) break;
  }
}

void Vmm::CompleteIo(Vcpu& vcpu) {
  // KVM finishes an I/O or MMIO exit (a read's value into its register, RIP past the
  // instruction) only in the next KVM_RUN; until then the registers a snapshot saves are half
  // way through it. With immediate_exit set, KVM_RUN completes it and returns without running
  // the guest.
  const uint32_t reason = vcpu.run()->exit_reason;
  if (reason != KVM_EXIT_MMIO && reason != KVM_EXIT_IO) return;
  vcpu.RequestImmediateExit();
  if (absl::Status s = vcpu.Run(); !s.ok()) {
    spdlog::warn("vcpu{}: completing its last I/O exit before the pause: {}", vcpu.index(),
                 s.message());
  }
}

void Vmm::CheckParked(Vcpu& vcpu) {
  auto mp = vcpu.GetMpState();
  bool parked = false;
  if (mp.ok() && mp->mp_state == KVM_MP_STATE_UNINITIALIZED) {
    parked = vcpu.index() != 0;
  } else if (mp.ok() && mp->mp_state == KVM_MP_STATE_HALTED) {
#if defined(__x86_64__)
    auto regs = vcpu.GetRegs();
    parked = regs.ok() && !(regs->rflags & (1u << 9));  // IF clear: nothing can wake it
#endif
  }
  parked_[vcpu.index()] = parked;
  if (!parked) return;
  for (size_t i = 0; i < p_.vcpus.size(); ++i) {
    if (!parked_[i]) return;
  }
  p_.stop->Request(StopReason::kGuestHalted, kExitOk, "guest halted with interrupts disabled");
}

void Vmm::Crash(Vcpu& vcpu, const std::string& what, bool emulator_limit) {
  std::string where;
#if defined(__x86_64__)
  if (auto regs = vcpu.GetRegs(); regs.ok()) where = absl::StrFormat(" at RIP 0x%x", regs->rip);
#endif
  p_.stop->Request(StopReason::kGuestCrash, kExitGuestCrash,
                   absl::StrFormat("vcpu%d: %s%s.%s", vcpu.index(), what, where,
                                   emulator_limit ? kvm_hint_ : ""));
}

#if defined(__x86_64__)
void Vmm::HandleIo(Vcpu& vcpu) {
  kvm_run* run = vcpu.run();
  (run->io.direction == KVM_EXIT_IO_OUT ? counters_[vcpu.index()].io_out
                                        : counters_[vcpu.index()].io_in)
      .fetch_add(1, std::memory_order_relaxed);
  auto* data = reinterpret_cast<uint8_t*>(run) + run->io.data_offset;
  for (uint32_t i = 0; i < run->io.count; ++i) {
    auto span = absl::MakeSpan(data + i * run->io.size, run->io.size);
    if (run->io.direction == KVM_EXIT_IO_OUT) {
      if (!p_.pio->Write(run->io.port, span)) {
        spdlog::trace("pio write to unclaimed port 0x{:x}", run->io.port);
      }
    } else if (!p_.pio->Read(run->io.port, span)) {
      std::fill(span.begin(), span.end(), 0xff);  // floating bus
    }
  }
}
#endif

void Vmm::HandleMmio(Vcpu& vcpu) {
  kvm_run* run = vcpu.run();
  (run->mmio.is_write ? counters_[vcpu.index()].mmio_write : counters_[vcpu.index()].mmio_read)
      .fetch_add(1, std::memory_order_relaxed);
  auto span = absl::MakeSpan(run->mmio.data, std::min<uint32_t>(run->mmio.len, 8));
  if (run->mmio.is_write) {
    if (!p_.mmio->Write(run->mmio.phys_addr, span)) {
      spdlog::trace("mmio write to unclaimed 0x{:x}", run->mmio.phys_addr);
    }
  } else if (!p_.mmio->Read(run->mmio.phys_addr, span)) {
    std::fill(span.begin(), span.end(), 0xff);
  }
}

bool Vmm::HandleExit(Vcpu& vcpu) {
  kvm_run* run = vcpu.run();
  switch (run->exit_reason) {
    case KVM_EXIT_INTR:
      CheckParked(vcpu);
      return true;
#if defined(__x86_64__)
    case KVM_EXIT_IO:
      NoteActivity();
      HandleIo(vcpu);
      return true;
    case KVM_EXIT_HLT: {
      // Only without an in-kernel LAPIC. Interrupts off means nothing will ever wake it.
      auto regs = vcpu.GetRegs();
      if (regs.ok() && !(regs->rflags & (1u << 9))) {
        p_.stop->Request(StopReason::kGuestHalted, kExitOk,
                         "guest halted with interrupts disabled");
        return false;
      }
      return true;
    }
#endif
    case KVM_EXIT_MMIO:
      NoteActivity();
      HandleMmio(vcpu);
      return true;
    case KVM_EXIT_SYSTEM_EVENT:
      if (run->system_event.type == KVM_SYSTEM_EVENT_RESET) {
        p_.stop->Request(StopReason::kGuestReset, p_.reboot_exit_code, "guest requested reset");
      } else {
        p_.stop->Request(StopReason::kGuestPowerOff, kExitOk, "guest powered off");
      }
      return false;
    case KVM_EXIT_SHUTDOWN:
      Crash(vcpu, "guest shutdown (triple fault)");
      return false;
    case KVM_EXIT_FAIL_ENTRY:
      Crash(vcpu,
            absl::StrFormat("KVM_EXIT_FAIL_ENTRY, hardware reason 0x%x",
                            run->fail_entry.hardware_entry_failure_reason),
            /*emulator_limit=*/true);
      return false;
    case KVM_EXIT_INTERNAL_ERROR: {
      std::vector<std::string> words;
      for (uint32_t i = 0; i < run->internal.ndata && i < 16; ++i) {
        words.push_back(absl::StrFormat("0x%x", run->internal.data[i]));
      }
      Crash(
          vcpu,
          absl::StrFormat("KVM internal error, suberror %d (%s), data [%s]", run->internal.suberror,
                          InternalSuberrorName(run->internal.suberror), absl::StrJoin(words, " ")),
          /*emulator_limit=*/true);
      return false;
    }
    default:
      Crash(vcpu, absl::StrFormat("unhandled KVM exit reason %d (%s)", run->exit_reason,
                                  ExitReasonName(run->exit_reason)));
      return false;
  }
}

}  // namespace edgevisor
