// Firecracker's REST API over edgevisor: routes requests (method, path, JSON body) onto the one
// VM model (VmResources) before boot, and onto the running VM after InstanceStart. Transport-free
// (the HTTP server calls Handle), so unit tests and the fuzzer drive it directly.
//
// Responses follow Firecracker: 204 with no body on success, 200 with JSON for GETs, and 400
// with {"fault_message": "..."} for anything wrong; the message names the field or the path.
// Endpoints that edgevisor does not implement answer 400 saying so, never a silent 204.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "src/devices/balloon/virtio_balloon.h"
#include "src/devices/net/mmds_service.h"
#include "src/vmm/api/http_server.h"
#include "src/vmm/config/fc_config.h"
#include "src/vmm/metrics.h"

namespace edgevisor::api {

// The running VM, as the API sees it. Implemented over Vmm in main; faked in tests.
class RunningVm {
 public:
  virtual ~RunningVm() = default;
  virtual absl::Status Pause() = 0;
  virtual absl::Status Resume() = 0;
  virtual bool paused() const = 0;
  virtual absl::Status SendCtrlAltDel() = 0;
  virtual Json Counters() const = 0;
  // PATCH /drives/{id} with path_on_host.
  virtual absl::Status ReplaceDriveBacking(const std::string& id, const std::string& path) = 0;
  // PATCH /drives/{id} with rate_limiter: the drive's new limits, at once.
  virtual absl::Status UpdateDriveRateLimiter(const std::string& id,
                                              const RateLimiterConfig& cfg) = 0;
  // PATCH /network-interfaces/{id}: new RX and/or TX limits (null: unchanged).
  virtual absl::Status UpdateNetRateLimiters(const std::string& id, const RateLimiterConfig* rx,
                                             const RateLimiterConfig* tx) = 0;
  // PUT /snapshot/create, while paused. DIFF: only the pages written since the last snapshot
  // (or the start), which needs dirty-page tracking.
  virtual absl::Status CreateSnapshot(const std::string& snapshot_path,
                                      const std::string& mem_file_path, bool diff) = 0;
  // Whether dirty pages are tracked (machine-config track_dirty_pages, or a load's).
  virtual bool tracking_dirty_pages() const = 0;
  // PATCH /balloon, PATCH /balloon/statistics, GET /balloon/statistics. Errors name the field.
  virtual absl::Status UpdateBalloon(uint32_t amount_mib) = 0;
  virtual absl::Status UpdateBalloonStatsInterval(uint32_t seconds) = 0;
  virtual absl::StatusOr<balloon::BalloonStats> BalloonStatistics() const = 0;
};

// PUT /snapshot/load, checked.
struct SnapshotLoad {
  std::string snapshot_path;
  std::string mem_path;  // mem_backend.backend_path (File), or the older mem_file_path
  bool resume = false;
  bool track_dirty_pages = false;       // track_dirty_pages, or the older enable_diff_snapshots
  std::shared_ptr<mmds::Service> mmds;  // the API's metadata store, for the restored VM
};

// What a snapshot load built: the VM, and the configuration it was restored with (for GET
// /vm/config and PATCH /drives).
struct LoadedVm {
  RunningVm* vm = nullptr;
  VmConfig config;
};

// What the controller needs from the process around it.
struct ApiHooks {
  // Builds and starts the VM. The RunningVm stays valid for the controller's lifetime. Errors
  // may name inputs as `edgevisor run` does (--drive ID: ...); the controller renames them.
  std::function<absl::StatusOr<RunningVm*>(const VmConfig&, std::shared_ptr<MetricsWriter>)> start;
  // Restores and starts a VM from a snapshot (paused unless `resume`).
  std::function<absl::StatusOr<LoadedVm>(const SnapshotLoad&, std::shared_ptr<MetricsWriter>)>
      load_snapshot;
  // Checks a drive's backing file and a TAP when they are PUT, as Firecracker does.
  std::function<absl::Status(const FcDrive&)> check_drive;
  std::function<absl::Status(const FcNet&)> check_net;
  // Applies a logger configuration (PUT /logger).
  std::function<absl::Status(const LoggerConfig&)> apply_logger;
  // Opens the metrics destination (PUT /metrics); MetricsWriter::Open when empty.
  std::function<absl::StatusOr<std::unique_ptr<MetricsWriter>>(const MetricsConfig&,
                                                               const std::string& vm_id)>
      open_metrics;
};

class ApiController {
 public:
  static constexpr char kAppName[] = "edgevisor";
  // The Firecracker API release whose spec this API follows (../shared/reference, checked by
  // tests/contract): GET /version's firecracker_version, which fleet drivers compare.
  static constexpr char kFirecrackerApiVersion[] = "1.17.0";

  ApiController(std::string vm_id, std::string version, HostLimits host, ApiHooks hooks);

  // The resources to start from (the --config-file contents, when given with --api-sock).
  void SetResources(VmResources r) {
    absl::MutexLock lock(&mu_);
    resources_ = std::move(r);
    configured_ = true;
  }
  absl::Status SetMetrics(const MetricsConfig& cfg);
  // The metadata store the API's /mmds requests and the VM's MMDS share (--metadata filled it,
  // --mmds-size-limit sized it); by default an empty one of Firecracker's size.
  void SetMmds(std::shared_ptr<mmds::Service> s) {
    absl::MutexLock lock(&mu_);
    mmds_ = std::move(s);
  }
  // Starts the VM from the current resources, as InstanceStart does (--config-file with API).
  absl::Status StartFromResources();

  HttpResponse Handle(const HttpRequest& req);

 private:
  HttpResponse Route(const HttpRequest& req) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // One handler per endpoint: `m` is the method, `what` "METHOD /path" for messages.
  HttpResponse Action(const Json& body) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  HttpResponse OnVm(const std::string& what, const Json& body) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  HttpResponse OnMachineConfig(const std::string& m, const std::string& what, const Json& body)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  HttpResponse OnBootSource(const std::string& what, const Json& body)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  HttpResponse OnLogger(const std::string& what, const Json& body)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  HttpResponse OnMetrics(const std::string& what, const Json& body)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  HttpResponse OnEntropy(const std::string& what, const Json& body)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  HttpResponse OnVsock(const std::string& what, const Json& body)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // api_balloon.cc: PUT/PATCH /balloon, PATCH /balloon/statistics, and the two GETs.
  HttpResponse OnBalloon(const std::string& m, const std::string& what, const std::string& path,
                         const Json& body) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  HttpResponse GetBalloon() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void AdoptRestored(const VmConfig& c) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  HttpResponse OnMmds(const std::string& m, const std::string& what, const std::string& path,
                      const Json& body) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  HttpResponse GetBalloonStatistics() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  HttpResponse PatchDrive(const std::string& id, const Json& body)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  HttpResponse OnDrive(const std::string& m, const std::string& what, const std::string& id,
                       const Json& body) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  HttpResponse OnSnapshot(const std::string& what, const std::string& path, const Json& body)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  HttpResponse LoadSnapshot(const Json& body) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  HttpResponse OnNetworkInterface(const std::string& m, const std::string& what,
                                  const std::string& id, const Json& body)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status StartLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status SetMetricsLocked(const MetricsConfig& cfg) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::string State() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::Mutex mu_;  // one request at a time; the HTTP server has one thread, tests may have more
  const std::string vm_id_;
  const std::string version_;
  const HostLimits host_;
  ApiHooks hooks_;
  VmResources resources_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<mmds::Service> mmds_ ABSL_GUARDED_BY(mu_) = std::make_shared<mmds::Service>();
  std::shared_ptr<MetricsWriter> metrics_ ABSL_GUARDED_BY(mu_);
  RunningVm* vm_ ABSL_GUARDED_BY(mu_) = nullptr;  // set by InstanceStart or a snapshot load
  // A VM resource was configured (boot source, machine, drive, interface): a snapshot load,
  // which brings its own, is refused from then on (as in Firecracker).
  bool configured_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace edgevisor::api
