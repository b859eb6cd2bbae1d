// ApiController without HTTP: routes, pre/post-boot rules, and what InstanceStart builds.
#include "src/vmm/api/api.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "tests/unit/vmm/api/fake_vm.h"

namespace edgevisor::api {
namespace {

using ::testing::HasSubstr;

using testing::FakeVm;

class ApiControllerTest : public ::testing::Test {
 protected:
  ApiControllerTest() {
    ApiHooks hooks;
    hooks.start = [this](const VmConfig& cfg,
                         std::shared_ptr<MetricsWriter> m) -> absl::StatusOr<RunningVm*> {
      started = cfg;
      metrics = std::move(m);
      if (fail_start) return absl::InvalidArgumentError("drives/d: cannot open");
      return &vm;
    };
    hooks.check_drive = [](const FcDrive&) { return absl::OkStatus(); };
    hooks.check_net = [](const FcNet& n) {
      return n.host_dev_name == "bad" ? absl::InvalidArgumentError("host_dev_name: cannot open")
                                      : absl::OkStatus();
    };
    api = std::make_unique<ApiController>("vm1", "0.1.0", HostLimits{4096, 8}, std::move(hooks));
  }
  HttpResponse Call(const std::string& method, const std::string& path,
                    const std::string& body = "") {
    return api->Handle({method, path, body});
  }
  std::string Fault(const HttpResponse& r) {
    return Json::parse(r.body, nullptr, false).value("fault_message", "<no fault_message>");
  }
  void Configure() {
    ASSERT_EQ(Call("PUT", "/boot-source", R"({"kernel_image_path": "/bin/true"})").status, 204);
  }

  FakeVm vm;
  std::optional<VmConfig> started;
  std::shared_ptr<MetricsWriter> metrics;
  bool fail_start = false;
  std::unique_ptr<ApiController> api;
};

TEST_F(ApiControllerTest, InstanceStartBuildsTheConfiguredVm) {
  Configure();
  EXPECT_EQ(Call("PUT", "/machine-config", R"({"vcpu_count": 2, "mem_size_mib": 256})").status,
            204);
  EXPECT_EQ(Call("PUT", "/drives/data",
                 R"({"drive_id": "data", "path_on_host": "/d", "is_root_device": false})")
                .status,
            204);
  EXPECT_EQ(Call("PUT", "/drives/rootfs",
                 R"({"drive_id": "rootfs", "path_on_host": "/r", "is_root_device": true,
                     "is_read_only": true, "io_engine": "Sync"})")
                .status,
            204);
  EXPECT_EQ(
      Call("PUT", "/network-interfaces/eth0",
           R"({"iface_id": "eth0", "host_dev_name": "tap0", "guest_mac": "AA:FC:00:00:00:01"})")
          .status,
      204);
  EXPECT_EQ(
      Call("PUT", "/network-interfaces/eth1", R"({"iface_id": "eth1", "host_dev_name": "tap1"})")
          .status,
      204);
  EXPECT_EQ(Json::parse(Call("GET", "/").body)["state"], "Not started");
  ASSERT_EQ(Call("PUT", "/actions", R"({"action_type": "InstanceStart"})").status, 204);
  ASSERT_TRUE(started.has_value());
  EXPECT_EQ(started->id, "vm1");
  EXPECT_EQ(started->machine.vcpus, 2);
  EXPECT_EQ(started->machine.mem_mib, 256u);
  EXPECT_EQ(started->boot.kernel_path, "/bin/true");
  EXPECT_THAT(started->boot.cmdline, HasSubstr("root=/dev/vda ro"));
  ASSERT_EQ(started->drives.size(), 2u);
  EXPECT_EQ(started->drives[0].id, "rootfs") << "the root drive is /dev/vda";
  EXPECT_TRUE(started->drives[0].read_only);
  EXPECT_EQ(started->drives[0].engine, DriveConfig::Engine::kSync);
  EXPECT_EQ(started->drives[1].engine, DriveConfig::Engine::kAuto);
  ASSERT_EQ(started->nets.size(), 2u);
  EXPECT_EQ(started->nets[0].id, "eth0");
  EXPECT_EQ(started->nets[0].mac, (MacAddress{0xaa, 0xfc, 0, 0, 0, 1}));
  EXPECT_EQ(started->nets[1].mac, DefaultMac(1));
  EXPECT_EQ(Json::parse(Call("GET", "/").body)["state"], "Running");
}

TEST_F(ApiControllerTest, PutReplacesAndPatchMerges) {
  EXPECT_EQ(Call("PUT", "/drives/d",
                 R"({"drive_id": "d", "path_on_host": "/a", "is_root_device": false})")
                .status,
            204);
  EXPECT_EQ(Call("PUT", "/drives/d",
                 R"({"drive_id": "d", "path_on_host": "/b", "is_root_device": false})")
                .status,
            204);
  Json cfg = Json::parse(Call("GET", "/vm/config").body);
  ASSERT_EQ(cfg["drives"].size(), 1u) << "same id: replaced, not added";
  EXPECT_EQ(cfg["drives"][0]["path_on_host"], "/b");

  EXPECT_EQ(Call("PUT", "/machine-config", R"({"vcpu_count": 4, "mem_size_mib": 512})").status,
            204);
  EXPECT_EQ(Call("PATCH", "/machine-config", R"({"mem_size_mib": 64})").status, 204);
  Json mc = Json::parse(Call("GET", "/machine-config").body);
  EXPECT_EQ(mc["vcpu_count"], 4) << "PATCH keeps what it does not name";
  EXPECT_EQ(mc["mem_size_mib"], 64);
  EXPECT_EQ(Call("PUT", "/machine-config", R"({"vcpu_count": 1, "mem_size_mib": 8192})").status,
            400)
      << "more than the host's memory";
  EXPECT_EQ(Json::parse(Call("GET", "/machine-config").body)["mem_size_mib"], 64)
      << "a failed update changes nothing";
}

TEST_F(ApiControllerTest, ExportedConfigIsAValidConfigFile) {
  Configure();
  Call("PUT", "/drives/rootfs",
       R"({"drive_id": "rootfs", "path_on_host": "/r", "is_root_device": true})");
  Call("PUT", "/network-interfaces/eth0", R"({"iface_id": "eth0", "host_dev_name": "tap0"})");
  Call("PUT", "/logger", R"({"level": "Debug"})");
  const std::string exported = Call("GET", "/vm/config").body;
  auto parsed = ParseFirecrackerConfig(exported);
  ASSERT_TRUE(parsed.ok()) << parsed.status() << "\n" << exported;
  EXPECT_EQ(parsed->vm.drives.size(), 1u);
  EXPECT_EQ(parsed->vm.nets.size(), 1u);
  EXPECT_EQ(parsed->logger.level, "debug");
}

TEST_F(ApiControllerTest, PutEntropyAddsTheDeviceBeforeBootOnly) {
  Configure();
  EXPECT_THAT(Fault(Call("PUT", "/entropy", R"({"rate_limiter": {"ops": {"size": "x"}}})")),
              HasSubstr("rate_limiter.ops.size"));
  EXPECT_THAT(Fault(Call("PUT", "/entropy", R"({"seed": 1})")), HasSubstr("seed: unknown field"));
  ASSERT_EQ(Call("PUT", "/entropy",
                 R"({"rate_limiter": {"bandwidth": {"size": 1000, "refill_time": 10}}})")
                .status,
            204);
  Json cfg = Json::parse(Call("GET", "/vm/config").body);
  EXPECT_EQ(cfg["entropy"]["rate_limiter"]["bandwidth"]["size"], 1000);
  ASSERT_EQ(Call("PUT", "/actions", R"({"action_type": "InstanceStart"})").status, 204);
  ASSERT_TRUE(started.has_value());
  ASSERT_TRUE(started->entropy.has_value());
  EXPECT_EQ(started->entropy->rate_limiter.bandwidth, (BucketConfig{1000, 0, 10}));
  EXPECT_THAT(Fault(Call("PUT", "/entropy", "{}")), HasSubstr("after starting"));
}

TEST_F(ApiControllerTest, BalloonBeforeAndAfterBoot) {
  Configure();
  EXPECT_THAT(Fault(Call("GET", "/balloon")), HasSubstr("no balloon device"));
  EXPECT_THAT(Fault(Call("PATCH", "/balloon", R"({"amount_mib": 1})")),
              HasSubstr("no balloon device"));
  EXPECT_THAT(Fault(Call("PUT", "/balloon", R"({"amount_mib": 1, "deflate_on_oom": "yes"})")),
              HasSubstr("deflate_on_oom: must be true or false"));
  ASSERT_EQ(Call("PUT", "/balloon",
                 R"({"amount_mib": 8, "deflate_on_oom": true, "stats_polling_interval_s": 0})")
                .status,
            204);
  EXPECT_EQ(Call("PATCH", "/balloon", R"({"amount_mib": 4})").status, 204);
  EXPECT_THAT(Fault(Call("PATCH", "/balloon", R"({"amount_mib": 4, "x": 1})")),
              HasSubstr("x: unknown field"));
  EXPECT_EQ(Call("PATCH", "/balloon/statistics", R"({"stats_polling_interval_s": 2})").status, 204);
  Json b = Json::parse(Call("GET", "/balloon").body);
  EXPECT_EQ(b["amount_mib"], 4);
  EXPECT_EQ(b["stats_polling_interval_s"], 2);
  EXPECT_THAT(Fault(Call("GET", "/balloon/statistics")), HasSubstr("before starting"));
  ASSERT_EQ(Call("PUT", "/actions", R"({"action_type": "InstanceStart"})").status, 204);
  ASSERT_TRUE(started.has_value() && started->balloon.has_value());
  EXPECT_EQ(started->balloon->amount_mib, 4u);
  EXPECT_EQ(started->balloon->stats_polling_interval_s, 2u);
  EXPECT_THAT(Fault(Call("PUT", "/balloon", R"({"amount_mib": 1, "deflate_on_oom": true})")),
              HasSubstr("after starting"));
  EXPECT_EQ(Call("PATCH", "/balloon", R"({"amount_mib": 100})").status, 204);
  EXPECT_EQ(vm.balloon_mib, 100u);
  EXPECT_THAT(Fault(Call("PATCH", "/balloon", R"({"amount_mib": 200})")), HasSubstr("amount_mib"));
  EXPECT_EQ(Json::parse(Call("GET", "/balloon").body)["amount_mib"], 100)
      << "a refused PATCH changes nothing";
  EXPECT_EQ(Call("PATCH", "/balloon/statistics", R"({"stats_polling_interval_s": 9})").status, 204);
  EXPECT_EQ(vm.balloon_interval, 9u);
  Json st = Json::parse(Call("GET", "/balloon/statistics").body);
  EXPECT_EQ(st["target_mib"], 100);
  EXPECT_EQ(st["actual_mib"], 2);
  EXPECT_EQ(st["free_memory"], 12345);
  EXPECT_FALSE(st.contains("swap_in")) << "only what the guest sent";
  EXPECT_THAT(Fault(Call("GET", "/balloon/hinting/status")), HasSubstr("not supported"));
}

TEST_F(ApiControllerTest, PostBootRules) {
  EXPECT_THAT(Fault(Call("PATCH", "/vm", R"({"state": "Paused"})")), HasSubstr("before starting"));
  EXPECT_THAT(Fault(Call("PUT", "/actions", R"({"action_type": "InstanceStart"})")),
              HasSubstr("boot-source"));
  Configure();
  ASSERT_EQ(Call("PUT", "/actions", R"({"action_type": "InstanceStart"})").status, 204);
  EXPECT_EQ(Call("PATCH", "/vm", R"({"state": "Paused"})").status, 204);
  EXPECT_EQ(Json::parse(Call("GET", "/").body)["state"], "Paused");
  EXPECT_EQ(Call("PATCH", "/vm", R"({"state": "Resumed"})").status, 204);
  EXPECT_EQ(vm.pauses, 1);
  EXPECT_EQ(Call("PUT", "/actions", R"({"action_type": "SendCtrlAltDel"})").status, 204);
  EXPECT_EQ(vm.ctrl_alt_dels, 1);
  for (const char* path : {"/boot-source", "/machine-config", "/logger", "/metrics"}) {
    EXPECT_THAT(Fault(Call("PUT", path, "{}")), HasSubstr("after starting")) << path;
  }
  EXPECT_THAT(Fault(Call("PUT", "/actions", R"({"action_type": "InstanceStart"})")),
              HasSubstr("after starting"));
}

TEST_F(ApiControllerTest, PatchDriveAfterBootReplacesTheBackingFile) {
  Configure();
  Call("PUT", "/drives/d", R"({"drive_id": "d", "path_on_host": "/a", "is_root_device": false})");
  ASSERT_EQ(Call("PUT", "/actions", R"({"action_type": "InstanceStart"})").status, 204);
  EXPECT_EQ(Call("PATCH", "/drives/d", R"({"drive_id": "d"})").status, 204);
  EXPECT_EQ(vm.last_backing, "") << "an id-only PATCH changes nothing";
  EXPECT_EQ(Call("PATCH", "/drives/d", R"({"drive_id": "d", "path_on_host": "/b"})").status, 204);
  EXPECT_EQ(vm.last_backing, "/b");
  EXPECT_EQ(Json::parse(Call("GET", "/vm/config").body)["drives"][0]["path_on_host"], "/b");
  EXPECT_EQ(vm.last_limiter, "") << "no rate_limiter: the limits stay";
  EXPECT_EQ(Call("PATCH", "/drives/d",
                 R"({"drive_id": "d", "rate_limiter": {"ops": {"size": 7, "refill_time": 10}}})")
                .status,
            204);
  EXPECT_EQ(vm.last_limiter, "d:7/0");
  EXPECT_EQ(vm.last_backing, "/b") << "the file stays";
  EXPECT_EQ(Json::parse(Call("GET", "/vm/config").body)["drives"][0]["rate_limiter"]["ops"]["size"],
            7);
  EXPECT_THAT(Fault(Call("PATCH", "/drives/d", R"({"drive_id": "d", "rate_limiter": 5})")),
              HasSubstr("rate_limiter: must be a JSON object"));
}

TEST_F(ApiControllerTest, FailedStartLeavesTheVmConfigurable) {
  Configure();
  fail_start = true;
  HttpResponse r = Call("PUT", "/actions", R"({"action_type": "InstanceStart"})");
  EXPECT_EQ(r.status, 400);
  EXPECT_THAT(Fault(r), HasSubstr("drives/d"));
  EXPECT_EQ(Json::parse(Call("GET", "/").body)["state"], "Not started");
  fail_start = false;
  EXPECT_EQ(Call("PUT", "/actions", R"({"action_type": "InstanceStart"})").status, 204);
}

TEST_F(ApiControllerTest, FlushMetricsWritesDeltas) {
  const std::string path = ::testing::TempDir() + "/api_unit.metrics";
  unlink(path.c_str());
  ASSERT_EQ(
      Call("PUT", "/metrics", R"({"metrics_path": ")" + path + R"(", "emit_id": true})").status,
      204);
  EXPECT_THAT(Fault(Call("PUT", "/metrics", R"({"metrics_path": ")" + path + R"("})")),
              HasSubstr("already configured"));
  Configure();
  ASSERT_EQ(Call("PUT", "/actions", R"({"action_type": "InstanceStart"})").status, 204);
  EXPECT_NE(metrics, nullptr) << "the VM gets the writer for its periodic flushes";
  vm.exits = 10;
  ASSERT_EQ(Call("PUT", "/actions", R"({"action_type": "FlushMetrics"})").status, 204);
  vm.exits = 15;
  ASSERT_EQ(Call("PUT", "/actions", R"({"action_type": "FlushMetrics"})").status, 204);
  std::ifstream f(path);
  std::string l1, l2;
  std::getline(f, l1);
  std::getline(f, l2);
  EXPECT_EQ(Json::parse(l1)["vcpu"]["exit_io_out"], 10);
  EXPECT_EQ(Json::parse(l2)["vcpu"]["exit_io_out"], 5) << "each line holds the increase";
  EXPECT_EQ(Json::parse(l2)["id"], "vm1");
  EXPECT_TRUE(Json::parse(l2).contains("utc_timestamp_ms"));
}

// Fleet drivers written against Firecracker before 1.0 send these names; each is an alias. The
// metrics pipe has no reader while the VMM opens it and writes to it: neither may block.
TEST_F(ApiControllerTest, PreOneZeroFieldNamesAreAliases) {
  const std::string fifo = ::testing::TempDir() + "/api_unit.metrics.fifo";
  unlink(fifo.c_str());
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  ASSERT_EQ(
      Call("PUT", "/logger",
           R"({"log_fifo": "/run/x/log.fifo", "metrics_fifo": ")" + fifo + R"(", "level": "Info"})")
          .status,
      204);
  EXPECT_EQ(Json::parse(Call("GET", "/vm/config").body)["logger"]["log_path"], "/run/x/log.fifo");
  EXPECT_THAT(Fault(Call("PUT", "/metrics", R"({"metrics_path": "/m"})")),
              HasSubstr("already configured"))
      << "metrics_fifo configured the metrics";
  EXPECT_EQ(Call("PUT", "/machine-config",
                 R"({"vcpu_count": 2, "mem_size_mib": 64, "ht_enabled": false})")
                .status,
            204);
  EXPECT_THAT(Fault(Call("PUT", "/machine-config",
                         R"({"vcpu_count": 2, "mem_size_mib": 64, "ht_enabled": true})")),
              HasSubstr("ht_enabled: true"));
  EXPECT_EQ(Call("PUT", "/network-interfaces/eth0",
                 R"({"iface_id": "eth0", "host_dev_name": "tap0", "allow_mmds_requests": true})")
                .status,
            204);
  Configure();
  ASSERT_EQ(Call("PUT", "/actions", R"({"action_type": "InstanceStart"})").status, 204);
  EXPECT_EQ(started->machine.vcpus, 2);
  ASSERT_EQ(started->nets.size(), 1u);
  vm.exits = 3;
  ASSERT_EQ(Call("PUT", "/actions", R"({"action_type": "FlushMetrics"})").status, 204);
  const int reader = open(fifo.c_str(), O_RDONLY | O_NONBLOCK);
  ASSERT_GE(reader, 0);
  char buf[4096];
  const ssize_t n = read(reader, buf, sizeof(buf));
  close(reader);
  ASSERT_GT(n, 0) << "the line written before any reader came is in the pipe";
  EXPECT_EQ(Json::parse(std::string(buf, static_cast<size_t>(n)))["vcpu"]["exit_io_out"], 3);
  unlink(fifo.c_str());
}

TEST(MetricsDeltaTest, NestedCountersAndResets) {
  Json prev = {{"a", 5u}, {"dev", {{"x", 7u}}}};
  Json now = {{"a", 9u}, {"dev", {{"x", 3u}, {"y", 1u}}}, {"name", "s"}};
  Json d = MetricsWriter::Delta(now, prev);
  EXPECT_EQ(d["a"], 4);
  EXPECT_EQ(d["dev"]["x"], 3) << "a counter that went down restarted: report its value";
  EXPECT_EQ(d["dev"]["y"], 1);
  EXPECT_EQ(d["name"], "s");
}

// Found by api_fuzz: nlohmann throws out_of_range, not parse_error, for numbers like 1e999.
TEST_F(ApiControllerTest, HugeNumbersAreBadJsonNotACrash) {
  HttpResponse r = Call("PUT", "/machine-config", R"({"vcpu_count": 1e999, "mem_size_mib": 8})");
  EXPECT_EQ(r.status, 400);
  EXPECT_THAT(Fault(r), HasSubstr("body: not valid JSON"));
}

TEST_F(ApiControllerTest, FaultJsonEscapesUserInput) {
  HttpResponse r = Call("PUT", "/actions", R"({"action_type": "a\"b\\c\u0001"})");
  EXPECT_EQ(r.status, 400);
  Json j = Json::parse(r.body);  // must stay valid JSON
  EXPECT_THAT(j["fault_message"].get<std::string>(), HasSubstr("a\"b\\c"));
}

// PUT /snapshot/create: Full, or Diff where dirty pages are tracked; only while Paused.
TEST_F(ApiControllerTest, SnapshotCreateFullAndDiff) {
  Configure();
  ASSERT_EQ(Call("PUT", "/actions", R"({"action_type": "InstanceStart"})").status, 204);
  const std::string full = R"({"snapshot_path": "/s", "mem_file_path": "/m"})";
  const std::string diff =
      R"({"snapshot_type": "Diff", "snapshot_path": "/s", "mem_file_path": "/m"})";
  HttpResponse r = Call("PUT", "/snapshot/create", full);
  EXPECT_EQ(r.status, 400);
  EXPECT_THAT(Fault(r), HasSubstr("must be Paused first"));
  ASSERT_EQ(Call("PATCH", "/vm", R"({"state": "Paused"})").status, 204);
  ASSERT_EQ(Call("PUT", "/snapshot/create", full).status, 204);
  EXPECT_EQ(vm.last_snapshot, "/s|/m|full");
  r = Call("PUT", "/snapshot/create", diff);
  EXPECT_EQ(r.status, 400) << "no dirty-page tracking";
  EXPECT_THAT(Fault(r), HasSubstr("snapshot_type: Diff snapshots need dirty-page tracking"));
  EXPECT_THAT(Fault(r), HasSubstr("track_dirty_pages"));
  vm.tracking = true;
  ASSERT_EQ(Call("PUT", "/snapshot/create", diff).status, 204);
  EXPECT_EQ(vm.last_snapshot, "/s|/m|diff");
  r = Call("PUT", "/snapshot/create",
           R"({"snapshot_type": "Half", "snapshot_path": "/s", "mem_file_path": "/m"})");
  EXPECT_EQ(r.status, 400);
  EXPECT_THAT(Fault(r), HasSubstr("snapshot_type: 'Half' is not Full or Diff"));
}

// machine-config track_dirty_pages reaches the VM's configuration and GET /vm/config.
TEST_F(ApiControllerTest, TrackDirtyPagesIsConfigured) {
  Configure();
  ASSERT_EQ(Call("PUT", "/machine-config",
                 R"({"vcpu_count": 1, "mem_size_mib": 64, "track_dirty_pages": true})")
                .status,
            204);
  EXPECT_EQ(Json::parse(Call("GET", "/vm/config").body)["machine-config"]["track_dirty_pages"],
            true);
  ASSERT_EQ(Call("PUT", "/actions", R"({"action_type": "InstanceStart"})").status, 204);
  ASSERT_TRUE(started.has_value());
  EXPECT_TRUE(started->machine.track_dirty_pages);
}

class ApiLoadTest : public ApiControllerTest {
 protected:
  ApiLoadTest() { Fresh(); }
  // A controller that has not loaded anything yet.
  void Fresh() {
    loaded.reset();
    ApiHooks hooks;
    hooks.load_snapshot = [this](const SnapshotLoad& l,
                                 std::shared_ptr<MetricsWriter>) -> absl::StatusOr<LoadedVm> {
      loaded = l;
      return LoadedVm{&vm, VmConfig{}};
    };
    api = std::make_unique<ApiController>("vm1", "0.1.0", HostLimits{4096, 8}, std::move(hooks));
  }
  std::optional<SnapshotLoad> loaded;
};

// PUT /snapshot/load: track_dirty_pages, and its older name enable_diff_snapshots, turn dirty-page
// tracking on in the restored VM.
TEST_F(ApiLoadTest, LoadPassesDirtyPageTracking) {
  for (const std::string field : {"track_dirty_pages", "enable_diff_snapshots", ""}) {
    SCOPED_TRACE(field);
    Fresh();
    std::string body =
        R"({"snapshot_path": "/s", "mem_backend": {"backend_type": "File", "backend_path": "/m"})";
    if (!field.empty()) body += absl::StrCat(R"(, ")", field, R"(": true)");
    body += "}";
    HttpResponse r = Call("PUT", "/snapshot/load", body);
    ASSERT_EQ(r.status, 204) << Fault(r);
    ASSERT_TRUE(loaded.has_value());
    EXPECT_EQ(loaded->track_dirty_pages, !field.empty());
    EXPECT_EQ(loaded->mem_path, "/m");
  }
}

}  // namespace
}  // namespace edgevisor::api
