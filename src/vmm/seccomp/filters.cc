#include "src/vmm/seccomp/filters.h"

#include <linux/if_tun.h>
#include <linux/kvm.h>
#include <malloc.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <future>
#include <initializer_list>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/internal/sysinfo.h"
#include "absl/strings/str_format.h"
#include "src/base/errors.h"
#include "src/base/fd.h"
#include "src/platform/kvm_abi.h"

namespace edgevisor::seccomp {
namespace {

using Names = std::initializer_list<const char*>;

// Every thread: memory, locks, time, logging, its own exit, and the report's write.
constexpr Names kCommon = {
    "read",
    "write",
    "close",
    "futex",
    "exit",
    "exit_group",
    "rt_sigreturn",
    "rt_sigprocmask",
    "mmap",
    "munmap",
    "mprotect",
    "madvise",
    "mremap",
    "brk",
    "clock_gettime",
    // Abseil's timed waits (Mutex::AwaitWithTimeout) read the time with gettimeofday. The vDSO
    // answers it and clock_gettime without a syscall, except where the clocksource cannot be
    // read from user space (a VM on hpet or acpi_pm, the nested rig's TCG machine): found when
    // the rig's pause for a snapshot killed the VMM with SIGSYS.
    "gettimeofday",
    "time",
    "clock_nanosleep",
    "nanosleep",
    "sched_yield",
    "gettid",
    "getpid",
    "restart_syscall",
    "rseq",
    // absl::Mutex reads a waiter's priority (pthread_getschedparam) on its slow path.
    "sched_getparam",
    "sched_getscheduler",
#if defined(EV_SANITIZERS)
    // The sanitizer runtimes (a sanitizer build only): their allocator and thread bookkeeping.
    // Their reports would need /proc (open) and are cut short: the report line names the
    // syscall. LeakSanitizer's exit-time check is off in that build's VMM (main.cc).
    "sigaltstack",
    "getrlimit",
    "prlimit64",
    "sched_getaffinity",
    "pipe2",
    "pipe",
#endif
};

// Waiting on fds: epoll (our EventSet) and poll (libmicrohttpd, the legacy paths).
constexpr Names kWait = {"epoll_wait", "epoll_pwait", "epoll_ctl", "poll",
                         "ppoll",      "select",      "pselect6"};

// What a vCPU does on an exit beyond KVM_RUN: device activation and reset build io_uring
// engines, eventfds and worker event sets, and set a TAP's offloads.
constexpr Names kVcpu = {
    "eventfd2", "io_uring_setup", "io_uring_register", "epoll_create1", "timerfd_settime", "fcntl",
    "dup"};

constexpr Names kMain = {"openat", "open", "fstat", "newfstatat", "statx", "lseek", "fcntl",
                         "eventfd2", "timerfd_settime", "fsync", "fdatasync", "unlink",
                         // aarch64 has no unlink: the API socket is removed with unlinkat.
                         "unlinkat", "shutdown", "epoll_create1", "io_uring_setup",
                         "io_uring_enter", "pread64", "pwrite64", "ftruncate",
                         // The main loop's set-up, when InstanceStart came first.
                         "signalfd4", "signalfd", "timerfd_create",
                         // A refused lock names its holder from /proc/PID/fdinfo.
                         "getdents64",
                         // After a snapshot, the devices start again (as on a vCPU's DRIVER_OK).
                         // Its files are renamed into place once complete.
                         "io_uring_register", "dup", "rename", "renameat", "renameat2"};

constexpr Names kApi = {"accept", "accept4", "recvfrom", "recvmsg", "sendto", "sendmsg", "writev",
                        "shutdown", "fcntl", "setsockopt", "getsockopt", "getsockname", "eventfd2",
                        "pipe2",
                        // Thread start (the spawner's pthread_create, then the new thread);
                        // clone itself is limited to threads (AllowThreadsOnly).
                        "set_robust_list", "sched_getaffinity"};

constexpr Names kBlock = {"io_uring_enter", "io_uring_setup", "io_uring_register", "pread64",
                          "pwrite64", "preadv", "pwritev", "preadv2", "pwritev2", "fsync",
                          "fdatasync", "fallocate", "eventfd2", "fstat", "newfstatat",
                          // the rate limiter's timer
                          "timerfd_settime"};

// readv/writev on the TAP, the limiters' timers; getrandom for MMDS (session tokens, TCP's
// initial sequence numbers).
constexpr Names kNet = {"readv", "writev", "eventfd2", "timerfd_settime", "getrandom"};

// The entropy device: the host's random bytes, and its rate limiter's timer.
constexpr Names kRng = {"getrandom", "timerfd_settime"};
// The balloon: releasing guest pages is madvise (common); the statistics timer.
constexpr Names kBalloon = {"timerfd_settime"};

// vsock: the host side's Unix sockets (socket() itself is limited to AF_UNIX, AllowUnixSockets)
// and the set-up deadline timer.
constexpr Names kVsock = {"accept", "accept4",  "connect",        "recvfrom",
                          "sendto", "shutdown", "timerfd_settime"};

[[maybe_unused]] constexpr Names kRtc = {"timerfd_settime", "timerfd_gettime"};

// ioctl requests, by role (the third argument of each rule: the request, compared as the
// 32-bit unsigned int the kernel reads).
using Requests = std::vector<uint64_t>;

Requests VcpuIoctls() {
  return {
    KVM_RUN, KVM_GET_MP_STATE, KVM_IRQ_LINE, KVM_IRQFD, KVM_IOEVENTFD, TUNSETOFFLOAD,
#if defined(__x86_64__)
        KVM_GET_REGS, KVM_GET_SREGS,
#elif defined(__aarch64__)
        KVM_GET_ONE_REG,
#endif
  };
}

Requests MainIoctls() {
  // The i8042's Ctrl+Alt+Del raises its IRQ from here; a drive swap sizes a block device.
  // A Diff snapshot reads (and so clears) KVM's dirty log; a Full one with tracking on clears it.
  Requests r = {KVM_IRQ_LINE, KVM_IRQFD, KVM_IOEVENTFD, 0x80081272 /* BLKGETSIZE64 */,
                KVM_GET_DIRTY_LOG};
#if defined(__x86_64__)
  // A snapshot reads every vCPU and the irqchip (vmm_snapshot.cc), and restarts the devices.
  for (uint64_t req : std::initializer_list<uint64_t>{
           KVM_CHECK_EXTENSION, kvm_abi::kGetMsrIndexList, kvm_abi::kGetMsrs,
           kvm_abi::kGetSupportedCpuid, kvm_abi::kGetXsave, kvm_abi::kGetXsave2, KVM_GET_MP_STATE,
           KVM_GET_REGS, KVM_GET_SREGS, KVM_GET_XCRS, KVM_GET_LAPIC, KVM_GET_VCPU_EVENTS,
           KVM_GET_DEBUGREGS, KVM_GET_TSC_KHZ, KVM_GET_IRQCHIP, KVM_GET_PIT2, KVM_GET_CLOCK,
           TUNSETOFFLOAD}) {
    r.push_back(req);
  }
#elif defined(__aarch64__)
  // A snapshot reads every vCPU's registers, the vGIC and the ITS (which first writes its
  // tables to guest RAM through KVM_SET_DEVICE_ATTR), and restarts the devices.
  for (uint64_t req : std::initializer_list<uint64_t>{
           KVM_GET_MP_STATE, KVM_GET_REG_LIST, KVM_GET_ONE_REG, KVM_GET_VCPU_EVENTS,
           KVM_GET_DEVICE_ATTR, KVM_SET_DEVICE_ATTR, TUNSETOFFLOAD}) {
    r.push_back(req);
  }
#endif
  return r;
}

[[maybe_unused]] Requests RtcIoctls() { return {KVM_IRQ_LINE}; }

// One comparison of syscall argument ARG (libseccomp's SCMP_A* macros, spelt out in full).
scmp_arg_cmp Arg(unsigned arg, scmp_compare op, scmp_datum_t a, scmp_datum_t b = 0) {
  return scmp_arg_cmp{.arg = arg, .op = op, .datum_a = a, .datum_b = b};
}

class Filter {
 public:
  Filter(std::string role, std::shared_future<void> prerequisite)
      : role_(std::move(role)),
        prerequisite_(std::move(prerequisite)),
        ctx_(seccomp_init(SCMP_ACT_TRAP)) {}
  ~Filter() {
    if (ctx_ != nullptr) seccomp_release(ctx_);
  }
  Filter(const Filter&) = delete;
  Filter& operator=(const Filter&) = delete;

  absl::Status Allow(Names names) {
    for (const char* name : names) {
      const int nr = seccomp_syscall_resolve_name(name);
      if (nr == __NR_SCMP_ERROR || nr < 0) continue;  // not a syscall on this architecture
      EV_RETURN_IF_ERROR(Check(seccomp_rule_add(ctx_, SCMP_ACT_ALLOW, nr, 0), name));
    }
    return absl::OkStatus();
  }

  absl::Status AllowIoctls(const Requests& requests) {
    for (uint64_t req : requests) {
      EV_RETURN_IF_ERROR(Check(seccomp_rule_add(ctx_, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
                                                Arg(1, SCMP_CMP_MASKED_EQ, 0xffffffffu, req)),
                               "ioctl"));
    }
    return absl::OkStatus();
  }

  // prctl(PR_SET_NAME) only: libmicrohttpd names its thread.
  absl::Status AllowSetName() {
    return Check(seccomp_rule_add(ctx_, SCMP_ACT_ALLOW, SCMP_SYS(prctl), 1,
                                  Arg(0, SCMP_CMP_EQ, PR_SET_NAME)),
                 "prctl");
  }

  // Signals to this process's own threads only (the vCPU kick, abort()).
  absl::Status AllowOwnSignals() {
    return Check(seccomp_rule_add(ctx_, SCMP_ACT_ALLOW, SCMP_SYS(tgkill), 1,
                                  Arg(0, SCMP_CMP_EQ, static_cast<scmp_datum_t>(getpid()))),
                 "tgkill");
  }

  // socket(AF_UNIX, ...) only: the vsock worker's connections to "<uds_path>_<port>".
  absl::Status AllowUnixSockets() {
    return Check(
        seccomp_rule_add(ctx_, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1, Arg(0, SCMP_CMP_EQ, AF_UNIX)),
        "socket");
  }

  // glibc's pthread_create tries clone3 first and falls back to clone on ENOSYS; clone3's flags
  // sit in memory a filter cannot read, so it gets ENOSYS and clone must carry CLONE_THREAD.
  absl::Status AllowThreadsOnly() {
    EV_RETURN_IF_ERROR(
        Check(seccomp_rule_add(ctx_, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0), "clone3"));
    return Check(seccomp_rule_add(ctx_, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
                                  Arg(0, SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD)),
                 "clone");
  }

  absl::StatusOr<std::shared_ptr<const ThreadFilter>> Compile() {
    if (ctx_ == nullptr) return absl::InternalError("seccomp_init failed");
    UniqueFd mem(memfd_create("seccomp-bpf", MFD_CLOEXEC));
    if (!mem.valid()) return ErrnoError("memfd_create");
    EV_RETURN_IF_ERROR(Check(seccomp_export_bpf(ctx_, mem.get()), "export"));
    const off_t size = lseek(mem.get(), 0, SEEK_END);
    if (size <= 0 || size % sizeof(sock_filter) != 0) {
      return absl::InternalError(absl::StrFormat("seccomp: %s: bad BPF size %d", role_, size));
    }
    auto f = std::make_shared<ThreadFilter>();
    f->role = role_;
    f->prerequisite = prerequisite_;
    f->program.resize(size / sizeof(sock_filter));
    if (pread(mem.get(), f->program.data(), size, 0) != size) return ErrnoError("read BPF");
    return f;
  }

 private:
  absl::Status Check(int rc, const char* what) {
    if (rc == 0) return absl::OkStatus();
    return absl::InternalError(
        absl::StrFormat("seccomp: %s filter: %s: %s", role_, what, strerror(-rc)));
  }

  std::string role_;
  std::shared_future<void> prerequisite_;
  scmp_filter_ctx ctx_;
};

// What a role may do beyond its syscall lists.
struct Extras {
  bool threads = false;       // create threads (clone with CLONE_THREAD)
  bool set_name = false;      // prctl(PR_SET_NAME)
  bool unix_sockets = false;  // socket(AF_UNIX, ...)
};

absl::StatusOr<std::shared_ptr<const ThreadFilter>> Build(
    const char* role, std::initializer_list<Names> lists, const Requests& ioctls,
    const std::shared_future<void>& prerequisite, Extras extras = {}) {
  Filter f(role, prerequisite);
  EV_RETURN_IF_ERROR(f.Allow(kCommon));
  for (Names n : lists) EV_RETURN_IF_ERROR(f.Allow(n));
  EV_RETURN_IF_ERROR(f.AllowIoctls(ioctls));
  EV_RETURN_IF_ERROR(f.AllowOwnSignals());
  if (extras.threads) EV_RETURN_IF_ERROR(f.AllowThreadsOnly());
  if (extras.set_name) EV_RETURN_IF_ERROR(f.AllowSetName());
  if (extras.unix_sockets) EV_RETURN_IF_ERROR(f.AllowUnixSockets());
  return f.Compile();
}

absl::StatusOr<ThreadFilters> CompileAll(const FilterRoles& roles,
                                         const std::shared_future<void>& prerequisite) {
  ThreadFilters t;
  EV_ASSIGN_OR_RETURN(t.main, Build("main", {kWait, kMain}, MainIoctls(), prerequisite));
  EV_ASSIGN_OR_RETURN(t.vcpu, Build("vcpu", {kWait, kVcpu}, VcpuIoctls(), prerequisite));
  if (roles.api) {
    EV_ASSIGN_OR_RETURN(
        t.api, Build("api", {kWait, kApi}, {}, prerequisite, {.threads = true, .set_name = true}));
  }
  if (roles.block) {
    EV_ASSIGN_OR_RETURN(t.block, Build("block", {kWait, kBlock}, {}, prerequisite));
  }
  if (roles.net) {
    EV_ASSIGN_OR_RETURN(t.net, Build("net", {kWait, kNet}, {}, prerequisite));
  }
  if (roles.rng) {
    EV_ASSIGN_OR_RETURN(t.rng, Build("rng", {kWait, kRng}, {}, prerequisite));
  }
  if (roles.balloon) {
    EV_ASSIGN_OR_RETURN(t.balloon, Build("balloon", {kWait, kBalloon}, {}, prerequisite));
  }
  if (roles.vsock) {
    EV_ASSIGN_OR_RETURN(t.vsock,
                        Build("vsock", {kWait, kVsock}, {}, prerequisite,
                              {.threads = false, .set_name = false, .unix_sockets = true}));
  }
#if defined(__aarch64__)  // the PL031 is the only user
  EV_ASSIGN_OR_RETURN(t.rtc, Build("rtc", {kWait, kRtc}, RtcIoctls(), prerequisite));
#endif
  return t;
}

}  // namespace

absl::StatusOr<ThreadFilters> BuildThreadFilters(FilterRoles roles) {
  // glibc's malloc counts the CPUs (opening /sys/devices/system/cpu/online) when a thread first
  // needs an arena beyond the eighth; with a fixed limit it never asks. Four arenas also keep
  // the per-thread heaps of a VM with many queues small.
  mallopt(M_ARENA_MAX, 4);
  // And a thread's arena, shrunk on free, first reads /proc/sys/vm/overcommit_memory. Heaps
  // are not trimmed below 64 MiB of free space, so that never happens; allocations over
  // 128 KiB stay separate mappings, returned to the system when freed.
  mallopt(M_TRIM_THRESHOLD, 64 << 20);
  mallopt(M_MMAP_THRESHOLD, 128 << 10);
  // Abseil reads the CPU count and frequency from /sys and /proc the first time a Mutex waits,
  // on whichever thread that is; read them now, while every thread may still open files.
  (void)absl::base_internal::NumCPUs();
  // The rest happens on a short-lived thread of its own:
  //  - compiling the filters, whose many small temporary allocations then land in that
  //    thread's malloc arena instead of fragmenting the main heap for the VM's whole life
  //    (60 KiB per VM);
  //  - then Abseil's TSC frequency, which without /sys/.../tsc_freq_khz is measured against
  //    two sleeps (3.3 ms), overlapping the VM's set-up. Installing any filter waits for it.
  std::promise<absl::StatusOr<ThreadFilters>> compiled;
  std::future<absl::StatusOr<ThreadFilters>> result = compiled.get_future();
  std::promise<void> measured;
  std::shared_future<void> frequency = measured.get_future().share();
  std::thread([roles, compiled = std::move(compiled), measured = std::move(measured),
               frequency]() mutable {
    compiled.set_value(CompileAll(roles, frequency));
    (void)absl::base_internal::NominalCPUFrequency();
    measured.set_value();
  }).detach();
  return result.get();
}

std::shared_ptr<const SyscallNames> SyscallNameTable() {
  auto names = std::make_shared<SyscallNames>(512);
  for (int nr = 0; nr < 512; ++nr) {
    char* n = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);
    if (n != nullptr) {
      (*names)[nr] = n;
      free(n);  // NOLINT(cppcoreguidelines-no-malloc): libseccomp's strdup
    }
  }
  return names;
}

}  // namespace edgevisor::seccomp
