#include "src/vmm/api/api.h"

#include <unistd.h>

#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "nlohmann/json.hpp"
#include "src/base/json_fields.h"
#include "src/base/log.h"
#include "src/vmm/api/responses.h"
#include "src/vmm/config/legacy_fields.h"

namespace edgevisor::api {
namespace {

// The body as a JSON value; errors say what is wrong with it.
absl::StatusOr<Json> ParseBody(const HttpRequest& req) {
  if (req.body.find_first_not_of(" \t\r\n") == std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("body: missing; ", req.method, " ", req.path, " needs a JSON object"));
  }
  try {
    return Json::parse(req.body);
  } catch (const Json::parse_error& e) {
    return absl::InvalidArgumentError(
        absl::StrFormat("body: not valid JSON (byte %d): %s", e.byte, e.what()));
  } catch (const Json::exception& e) {  // e.g. a number out of range (found by api_fuzz)
    return absl::InvalidArgumentError(absl::StrFormat("body: not valid JSON: %s", e.what()));
  }
}

// Firecracker's endpoints that edgevisor does not implement.
bool IsUnsupportedPath(const std::string& path) {
  static const char* kPrefixes[] = {"/cpu-config", "/pmem/", "/serial", "/hotplug/"};
  for (const char* p : kPrefixes) {
    if (absl::StartsWith(path, p)) return true;
  }
  return false;
}

// Messages from the shared VM checks and the builder name inputs the way `edgevisor run`
// spells them (--mem, --drive rootfs: ...); the API names Firecracker's fields instead.
absl::Status InApiTerms(const absl::Status& s) {
  std::string m(s.message());
  static const std::pair<const char*, const char*> kNames[] = {
      {"--drive/--net", "drives/network-interfaces"},
      {"--drive ", "drives/"},
      {"--net tap=", "network-interfaces host_dev_name="},
      {"--net", "network-interfaces"},
      {"--kernel ", "kernel_image_path: "},
      {"--kernel", "kernel_image_path"},
      {"--initrd ", "initrd_path: "},
      {"--cmdline", "boot_args"},
      {"--vcpus", "vcpu_count"},
      {"--mem", "mem_size_mib"}};
  for (const auto& [flag, field] : kNames) {
    if (absl::StartsWith(m, flag)) {
      m = absl::StrCat(field, m.substr(strlen(flag)));
      break;
    }
  }
  return absl::InvalidArgumentError(m);
}

// "/drives/rootfs" with prefix "/drives/" -> "rootfs"; nullopt when the prefix differs.
std::optional<std::string> IdFromPath(const std::string& path, absl::string_view prefix) {
  if (!absl::StartsWith(path, prefix)) return std::nullopt;
  return path.substr(prefix.size());
}

}  // namespace

ApiController::ApiController(std::string vm_id, std::string version, HostLimits host,
                             ApiHooks hooks)
    : vm_id_(std::move(vm_id)),
      version_(std::move(version)),
      host_(host),
      hooks_(std::move(hooks)) {
  if (!hooks_.open_metrics) hooks_.open_metrics = MetricsWriter::Open;
}

absl::Status ApiController::SetMetrics(const MetricsConfig& cfg) {
  absl::MutexLock lock(&mu_);
  return SetMetricsLocked(cfg);
}

absl::Status ApiController::SetMetricsLocked(const MetricsConfig& cfg) {
  if (metrics_) {
    return absl::InvalidArgumentError(
        "metrics_path: metrics are already configured (set once only)");
  }
  auto m = hooks_.open_metrics(cfg, vm_id_);
  if (!m.ok()) return m.status();
  metrics_ = std::move(*m);
  resources_.metrics = cfg;
  return absl::OkStatus();
}

absl::Status ApiController::StartFromResources() {
  absl::MutexLock lock(&mu_);
  return StartLocked();
}

std::string ApiController::State() const {
  if (vm_ == nullptr) return "Not started";
  return vm_->paused() ? "Paused" : "Running";
}

HttpResponse ApiController::Handle(const HttpRequest& req) {
  absl::MutexLock lock(&mu_);
  HttpResponse r = Route(req);
  if (r.status >= 400) {
    spdlog::warn("api: {} {} -> {} {}", req.method, req.path, r.status, r.body);
  } else {
    spdlog::debug("api: {} {} -> {}", req.method, req.path, r.status);
  }
  return r;
}

absl::Status ApiController::StartLocked() {
  if (vm_ != nullptr) return absl::InvalidArgumentError(absl::StrCat("InstanceStart ", kAfterBoot));
  auto cfg = resources_.ToVmConfig(vm_id_);
  if (!cfg.ok()) return cfg.status();
  cfg->mmds_service = mmds_;
  if (absl::Status s = ValidateVmConfig(*cfg, host_); !s.ok()) return InApiTerms(s);
  auto vm = hooks_.start(*cfg, metrics_);
  if (!vm.ok()) return InApiTerms(vm.status());
  vm_ = *vm;
  return absl::OkStatus();
}

HttpResponse ApiController::Action(const Json& body) {
  if (!body.is_object()) return Fault("body: must be a JSON object");
  for (const auto& [k, v] : body.items()) {
    if (k != "action_type") return Fault(absl::StrCat(k, ": unknown field"));
  }
  if (!body.contains("action_type")) return Fault("action_type: missing required field");
  if (!body["action_type"].is_string()) return Fault("action_type: must be a string");
  const std::string action = body["action_type"].get<std::string>();
  if (action == "InstanceStart") {
    absl::Status s = StartLocked();
    return s.ok() ? NoContent() : Fault(s);
  }
  if (action == "SendCtrlAltDel") {
    if (vm_ == nullptr) return Fault(absl::StrCat("action_type: SendCtrlAltDel ", kBeforeBoot));
    absl::Status s = vm_->SendCtrlAltDel();
    return s.ok() ? NoContent() : Fault(absl::StrCat("action_type: SendCtrlAltDel: ", s.message()));
  }
  if (action == "FlushMetrics") {
    if (!metrics_) {
      return Fault("action_type: FlushMetrics needs metrics to be configured (PUT /metrics)");
    }
    absl::Status s = metrics_->Flush(vm_ ? vm_->Counters() : Json::object());
    return s.ok() ? NoContent() : Fault(absl::StrCat("action_type: FlushMetrics: ", s.message()));
  }
  return Fault(absl::StrFormat(
      "action_type: '%s' is not one of InstanceStart, SendCtrlAltDel, FlushMetrics", action));
}

HttpResponse ApiController::Route(const HttpRequest& req) {
  const std::string& m = req.method;
  const std::string& path = req.path;
  const std::string what = absl::StrCat(m, " ", path);

  if (m == "GET") {
    if (path == "/") {
      return JsonOk(
          {{"app_name", kAppName}, {"id", vm_id_}, {"state", State()}, {"vmm_version", version_}});
    }
    if (path == "/version") {
      return JsonOk(
          {{"firecracker_version", kFirecrackerApiVersion}, {"edgevisor_version", version_}});
    }
    if (path == "/machine-config") return JsonOk(MachineConfigJson(resources_.machine));
    if (path == "/vm/config") return JsonOk(resources_.ToJson());
    if (path == "/balloon") return GetBalloon();
    if (path == "/balloon/statistics") return GetBalloonStatistics();
    if (path == "/mmds") return JsonOk(mmds_->Get());
  }
  if (absl::StartsWith(path, "/balloon/hinting/")) {
    return Fault(absl::StrFormat(
        "%s: free page hinting is not supported by edgevisor (its balloon does free page "
        "reporting)",
        what));
  }
  if (IsUnsupportedPath(path)) {
    return Fault(absl::StrFormat("%s: not supported by edgevisor yet (see docs/API.md)", what));
  }
  if (m != "PUT" && m != "PATCH") {
    return Fault(absl::StrFormat("Invalid request method and/or path: %s", what));
  }

  // Every remaining endpoint takes a JSON body.
  auto is_known = [&] {
    if (m == "PUT") {
      return path == "/actions" || path == "/boot-source" || path == "/machine-config" ||
             path == "/logger" || path == "/metrics" || path == "/snapshot/create" ||
             path == "/snapshot/load" || path == "/entropy" || path == "/balloon" ||
             path == "/vsock" || path == "/mmds" || path == "/mmds/config" ||
             absl::StartsWith(path, "/drives/") || absl::StartsWith(path, "/network-interfaces/");
    }
    return path == "/machine-config" || path == "/vm" || path == "/balloon" || path == "/mmds" ||
           path == "/balloon/statistics" || absl::StartsWith(path, "/drives/") ||
           absl::StartsWith(path, "/network-interfaces/");
  };
  if (!is_known()) return Fault(absl::StrFormat("Invalid request method and/or path: %s", what));
  auto body_or = ParseBody(req);
  if (!body_or.ok()) return Fault(body_or.status());
  const Json& body = *body_or;

  if (path == "/actions") return Action(body);
  if (path == "/vm") return OnVm(what, body);
  if (path == "/machine-config") return OnMachineConfig(m, what, body);
  if (path == "/boot-source") return OnBootSource(what, body);
  if (path == "/logger") return OnLogger(what, body);
  if (path == "/metrics") return OnMetrics(what, body);
  if (path == "/entropy") return OnEntropy(what, body);
  if (path == "/vsock") return OnVsock(what, body);
  if (absl::StartsWith(path, "/mmds")) return OnMmds(m, what, path, body);
  if (absl::StartsWith(path, "/balloon")) return OnBalloon(m, what, path, body);
  if (absl::StartsWith(path, "/snapshot/")) return OnSnapshot(what, path, body);
  if (auto id = IdFromPath(path, "/drives/")) return OnDrive(m, what, *id, body);
  if (auto id = IdFromPath(path, "/network-interfaces/")) {
    return OnNetworkInterface(m, what, *id, body);
  }
  return Fault(absl::StrFormat("Invalid request method and/or path: %s", what));
}

HttpResponse ApiController::OnVm(const std::string& what, const Json& body) {
  const bool booted = vm_ != nullptr;
  if (!booted) return Fault(absl::StrCat(what, " ", kBeforeBoot));
  if (!body.is_object()) return Fault("body: must be a JSON object");
  for (const auto& [k, v] : body.items()) {
    if (k != "state") return Fault(absl::StrCat(k, ": unknown field"));
  }
  if (!body.contains("state")) return Fault("state: missing required field");
  if (!body["state"].is_string()) return Fault("state: must be a string");
  const std::string state = body["state"].get<std::string>();
  absl::Status s;
  if (state == "Paused") {
    s = vm_->Pause();
  } else if (state == "Resumed") {
    s = vm_->Resume();
  } else {
    return Fault(absl::StrFormat("state: '%s' is not Paused or Resumed", state));
  }
  return s.ok() ? NoContent() : Fault(absl::StrCat("state: ", s.message()));
}

HttpResponse ApiController::OnMachineConfig(const std::string& m, const std::string& what,
                                            const Json& body) {
  const bool booted = vm_ != nullptr;
  if (booted) return Fault(absl::StrCat(what, " ", kAfterBoot));
  std::vector<std::string> notes;
  absl::StatusOr<Json> current = TranslateLegacyMachineConfig(body, "", notes);
  if (!current.ok()) return Fault(current.status());
  auto mc = ParseMachineConfig(*current, "", m == "PATCH" ? &resources_.machine : nullptr);
  if (!mc.ok()) return Fault(mc.status());
  for (const std::string& note : notes) spdlog::warn("{}: {}", what, note);
  if (host_.mem_mib != 0 && mc->mem_mib > host_.mem_mib) {
    return Fault(absl::StrFormat("mem_size_mib: %d MiB is more than the host's %d MiB", mc->mem_mib,
                                 host_.mem_mib));
  }
  if (host_.max_vcpus != 0 && mc->vcpus > host_.max_vcpus) {
    return Fault(absl::StrFormat("vcpu_count: %d is more than the host's limit of %d", mc->vcpus,
                                 host_.max_vcpus));
  }
  resources_.machine = *mc;
  configured_ = true;
  return NoContent();
}

HttpResponse ApiController::OnBootSource(const std::string& what, const Json& body) {
  const bool booted = vm_ != nullptr;
  if (booted) return Fault(absl::StrCat(what, " ", kAfterBoot));
  auto b = ParseBootSource(body, "");
  if (!b.ok()) return Fault(b.status());
  if (access(b->kernel_image_path.c_str(), R_OK) != 0) {
    return Fault(absl::StrFormat("kernel_image_path: cannot read %s: %s", b->kernel_image_path,
                                 strerror(errno)));
  }
  if (!b->initrd_path.empty() && access(b->initrd_path.c_str(), R_OK) != 0) {
    return Fault(
        absl::StrFormat("initrd_path: cannot read %s: %s", b->initrd_path, strerror(errno)));
  }
  resources_.boot_source = *b;
  configured_ = true;
  return NoContent();
}

HttpResponse ApiController::OnLogger(const std::string& what, const Json& body) {
  const bool booted = vm_ != nullptr;
  if (booted) return Fault(absl::StrCat(what, " ", kAfterBoot));
  std::vector<std::string> notes;
  absl::StatusOr<TranslatedLogger> current = TranslateLegacyLogger(body, "", notes);
  if (!current.ok()) return Fault(current.status());
  auto l = ParseLogger(current->logger, "");
  if (!l.ok()) return Fault(l.status());
  if (current->metrics) {  // a pre-1.0 metrics_fifo: the metrics first, as they can still fail
    auto mc = ParseMetrics(*current->metrics, "");
    if (!mc.ok()) return Fault(mc.status());
    if (absl::Status s = SetMetricsLocked(*mc); !s.ok()) return Fault(s);
  }
  if (hooks_.apply_logger) {
    if (absl::Status s = hooks_.apply_logger(*l); !s.ok()) return Fault(s);
  }
  resources_.logger = *l;
  for (const std::string& note : notes) spdlog::warn("{}: {}", what, note);
  return NoContent();
}

HttpResponse ApiController::OnMetrics(const std::string& what, const Json& body) {
  const bool booted = vm_ != nullptr;
  if (booted) return Fault(absl::StrCat(what, " ", kAfterBoot));
  auto mc = ParseMetrics(body, "");
  if (!mc.ok()) return Fault(mc.status());
  absl::Status s = SetMetricsLocked(*mc);
  return s.ok() ? NoContent() : Fault(s);
}

HttpResponse ApiController::OnEntropy(const std::string& what, const Json& body) {
  if (vm_ != nullptr) return Fault(absl::StrCat(what, " ", kAfterBoot));
  auto e = ParseEntropy(body, "");
  if (!e.ok()) return Fault(e.status());
  resources_.entropy = *e;
  configured_ = true;
  return NoContent();
}

HttpResponse ApiController::OnVsock(const std::string& what, const Json& body) {
  if (vm_ != nullptr) return Fault(absl::StrCat(what, " ", kAfterBoot));
  auto v = ParseVsock(body, "");
  if (!v.ok()) return Fault(v.status());
  resources_.vsock = *v;
  configured_ = true;
  return NoContent();
}

HttpResponse ApiController::OnMmds(const std::string& m, const std::string& what,
                                   const std::string& path, const Json& body) {
  if (path == "/mmds/config") {
    if (vm_ != nullptr) return Fault(absl::StrCat(what, " ", kAfterBoot));
    std::vector<std::string> ids;
    for (const FcNet& n : resources_.nets) ids.push_back(n.iface_id);
    auto c = ParseMmdsConfig(body, "", &ids);
    if (!c.ok()) return Fault(c.status());
    resources_.mmds = *c;
    configured_ = true;
    return NoContent();
  }
  // The store, before the VM starts and while it runs (the guest sees each change at once).
  absl::Status s = m == "PUT" ? mmds_->Put(body) : mmds_->Patch(body);
  return s.ok() ? NoContent() : Fault(absl::StrCat(what, ": ", s.message()));
}

HttpResponse ApiController::OnDrive(const std::string& m, const std::string& what,
                                    const std::string& id, const Json& body) {
  const bool booted = vm_ != nullptr;
  if (id.empty()) return Fault(absl::StrCat(what, ": the path needs a drive id"));
  if (m == "PATCH") {
    if (!booted) return Fault(absl::StrCat(what, " ", kBeforeBoot));
    return PatchDrive(id, body);
  }
  if (booted) return Fault(absl::StrCat(what, " ", kAfterBoot));
  auto d = ParseDrive(body, "");
  if (!d.ok()) return Fault(d.status());
  if (d->drive_id != id) {
    return Fault(absl::StrFormat("drive_id: '%s' does not match the path's '%s'", d->drive_id, id));
  }
  if (hooks_.check_drive) {
    if (absl::Status s = hooks_.check_drive(*d); !s.ok()) return Fault(s);
  }
  absl::Status s = resources_.PutDrive(*d);
  if (s.ok()) configured_ = true;
  return s.ok() ? NoContent() : Fault(s);
}

// PATCH /drives/{id} while running: a new rate limiter, a new backing file, or both (the limiter
// first: it cannot fail once parsed). Neither: nothing to change, as in Firecracker.
HttpResponse ApiController::PatchDrive(const std::string& id, const Json& body) {
  auto pd = ParsePartialDrive(body, "");
  if (!pd.ok()) return Fault(pd.status());
  if (pd->drive_id != id) {
    return Fault(
        absl::StrFormat("drive_id: '%s' does not match the path's '%s'", pd->drive_id, id));
  }
  if (!resources_.FindDrive(id)) return Fault(absl::StrFormat("drive_id: no drive '%s'", id));
  for (FcDrive& d : resources_.drives) {
    if (d.drive_id != id) continue;
    if (pd->rate_limiter) {
      absl::Status s = vm_->UpdateDriveRateLimiter(id, *pd->rate_limiter);
      if (!s.ok()) return Fault(absl::StrCat("rate_limiter: ", s.message()));
      d.rate_limiter = *pd->rate_limiter;
    }
    if (!pd->path_on_host) continue;
    FcDrive updated = d;
    updated.path_on_host = *pd->path_on_host;
    if (hooks_.check_drive) {
      if (absl::Status s = hooks_.check_drive(updated); !s.ok()) return Fault(s);
    }
    absl::Status s = vm_->ReplaceDriveBacking(id, updated.path_on_host);
    if (!s.ok()) return Fault(absl::StrCat("path_on_host: ", s.message()));
    d = updated;  // GET /vm/config shows the new file
  }
  return NoContent();
}

HttpResponse ApiController::OnNetworkInterface(const std::string& m, const std::string& what,
                                               const std::string& id, const Json& body) {
  const bool booted = vm_ != nullptr;
  if (id.empty()) return Fault(absl::StrCat(what, ": the path needs an interface id"));
  if (m == "PATCH") {
    if (!booted) return Fault(absl::StrCat(what, " ", kBeforeBoot));
    auto pn = ParsePartialNetworkInterface(body, "");
    if (!pn.ok()) return Fault(pn.status());
    if (pn->iface_id != id) return Fault(absl::StrFormat("iface_id: must be the path's '%s'", id));
    for (FcNet& n : resources_.nets) {
      if (n.iface_id != id) continue;
      const RateLimiterConfig* rx = pn->rx_rate_limiter ? &*pn->rx_rate_limiter : nullptr;
      const RateLimiterConfig* tx = pn->tx_rate_limiter ? &*pn->tx_rate_limiter : nullptr;
      if (absl::Status s = vm_->UpdateNetRateLimiters(id, rx, tx); !s.ok()) return Fault(s);
      if (rx) n.rx_rate_limiter = *rx;
      if (tx) n.tx_rate_limiter = *tx;
      return NoContent();
    }
    return Fault(absl::StrFormat("iface_id: no network interface '%s'", id));
  }
  if (booted) return Fault(absl::StrCat(what, " ", kAfterBoot));
  std::vector<std::string> notes;
  absl::StatusOr<Json> current = TranslateLegacyNetworkInterface(body, "", notes);
  if (!current.ok()) return Fault(current.status());
  auto n = ParseNetworkInterface(*current, "");
  if (!n.ok()) return Fault(n.status());
  for (const std::string& note : notes) spdlog::warn("{}: {}", what, note);
  if (n->iface_id != id) {
    return Fault(absl::StrFormat("iface_id: '%s' does not match the path's '%s'", n->iface_id, id));
  }
  if (hooks_.check_net) {
    if (absl::Status s = hooks_.check_net(*n); !s.ok()) return Fault(s);
  }
  absl::Status s = resources_.PutNet(*n);
  if (s.ok()) configured_ = true;
  return s.ok() ? NoContent() : Fault(s);
}

HttpResponse ApiController::OnSnapshot(const std::string& what, const std::string& path,
                                       const Json& body) {
  using namespace json_fields;  // NOLINT(build/namespaces): the field readers
  if (path == "/snapshot/load") return LoadSnapshot(body);
  if (vm_ == nullptr) return Fault(absl::StrCat(what, " ", kBeforeBoot));
  if (absl::Status s =
          CheckObject(body, "", {"snapshot_type", "snapshot_path", "mem_file_path", "version"});
      !s.ok()) {
    return Fault(s);
  }
  auto type = GetString(body, "", "snapshot_type", false);
  auto state_path = GetString(body, "", "snapshot_path", true);
  auto mem_path = GetString(body, "", "mem_file_path", true);
  auto version = GetString(body, "", "version", false);  // Firecracker's, deprecated: ignored
  for (const auto* r : {&type, &state_path, &mem_path, &version}) {
    if (!r->ok()) return Fault(r->status());
  }
  const bool diff = *type == "Diff";
  if (diff && !vm_->tracking_dirty_pages()) {
    return Fault(
        "snapshot_type: Diff snapshots need dirty-page tracking: set machine-config "
        "track_dirty_pages (or track_dirty_pages on PUT /snapshot/load), or take a Full snapshot");
  }
  if (!diff && !type->empty() && *type != "Full") {
    return Fault(absl::StrFormat("snapshot_type: '%s' is not Full or Diff", *type));
  }
  if (state_path->empty()) return Fault("snapshot_path: must not be empty");
  if (mem_path->empty()) return Fault("mem_file_path: must not be empty");
  if (!vm_->paused()) {
    return Fault(absl::StrCat(what, ": the microVM must be Paused first (PATCH /vm)"));
  }
  absl::Status s = vm_->CreateSnapshot(*state_path, *mem_path, diff);
  return s.ok() ? NoContent() : Fault(absl::StrCat(what, ": ", s.message()));
}

HttpResponse ApiController::LoadSnapshot(const Json& body) {
  using namespace json_fields;  // NOLINT(build/namespaces): the field readers
  if (vm_ != nullptr) return Fault(absl::StrCat("PUT /snapshot/load ", kAfterBoot));
  if (configured_) {
    return Fault(
        "PUT /snapshot/load: a snapshot brings its own machine, drives and network interfaces; "
        "load it before any other configuration");
  }
  if (absl::Status s = CheckObject(body, "",
                                   {"snapshot_path", "mem_file_path", "mem_backend",
                                    "enable_diff_snapshots", "track_dirty_pages", "resume_vm"});
      !s.ok()) {
    return Fault(s);
  }
  SnapshotLoad load;
  load.mmds = mmds_;
  auto state_path = GetString(body, "", "snapshot_path", true);
  auto mem_file = GetString(body, "", "mem_file_path", false);
  auto diff = GetBool(body, "", "enable_diff_snapshots", false, false);  // deprecated alias
  auto track = GetBool(body, "", "track_dirty_pages", false, false);
  auto resume = GetBool(body, "", "resume_vm", false, false);
  if (!state_path.ok()) return Fault(state_path.status());
  if (!mem_file.ok()) return Fault(mem_file.status());
  if (!diff.ok()) return Fault(diff.status());
  if (!track.ok()) return Fault(track.status());
  if (!resume.ok()) return Fault(resume.status());
  if (state_path->empty()) return Fault("snapshot_path: must not be empty");
  load.track_dirty_pages = *diff || *track;
  const bool has_backend = body.contains("mem_backend");
  if (has_backend == !mem_file->empty()) {
    return Fault("mem_backend: give exactly one of mem_backend and mem_file_path");
  }
  load.mem_path = *mem_file;
  if (has_backend) {
    const Json& b = body["mem_backend"];
    if (absl::Status s = CheckObject(b, "mem_backend", {"backend_type", "backend_path"}); !s.ok()) {
      return Fault(s);
    }
    auto type = GetString(b, "mem_backend", "backend_type", true);
    auto path = GetString(b, "mem_backend", "backend_path", true);
    if (!type.ok()) return Fault(type.status());
    if (!path.ok()) return Fault(path.status());
    if (*type == "Uffd") {
      return Fault(
          "mem_backend.backend_type: Uffd (userfaultfd page serving) is not supported; "
          "use File");
    }
    if (*type != "File") {
      return Fault(absl::StrFormat("mem_backend.backend_type: '%s' is not File or Uffd", *type));
    }
    load.mem_path = *path;
  }
  if (load.mem_path.empty()) return Fault("mem_backend.backend_path: must not be empty");
  load.snapshot_path = *state_path;
  load.resume = *resume;
  if (!hooks_.load_snapshot) return Fault("PUT /snapshot/load: not available in this process");
  auto loaded = hooks_.load_snapshot(load, metrics_);
  if (!loaded.ok()) return Fault(absl::StrCat("PUT /snapshot/load: ", loaded.status().message()));
  vm_ = loaded->vm;
  AdoptRestored(loaded->config);
  return NoContent();
}

// GET /vm/config and PATCH /drives see what a snapshot load restored.
void ApiController::AdoptRestored(const VmConfig& c) {
  resources_.machine = c.machine;
  for (const DriveConfig& d : c.drives) {
    FcDrive fd;
    fd.drive_id = d.id;
    fd.path_on_host = d.path;
    fd.is_read_only = d.read_only;
    fd.rate_limiter = d.rate_limiter;
    resources_.drives.push_back(fd);
  }
  for (const NetConfig& n : c.nets) {
    FcNet fn;
    fn.iface_id = n.id;
    fn.host_dev_name = n.tap;
    fn.rx_rate_limiter = n.rx_rate_limiter;
    fn.tx_rate_limiter = n.tx_rate_limiter;
    resources_.nets.push_back(fn);
  }
  resources_.entropy = c.entropy;
  resources_.balloon = c.balloon;
  resources_.vsock = c.vsock;
  resources_.mmds = c.mmds;
}

}  // namespace edgevisor::api
