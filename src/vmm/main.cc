// edgevisor: one process per microVM.
//   edgevisor run --kernel F ...            our own command line (cli.h)
//   edgevisor --api-sock PATH [...]         Firecracker's: REST API on a Unix socket
//   edgevisor --config-file F --no-api      Firecracker's: boot from a JSON file
#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "nlohmann/json.hpp"
#include "spdlog/sinks/stdout_sinks.h"
#include "src/base/append_file.h"
#include "src/base/errors.h"
#include "src/base/event_fd.h"
#include "src/base/log.h"
#include "src/base/read_file.h"
#include "src/base/service_notify.h"
#include "src/devices/net/mmds_service.h"
#include "src/devices/net/tap.h"
#include "src/vmm/api/api.h"
#include "src/vmm/api/http_server.h"
#include "src/vmm/api/request_queue.h"
#include "src/vmm/builder.h"
#include "src/vmm/cli.h"
#include "src/vmm/config/fc_config.h"
#include "src/vmm/metrics.h"
#include "src/vmm/snapshot/file.h"
#include "src/vmm/snapshot/rebase.h"
#include "src/vmm/snapshot/vm_state.h"

#if defined(EV_SANITIZERS)
// LeakSanitizer checks at exit by ptracing the process from a new thread and reading /proc,
// all of which the threads' seccomp filters forbid. The unit tests keep the leak check.
extern "C" const char* __asan_default_options() { return "detect_leaks=0"; }
#endif

namespace {

using edgevisor::Json;

constexpr const char* kVersion = "0.1.0";

// Logs go to stderr, or to `path` (Firecracker's logger.log_path / --log-path; a regular file or
// a named pipe). The logger's name is the VM id, so every line carries it.
absl::Status SetUpLogging(const std::string& vm_id, const std::string& level,
                          const std::string& path = "", bool show_level = true) {
  tzset();  // the timestamps' time zone, read now: no thread opens /etc/localtime later
  spdlog::sink_ptr sink;
  if (path.empty()) {
    sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  } else {
    // spdlog would create missing directories; a typo in the path should be an error instead.
    struct stat st {};
    const size_t slash = path.rfind('/');
    const std::string dir = slash == std::string::npos ? "." : path.substr(0, slash + 1);
    if (stat(path.c_str(), &st) != 0 && (stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))) {
      return absl::InvalidArgumentError(
          absl::StrFormat("log_path: %s: the directory %s does not exist", path, dir));
    }
    // A named pipe (Firecracker's log_fifo) never blocks the VMM: src/base/append_file.h.
    absl::StatusOr<edgevisor::UniqueFd> fd = edgevisor::OpenForAppend(path);
    if (!fd.ok()) {
      return absl::InvalidArgumentError(absl::StrFormat("log_path: %s", fd.status().message()));
    }
    sink = std::make_shared<edgevisor::AppendFileSink>(*std::move(fd));
  }
  auto logger = std::make_shared<spdlog::logger>(vm_id, std::move(sink));
  logger->set_pattern(show_level ? "%Y-%m-%dT%H:%M:%S.%f [%n:%t] [%l] %v"
                                 : "%Y-%m-%dT%H:%M:%S.%f [%n:%t] %v");
  logger->set_level(spdlog::level::from_str(level));
  logger->flush_on(spdlog::level::trace);
  spdlog::set_default_logger(std::move(logger));
  return absl::OkStatus();
}

using edgevisor::seccomp::ThreadFilters;

// The threads' seccomp filters, compiled once, and the violation reporter; none (with a
// warning) for --no-seccomp.
absl::StatusOr<ThreadFilters> SetUpSeccomp(bool on, edgevisor::seccomp::FilterRoles roles = {}) {
  if (!on) {
    spdlog::warn("--no-seccomp: the VMM's threads run without seccomp filters");
    return ThreadFilters{};
  }
  EV_ASSIGN_OR_RETURN(ThreadFilters filters, edgevisor::seccomp::BuildThreadFilters(roles));
  EV_RETURN_IF_ERROR(edgevisor::InstallSeccompReporter(edgevisor::seccomp::SyscallNameTable()));
  return filters;
}

// The service manager's notification socket (systemd's, directly or through the jailer):
// taken from the environment before any thread starts. Unusable ones are logged, never fatal.
std::shared_ptr<const edgevisor::ServiceNotifier> ServiceManager() {
  auto n = edgevisor::ServiceNotifier::FromEnvironment();
  if (!n.ok()) {
    spdlog::warn("{}: the service manager gets no readiness notification", n.status().message());
    return std::make_shared<edgevisor::ServiceNotifier>();
  }
  return std::make_shared<edgevisor::ServiceNotifier>(*std::move(n));
}

// READY=1 when the guest writes its boot-timer mark (a Type=notify unit is then started).
void NotifyWhenBooted(edgevisor::Vmm& vmm,
                      const std::shared_ptr<const edgevisor::ServiceNotifier>& notifier) {
  if (!notifier->active()) return;
  vmm.OnGuestBooted([notifier](const edgevisor::BootTime& t) {
    notifier->Notify(absl::StrFormat("READY=1\nSTATUS=guest booted in %d ms", t.wall_us / 1000));
  });
}

int Boot(const edgevisor::VmConfig& vm, edgevisor::ProcessClock start, bool seccomp,
         std::shared_ptr<edgevisor::MetricsWriter> metrics = nullptr) {
  const std::shared_ptr<const edgevisor::ServiceNotifier> notifier = ServiceManager();
  auto filters = SetUpSeccomp(seccomp, {.api = false,
                                        .block = !vm.drives.empty(),
                                        .net = !vm.nets.empty(),
                                        .rng = vm.entropy.has_value(),
                                        .balloon = vm.balloon.has_value(),
                                        .vsock = vm.vsock.has_value()});
  if (!filters.ok()) {
    spdlog::error("{}", filters.status().message());
    return edgevisor::kExitVmmError;
  }
  auto vmm = edgevisor::BuildVm(vm, start, *filters);
  if (!vmm.ok()) {
    spdlog::error("{}", vmm.status().message());
    return edgevisor::IsUsageError(vmm.status()) ? edgevisor::kExitUsage : edgevisor::kExitVmmError;
  }
  (*vmm)->SetMetrics(std::move(metrics));
  NotifyWhenBooted(**vmm, notifier);
  return (*vmm)->Run();
}

edgevisor::MetricsConfig MetricsAt(const std::string& path) {
  edgevisor::MetricsConfig m;
  m.metrics_path = path;
  return m;
}

// Checks a drive's backing file when it is PUT, as Firecracker does.
absl::Status CheckDrive(const edgevisor::FcDrive& d) {
  edgevisor::UniqueFd fd(
      open(d.path_on_host.c_str(), (d.is_read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC));
  if (!fd.valid()) {
    const int err = errno;
    return absl::InvalidArgumentError(
        absl::StrFormat("path_on_host: cannot open %s: %s", d.path_on_host, strerror(err)));
  }
  struct stat st {};
  if (fstat(fd.get(), &st) != 0 || !(S_ISREG(st.st_mode) || S_ISBLK(st.st_mode))) {
    return absl::InvalidArgumentError(
        absl::StrFormat("path_on_host: %s is not a regular file or block device", d.path_on_host));
  }
  return absl::OkStatus();
}

absl::Status CheckNet(const edgevisor::FcNet& n) {
  auto tap = edgevisor::net::Tap::Open(n.host_dev_name, 1);
  if (!tap.ok()) {
    return absl::InvalidArgumentError(absl::StrFormat("host_dev_name: cannot open TAP '%s': %s",
                                                      n.host_dev_name, tap.status().message()));
  }
  return absl::OkStatus();
}

// The Vmm, as the API controller sees it.
class VmmHandle : public edgevisor::api::RunningVm {
 public:
  explicit VmmHandle(edgevisor::Vmm* vmm) : vmm_(vmm) {}
  absl::Status Pause() override { return vmm_->Pause(); }
  absl::Status Resume() override { return vmm_->Resume(); }
  bool paused() const override { return vmm_->paused(); }
  absl::Status SendCtrlAltDel() override { return vmm_->SendCtrlAltDel(); }
  Json Counters() const override { return vmm_->Counters(); }
  absl::Status ReplaceDriveBacking(const std::string& id, const std::string& path) override {
    return vmm_->ReplaceDriveBacking(id, path);
  }
  absl::Status UpdateDriveRateLimiter(const std::string& id,
                                      const edgevisor::RateLimiterConfig& cfg) override {
    return vmm_->UpdateDriveRateLimiter(id, cfg);
  }
  absl::Status UpdateNetRateLimiters(const std::string& id, const edgevisor::RateLimiterConfig* rx,
                                     const edgevisor::RateLimiterConfig* tx) override {
    return vmm_->UpdateNetRateLimiters(id, rx, tx);
  }
  absl::Status CreateSnapshot(const std::string& state, const std::string& mem,
                              bool diff) override {
    return vmm_->CreateSnapshot(state, mem, kVersion, diff);
  }
  bool tracking_dirty_pages() const override { return vmm_->tracking_dirty_pages(); }
  absl::Status UpdateBalloon(uint32_t amount_mib) override {
    return vmm_->UpdateBalloon(amount_mib);
  }
  absl::Status UpdateBalloonStatsInterval(uint32_t seconds) override {
    return vmm_->UpdateBalloonStatsInterval(seconds);
  }
  absl::StatusOr<edgevisor::balloon::BalloonStats> BalloonStatistics() const override {
    return vmm_->BalloonStatistics();
  }

 private:
  edgevisor::Vmm* vmm_;
};

// A snapshot state file, read, checked and parsed (snapshot/file.h, vm_state.h). Errors name
// the path or the field.
absl::StatusOr<edgevisor::snapshot::VmState> ReadSnapshot(const std::string& path) {
  auto bytes = edgevisor::ReadSmallFile(
      path, edgevisor::snapshot::kHeaderSize + edgevisor::snapshot::kMaxStateBytes);
  if (!bytes.ok()) return edgevisor::Annotate(bytes.status(), "snapshot_path");
  auto decoded = edgevisor::snapshot::Decode(
      absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(bytes->data()), bytes->size()));
  if (!decoded.ok()) return decoded.status();
  if (decoded->vmm_version != kVersion) {
    spdlog::info("snapshot {} was written by edgevisor {}; this is {}", path, decoded->vmm_version,
                 kVersion);
  }
  auto state = edgevisor::snapshot::Parse(decoded->state);
  if (!state.ok()) return edgevisor::Annotate(state.status(), "snapshot: state");
  return state;
}

// Hands the VM that InstanceStart built (on the API thread) to the main thread, which runs it.
struct Launch {
  // Starts VMM (built or restored), serving API requests from QUEUE_FD with SERVE, and hands it
  // to the main thread.
  absl::StatusOr<VmmHandle*> Start(std::unique_ptr<edgevisor::Vmm> vmm,
                                   std::shared_ptr<edgevisor::MetricsWriter> metrics, int queue_fd,
                                   std::function<void()> serve) {
    vmm->SetMetrics(std::move(metrics));
    vmm->SetRequestSource(queue_fd, std::move(serve));
    EV_RETURN_IF_ERROR(vmm->Start());
    absl::MutexLock lock(&mu);
    this->vmm = std::move(vmm);
    handle = std::make_unique<VmmHandle>(this->vmm.get());
    started.Signal();
    return handle.get();
  }
  absl::Mutex mu;
  std::unique_ptr<edgevisor::Vmm> vmm ABSL_GUARDED_BY(mu);
  std::unique_ptr<VmmHandle> handle ABSL_GUARDED_BY(mu);
  edgevisor::EventFd started{edgevisor::UniqueFd(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK))};
};

// Serves API requests on this (the main) thread (SERVE, when QUEUE_FD is readable) until
// `started_fd` is signalled (true) or SIGINT/SIGTERM arrives (false).
absl::StatusOr<bool> WaitForStart(int started_fd, int queue_fd,
                                  const std::function<void()>& serve) {
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  edgevisor::UniqueFd sfd(signalfd(-1, &sigs, SFD_CLOEXEC));
  if (!sfd.valid()) return edgevisor::ErrnoError("signalfd");
  for (;;) {
    pollfd fds[3] = {{sfd.get(), POLLIN, 0}, {started_fd, POLLIN, 0}, {queue_fd, POLLIN, 0}};
    if (poll(fds, 3, -1) < 0) {
      if (errno == EINTR) continue;
      return edgevisor::ErrnoError("poll for InstanceStart");
    }
    if (fds[2].revents & POLLIN) {
      serve();
      continue;  // InstanceStart may have been among them
    }
    if (fds[1].revents & POLLIN) return true;
    if (fds[0].revents & POLLIN) break;
  }
  signalfd_siginfo si{};
  if (read(sfd.get(), &si, sizeof(si)) != sizeof(si)) return edgevisor::ErrnoError("signalfd");
  spdlog::info("stopped by signal {} before InstanceStart", strsignal(si.ssi_signo));
  return false;
}

// The --config-file resources, the --metrics-path and the MMDS store, before the API serves;
// false (logged) on an error.
bool PresetResources(const edgevisor::FirecrackerArgs& fa,
                     std::optional<edgevisor::VmResources> from_file,
                     std::shared_ptr<edgevisor::mmds::Service> mmds,
                     edgevisor::api::ApiController& api) {
  api.SetMmds(std::move(mmds));
  if (from_file) {
    std::optional<edgevisor::MetricsConfig> metrics = from_file->metrics;
    from_file->metrics.reset();
    api.SetResources(std::move(*from_file));
    if (metrics) {
      if (absl::Status s = api.SetMetrics(*metrics); !s.ok()) {
        spdlog::error("--config-file {}: {}", fa.config_file, s.message());
        return false;
      }
    }
  }
  if (!fa.metrics_path.empty()) {
    if (absl::Status s = api.SetMetrics(MetricsAt(fa.metrics_path)); !s.ok()) {
      spdlog::error("--metrics-path: {}", s.message());
      return false;
    }
  }
  return true;
}

// The VM a PUT /snapshot/load describes, built (not started), with its config: the API's
// metadata store (its GET/PUT /mmds reach the VM) and the dirty-page tracking asked for at the
// load (for the restored VM, and for GET /vm/config).
absl::StatusOr<std::pair<std::unique_ptr<edgevisor::Vmm>, edgevisor::VmConfig>> RestoreForApi(
    const edgevisor::api::SnapshotLoad& load, const std::string& vm_id,
    edgevisor::ProcessClock start, const ThreadFilters& filters) {
  EV_ASSIGN_OR_RETURN(edgevisor::snapshot::VmState state, ReadSnapshot(load.snapshot_path));
  state.config.mmds_service = load.mmds;
  state.config.machine.track_dirty_pages |= load.track_dirty_pages;
  const edgevisor::RestoreOptions opts{
      .mem_path = load.mem_path, .resume = load.resume, .id = vm_id, .serial = {}};
  EV_ASSIGN_OR_RETURN(std::unique_ptr<edgevisor::Vmm> vmm,
                      edgevisor::RestoreVm(state, opts, start, filters));
  return std::make_pair(std::move(vmm), state.config);
}

// `edgevisor --api-sock PATH [--config-file F]`: serve Firecracker's API until the VM stops.
// Requests run on the main thread (api/request_queue.h): hooks.start builds and starts the VM
// here, under no filter yet; Start installs the main thread's.
int ApiMain(const edgevisor::FirecrackerArgs& fa, const std::string& vm_id,
            std::optional<edgevisor::VmResources> from_file,
            std::shared_ptr<edgevisor::mmds::Service> mmds, edgevisor::ProcessClock start) {
  const std::shared_ptr<const edgevisor::ServiceNotifier> notifier = ServiceManager();
  auto filters = SetUpSeccomp(fa.seccomp);
  auto queue = edgevisor::api::RequestQueue::Create();
  if (!filters.ok() || !queue.ok()) {
    spdlog::error("{}", (filters.ok() ? queue.status() : filters.status()).message());
    return edgevisor::kExitVmmError;
  }
  Launch launch;
  edgevisor::api::ApiHooks hooks;
  std::function<void()> serve;  // set once `api` exists
  hooks.start = [&](const edgevisor::VmConfig& cfg,
                    std::shared_ptr<edgevisor::MetricsWriter> metrics)
      -> absl::StatusOr<edgevisor::api::RunningVm*> {
    auto vmm = edgevisor::BuildVm(cfg, start, *filters);
    if (!vmm.ok()) return vmm.status();  // the controller puts it in the API's terms
    NotifyWhenBooted(**vmm, notifier);
    return launch.Start(*std::move(vmm), std::move(metrics), (*queue)->fd(), serve);
  };
  hooks.load_snapshot = [&](const edgevisor::api::SnapshotLoad& load,
                            std::shared_ptr<edgevisor::MetricsWriter> metrics)
      -> absl::StatusOr<edgevisor::api::LoadedVm> {
    EV_ASSIGN_OR_RETURN(auto restored, RestoreForApi(load, vm_id, start, *filters));
    EV_ASSIGN_OR_RETURN(
        VmmHandle * handle,
        launch.Start(std::move(restored.first), std::move(metrics), (*queue)->fd(), serve));
    // A restored guest booted long ago: its VM is up once it is back.
    notifier->Notify("READY=1\nSTATUS=restored from a snapshot");
    return edgevisor::api::LoadedVm{handle, restored.second};
  };
  hooks.check_drive = CheckDrive;
  hooks.check_net = CheckNet;
  hooks.apply_logger = [vm_id](const edgevisor::LoggerConfig& l) {
    return SetUpLogging(vm_id, l.level, l.log_path, l.show_level);
  };
  edgevisor::api::ApiController api(vm_id, kVersion, edgevisor::HostLimits::Detect(),
                                    std::move(hooks));
  if (!PresetResources(fa, std::move(from_file), mmds, api)) return edgevisor::kExitUsage;

  serve = [&api, q = queue->get()] {
    q->Serve([&api](const edgevisor::api::HttpRequest& r) { return api.Handle(r); });
  };
  auto server = edgevisor::api::HttpServer::Start(
      fa.api_sock, fa.max_payload,
      [q = queue->get()](const edgevisor::api::HttpRequest& r) { return q->Submit(r); },
      filters->api);
  if (!server.ok()) {
    spdlog::error("{}", server.status().message());
    return edgevisor::IsUsageError(server.status()) ? edgevisor::kExitUsage
                                                    : edgevisor::kExitVmmError;
  }
  // Before the server goes (declared last), on every path out: its thread may wait in Submit.
  absl::Cleanup close_queue = [q = queue->get()] { q->Close(); };
  spdlog::info("API server listening on {}", fa.api_sock);
  if (!fa.config_file.empty()) {  // Firecracker boots a --config-file VM at once, API or not
    if (absl::Status s = api.StartFromResources(); !s.ok()) {
      spdlog::error("--config-file {}: {}", fa.config_file, s.message());
      return edgevisor::kExitUsage;
    }
  }

  // Wait for InstanceStart, or a signal.
  auto started = WaitForStart(launch.started.fd(), (*queue)->fd(), serve);
  if (!started.ok()) {
    spdlog::error("{}", started.status().message());
    return edgevisor::kExitVmmError;
  }
  if (!*started) return edgevisor::kExitOk;
  edgevisor::Vmm* vmm;
  {
    absl::MutexLock lock(&launch.mu);
    vmm = launch.vmm.get();
  }
  const int code = vmm->Run();
  std::move(close_queue).Invoke();  // what still waits gets a 503: nobody serves the queue
  server->reset();                  // no request may reach the VM while it is torn down
  return code;
}

// `edgevisor [--api-sock PATH | --no-api] [--config-file F] ...`: Firecracker's command line.
int FirecrackerMain(const std::vector<std::string>& args, edgevisor::ProcessClock start) {
  auto fa = edgevisor::ParseFirecrackerArgs(args);
  if (!fa.ok()) {
    std::fprintf(stderr, "edgevisor: %s\n", std::string(fa.status().message()).c_str());
    return edgevisor::kExitUsage;
  }
  const std::string vm_id = fa->id.empty() ? "anonymous" : fa->id;
  std::string level = "info";
  if (!fa->level.empty()) level = *edgevisor::SpdlogLevelFromFirecracker(fa->level);

  std::optional<edgevisor::FirecrackerConfig> cfg;
  if (!fa->config_file.empty()) {
    auto text = edgevisor::ReadSmallFile(fa->config_file);
    if (!text.ok()) {  // the message starts with the path
      std::fprintf(stderr, "edgevisor: --config-file %s\n",
                   std::string(text.status().message()).c_str());
      return edgevisor::kExitUsage;
    }
    auto parsed = edgevisor::ParseFirecrackerConfig(*text);
    absl::Status s = parsed.ok()
                         ? edgevisor::CheckVmInputs(parsed->vm, edgevisor::HostLimits::Detect())
                         : parsed.status();
    if (!s.ok()) {
      std::fprintf(stderr, "edgevisor: --config-file %s: %s\n", fa->config_file.c_str(),
                   std::string(s.message()).c_str());
      return edgevisor::kExitUsage;
    }
    cfg = std::move(*parsed);
    cfg->vm.id = vm_id;
    if (fa->reboot_exit_code) cfg->vm.reboot_exit_code = *fa->reboot_exit_code;
  }

  // The config file's logger section wins over the flags, as in Firecracker.
  edgevisor::LoggerConfig log;
  log.level = level;
  log.log_path = fa->log_path;
  log.show_level = true;  // our default; Firecracker's logger section can turn it off
  if (cfg && cfg->resources.logger) log = *cfg->resources.logger;
  if (absl::Status s = SetUpLogging(vm_id, log.level, log.log_path, log.show_level); !s.ok()) {
    std::fprintf(stderr, "edgevisor: %s\n", std::string(s.message()).c_str());
    return edgevisor::kExitUsage;
  }
  if (cfg) {
    for (const std::string& note : cfg->deprecations) spdlog::warn("--config-file: {}", note);
  }

  // The metadata store: empty, or --metadata's contents (Firecracker's flags).
  auto mmds = std::make_shared<edgevisor::mmds::Service>(fa->mmds_size_limit);
  if (!fa->metadata.empty()) {
    auto text = edgevisor::ReadSmallFile(fa->metadata);
    absl::Status s = text.status();
    if (text.ok()) {
      const nlohmann::json j = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
      s = j.is_discarded() ? absl::InvalidArgumentError("not valid JSON") : mmds->Put(j);
    }
    if (!s.ok()) {
      spdlog::error("--metadata {}: {}", fa->metadata, s.message());
      return edgevisor::kExitUsage;
    }
  }
  if (!fa->no_api) {
    std::optional<edgevisor::VmResources> resources;
    if (cfg) resources = std::move(cfg->resources);
    return ApiMain(*fa, vm_id, std::move(resources), std::move(mmds), start);
  }
  cfg->vm.mmds_service = std::move(mmds);

  std::shared_ptr<edgevisor::MetricsWriter> metrics;
  std::optional<edgevisor::MetricsConfig> mc = cfg->resources.metrics;
  if (!fa->metrics_path.empty()) mc = MetricsAt(fa->metrics_path);
  if (mc) {
    auto w = edgevisor::MetricsWriter::Open(*mc, vm_id);
    if (!w.ok()) {
      spdlog::error("{}", w.status().message());
      return edgevisor::kExitUsage;
    }
    metrics = std::move(*w);
  }
  return Boot(cfg->vm, start, fa->seccomp, std::move(metrics));
}

// `edgevisor rebase-snap --base-file MEM --diff-file DIFF_MEM` (Firecracker's rebase-snap).
int RebaseSnap(const std::vector<std::string>& args) {
  std::string base, diff;
  for (size_t i = 1; i < args.size(); ++i) {
    if ((args[i] == "--base-file" || args[i] == "--diff-file") && i + 1 < args.size()) {
      (args[i] == "--base-file" ? base : diff) = args[i + 1];
      ++i;
    } else {
      std::fprintf(stderr, "edgevisor rebase-snap: unknown argument '%s'\n", args[i].c_str());
      base.clear();
      break;
    }
  }
  if (base.empty() || diff.empty()) {
    std::fputs(
        "usage: edgevisor rebase-snap --base-file MEM --diff-file DIFF_MEM\n"
        "  writes the pages a Diff snapshot's memory file holds onto the memory file of the\n"
        "  snapshot it follows; MEM then restores with the Diff snapshot's state file\n",
        stderr);
    return edgevisor::kExitUsage;
  }
  auto copied = edgevisor::snapshot::RebaseMemoryFile(base, diff);
  if (!copied.ok()) {
    std::fprintf(stderr, "edgevisor rebase-snap: %s\n",
                 std::string(copied.status().message()).c_str());
    return edgevisor::IsUsageError(copied.status()) ? edgevisor::kExitUsage
                                                    : edgevisor::kExitVmmError;
  }
  std::printf("rebase-snap: %llu bytes of %s written onto %s\n",
              static_cast<unsigned long long>(*copied), diff.c_str(),  // NOLINT(runtime/int)
              base.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const edgevisor::ProcessClock start = edgevisor::ProcessClock::Now();
  edgevisor::Vmm::BlockProcessSignals();

  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    std::fputs(edgevisor::RunUsage().c_str(), args.empty() ? stderr : stdout);
    return args.empty() ? edgevisor::kExitUsage : 0;
  }
  if (args[0] == "--version") {
    std::printf("edgevisor %s (Firecracker API %s)\n", kVersion,
                edgevisor::api::ApiController::kFirecrackerApiVersion);
    return 0;
  }
  if (args[0] == "rebase-snap") return RebaseSnap(args);
  if (args[0] != "run" && args[0].rfind("--", 0) == 0) return FirecrackerMain(args, start);
  if (args[0] != "run") {
    std::fprintf(stderr, "edgevisor: unknown command '%s'\n%s", args[0].c_str(),
                 edgevisor::RunUsage().c_str());
    return edgevisor::kExitUsage;
  }
  args.erase(args.begin());

  auto opts = edgevisor::ParseRunArgs(args, edgevisor::HostLimits::Detect());
  if (!opts.ok()) {
    std::fprintf(stderr, "edgevisor: %s\n%s", std::string(opts.status().message()).c_str(),
                 edgevisor::RunUsage().c_str());
    return edgevisor::kExitUsage;
  }
  (void)SetUpLogging(opts->vm.id, opts->log_level);
  return Boot(opts->vm, start, opts->seccomp);
}
