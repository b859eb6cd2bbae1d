// The seccomp allowlists of each kind of thread in the VMM, compiled with libseccomp into the
// BPF programs that base/thread_filter.h installs. One filter per role:
//   main   signals, the API's requests (executed here), teardown, PATCH /drives's open
//   vcpu   KVM_RUN and the few vCPU/VM ioctls an exit needs; device activation (io_uring and
//          eventfd set-up, TAP offloads, irqfd/ioeventfd) happens on this thread
//   api    libmicrohttpd's thread: accept, read, write, poll; nothing else
//   block  a virtio-blk worker: io_uring_enter or positional reads/writes, eventfds
//   net    a virtio-net worker: readv/writev on the TAP, eventfds
//   rng    the virtio-rng worker: getrandom, its rate limiter's timerfd
//   balloon  the virtio-balloon worker: madvise (in the common set) and its statistics timerfd
//   vsock  the virtio-vsock worker: Unix sockets only (accept, connect to "<uds_path>_<port>",
//          send/recv, shutdown), its deadline timerfd
//   rtc    the PL031's alarm thread (aarch64): its timerfd and the IRQ line
// Everything else traps (SECCOMP_RET_TRAP) and is reported by the thread_filter reporter.
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "src/base/thread_filter.h"

namespace edgevisor::seccomp {

struct ThreadFilters {
  std::shared_ptr<const ThreadFilter> main, vcpu, api, block, net, rng, balloon, vsock, rtc;
};

// The roles besides main and vcpu that a process needs filters for. A VM whose devices are known
// up front (the `run` command line, a config file without the API) skips the others: each one
// costs ~80 us of start-up CPU. The API's VM may get any device later: it needs all.
struct FilterRoles {
  bool api = true;
  bool block = true;
  bool net = true;
  bool rng = true;
  bool balloon = true;
  bool vsock = true;
};

// Compiles the filters of main, vcpu and `roles` (and rtc on aarch64) for this process (tgkill
// is limited to its own thread group). The others stay null: no thread of that role may start.
absl::StatusOr<ThreadFilters> BuildThreadFilters(FilterRoles roles = {});

// The syscall names of this architecture, by number, for the violation report.
std::shared_ptr<const SyscallNames> SyscallNameTable();

}  // namespace edgevisor::seccomp
