// A built VM and its run loop: one thread per vCPU, and the main thread for signals, console
// input and teardown.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <thread>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "nlohmann/json_fwd.hpp"
#include "src/base/event_fd.h"
#include "src/base/event_set.h"
#include "src/devices/balloon/virtio_balloon.h"
#include "src/devices/block/virtio_block.h"
#include "src/devices/legacy/boot_timer.h"
#include "src/devices/legacy/i8042.h"
#include "src/devices/legacy/pl031.h"
#include "src/devices/legacy/uart_16550.h"
#include "src/devices/net/virtio_net.h"
#include "src/devices/virtio/mmio_transport.h"
#include "src/platform/bus.h"
#include "src/platform/guest_memory.h"
#include "src/platform/kvm.h"
#include "src/platform/vcpu.h"
#include "src/vmm/arch/arch.h"
#include "src/vmm/config/vm_config.h"
#include "src/vmm/metrics.h"
#include "src/vmm/seccomp/filters.h"
#include "src/vmm/stop_controller.h"

namespace edgevisor {

// Everything the builder assembles. Members are destroyed in reverse order: vCPUs before memory.
struct VmParts {
  std::string id;
  VmConfig config;            // what the VM was built from (a snapshot records it)
  bool start_paused = false;  // the vCPUs wait for Resume() before they first run (a restore)
  Kvm kvm;
  Vm vm;
  arch::ArchVm arch;  // the irqchip device (aarch64) and other per-architecture state
  std::unique_ptr<GuestMemory> mem;  // stable address: devices hold pointers to it
  std::unique_ptr<Bus> pio = std::make_unique<Bus>("pio");
  std::unique_ptr<Bus> mmio = std::make_unique<Bus>("mmio");
  std::shared_ptr<StopController> stop;
  int reboot_exit_code = 0;  // the exit status when the guest reboots
  std::shared_ptr<Uart16550> uart;
  int serial_input_fd = -1;  // stdin when the console is stdio
  UniqueFd serial_output_file;
  std::shared_ptr<BootTimer> boot_timer;
  std::shared_ptr<I8042> i8042;  // x86 only
  std::shared_ptr<Pl031> rtc;    // aarch64 only
  std::vector<std::shared_ptr<virtio::MmioTransport>> virtio_devices;
  // The block devices behind virtio_devices, by drive id, for PATCH /drives (owned by their
  // transports).
  std::vector<std::pair<std::string, block::VirtioBlock*>> blocks;
  std::vector<std::pair<std::string, net::VirtioNet*>> nets;  // by interface id
  balloon::VirtioBalloon* balloon = nullptr;                  // when the VM has one
  // Every virtio device model by id, for the metrics: each reports its own counters.
  std::vector<std::pair<std::string, const virtio::VirtioDevice*>> counted;
  std::vector<std::unique_ptr<Vcpu>> vcpus;
  // The threads' seccomp filters (all null: seccomp off). The device threads have theirs
  // already; Start installs the vCPUs' and the calling (main) thread's.
  seccomp::ThreadFilters filters;
};

class Vmm {
 public:
  explicit Vmm(VmParts parts);
  ~Vmm();

  // Starts the vCPU threads (idempotent). The API's InstanceStart calls it so that its 204
  // means the guest is running; Run() calls it otherwise. Call it on the main thread: with
  // seccomp on, each vCPU thread installs its filter, then this thread installs the main
  // filter, and only then does any vCPU enter the guest.
  absl::Status Start();

  // Runs the VM until it stops; returns the process exit code. Call from the thread that
  // blocked SIGINT/SIGTERM (see BlockProcessSignals).
  int Run();

  // Thread-safe controls for the API thread, valid between Start() and the end of Run().
  // Pause returns once every vCPU is out of KVM_RUN and waiting; devices keep completing the
  // I/O the guest already queued. Both are idempotent.
  absl::Status Pause();
  absl::Status Resume();
  bool paused() const { return pause_requested_.load(std::memory_order_acquire); }
  // Points drive `id` at another backing file (see VirtioBlock::ReplaceBacking).
  absl::Status ReplaceDriveBacking(const std::string& id, const std::string& path);
  // PATCH /drives/{id} with rate_limiter. Thread-safe.
  absl::Status UpdateDriveRateLimiter(const std::string& id, const RateLimiterConfig& cfg);
  // PATCH /network-interfaces/{id}: new RX and/or TX limits (null: unchanged). Thread-safe.
  absl::Status UpdateNetRateLimiters(const std::string& id, const RateLimiterConfig* rx,
                                     const RateLimiterConfig* tx);
  // PATCH /balloon: a new target, told to the guest at once. PATCH /balloon/statistics: a new
  // polling interval. The balloon's statistics (GET /balloon/statistics). Errors name the field.
  absl::Status UpdateBalloon(uint32_t amount_mib);
  absl::Status UpdateBalloonStatsInterval(uint32_t seconds);
  absl::StatusOr<balloon::BalloonStats> BalloonStatistics() const;
  // Presses Ctrl+Alt+Del on the i8042 keyboard (x86).
  absl::Status SendCtrlAltDel();
  // Writes a snapshot of the paused VM: its state to STATE_PATH (snapshot/file.h, stamped with
  // VMM_VERSION) and guest RAM to MEM_PATH (sparse: zero pages are holes). DIFF (with dirty-page
  // tracking on): MEM_PATH holds only the pages written since the last snapshot, or since the
  // start, at their offsets; the rest are holes (a layer for `edgevisor rebase-snap`). The
  // devices finish their I/O in flight first and then stay stopped with the vCPUs: the VM goes
  // on only after Resume().
  absl::Status CreateSnapshot(const std::string& state_path, const std::string& mem_path,
                              const std::string& vmm_version, bool diff = false);
  bool tracking_dirty_pages() const { return p_.mem->tracking_dirty(); }
  // Cumulative counters: vCPU exits, and per-device block and net counters.
  Json Counters() const;
  // Metrics flushed every MetricsWriter::kPeriodSeconds and when the VM stops. Before Run().
  void SetMetrics(std::shared_ptr<MetricsWriter> m) { metrics_ = std::move(m); }
  // FN runs once when the guest writes its boot-timer mark (BootTimer::OnFirstMark); never for
  // a VM without the boot timer. Before Start.
  void OnGuestBooted(std::function<void(const BootTime&)> fn) {
    if (p_.boot_timer) p_.boot_timer->OnFirstMark(std::move(fn));
  }
  // One more fd for the main loop and what to run when it is readable: the API's request
  // queue, whose requests execute on the main thread. Before Run().
  void SetRequestSource(int fd, std::function<void()> on_ready) {
    request_fd_ = fd;
    on_request_ = std::move(on_ready);
  }
  StopController& stop() { return *p_.stop; }

  const VmParts& parts() const { return p_; }

  // Blocks SIGINT, SIGTERM and the vCPU kick signal in the calling thread (and the threads it
  // starts later). Call first thing in main().
  static void BlockProcessSignals();

 private:
  struct MainLoop;
  // The main thread: its wait set, one event, console input, and the teardown after the stop.
  absl::Status SetUpMainLoop(MainLoop& loop);
  void OnMainEvent(MainLoop& loop, EventId id);
  void OnConsoleInput(MainLoop& loop);
  int Finish();

  void VcpuThread(size_t index);
  // Handles one exit; false when the vCPU loop should end.
  bool HandleExit(Vcpu& vcpu);
  void HandleIo(Vcpu& vcpu);  // x86 port I/O
  void HandleMmio(Vcpu& vcpu);
  void CompleteIo(Vcpu& vcpu);
  void CheckParked(Vcpu& vcpu);
  // The halted-guest check (see kParkCheckFirstNs): arms it `delay_ns` from now, or not at all
  // past the last delay.
  void ArmParkCheck(MainLoop& loop, int64_t delay_ns);
  // On every exit to the VMM: brings the checks back if they had backed off. Two atomic
  // operations when nobody waits; one eventfd write the first time after a quiet spell.
  void NoteActivity();
  void KickAll() ABSL_EXCLUSIVE_LOCKS_REQUIRED(start_mu_);
  // Stops the VM as crashed, naming the vCPU and RIP. `emulator_limit` adds the hint about
  // software-virtualized hosts, for the exits that such hosts cause.
  void Crash(Vcpu& vcpu, const std::string& what, bool emulator_limit = false);

  struct VcpuCounters {
    std::atomic<uint64_t> io_in{0}, io_out{0}, mmio_read{0}, mmio_write{0}, failures{0};
  };

  VmParts p_;
  std::string kvm_hint_;  // HostKvmHint(), for Crash
  std::shared_ptr<MetricsWriter> metrics_;
  int request_fd_ = -1;
  std::function<void()> on_request_;
  std::unique_ptr<VcpuCounters[]> counters_;
  absl::Mutex start_mu_;
  std::vector<std::thread> threads_ ABSL_GUARDED_BY(start_mu_);
  absl::Notification go_;  // every filter is in place: the vCPUs may enter the guest

  // Pause protocol: the API thread sets pause_requested_ and kicks; each vCPU thread, before
  // re-entering KVM_RUN, counts itself in paused_count_ and waits until it is cleared.
  std::atomic<bool> pause_requested_{false};
  absl::Mutex pause_mu_;
  size_t paused_count_ ABSL_GUARDED_BY(pause_mu_) = 0;
  // The conditions that Pause and a paused vCPU wait for, under pause_mu_.
  bool AllPausedOrStopping() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(pause_mu_);
  bool ResumedOrStopping() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(pause_mu_);
  // One flag per vCPU: halted with interrupts off, or never started (APs before SIPI).
  std::unique_ptr<std::atomic<bool>[]> parked_;
  // The guest exited to the VMM since the last park check; the main thread has backed off and
  // wants `activity_` signalled at the next exit.
  std::atomic<bool> activity_seen_{false};
  std::atomic<bool> wake_on_activity_{false};
  EventFd activity_;
};

}  // namespace edgevisor
