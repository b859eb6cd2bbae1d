// The Firecracker-compatible REST API, end to end: edgevisor --api-sock on /dev/kvm with the
// firmware payloads as guests. Covers Firecracker's getting-started sequence with curl, the
// bad-input suite (each case its own test; the VM must keep running), pause/resume under block
// I/O load, SendCtrlAltDel, metrics and the config file with the API.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>
#include <thread>

#include "nlohmann/json.hpp"
#include "tests/integration/api_client.h"
#include "tests/integration/api_vm.h"
#include "tests/integration/vmm_process.h"

namespace edgevisor::testing {
namespace {

using ::testing::ContainsRegex;
using ::testing::HasSubstr;
using Json = nlohmann::json;

// ---- Firecracker's getting-started sequence, with curl --------------------------------------

std::string Curl(const std::string& sock, const std::string& method, const std::string& path,
                 const std::string& body) {
  // The commands of Firecracker's getting-started guide, with our paths.
  std::string cmd = "curl -s -i --unix-socket " + sock + " -X " + method + " 'http://localhost" +
                    path + "' -H 'Accept: application/json' -H 'Content-Type: application/json'";
  if (!body.empty()) cmd += " -d '" + body + "'";
  return Sh(cmd).second;
}

TEST(ApiTest, FirecrackerGettingStartedWithCurlBootsPayload) {
  const std::string img = MakeImage("api_rootfs.img", 16 << 20);
  ApiVm vm("gs");
  ASSERT_TRUE(vm.ready()) << vm.proc().Finish(1000).err;
  const std::string kernel = Payload("blk_integrity");
  EXPECT_THAT(
      Curl(vm.sock(), "PUT", "/boot-source",
           R"({"kernel_image_path": ")" + kernel +
               R"(", "boot_args": "console=ttyS0 reboot=k panic=1 pci=off expect_serial=rootfs"})"),
      HasSubstr("HTTP/1.1 204"));
  EXPECT_THAT(Curl(vm.sock(), "PUT", "/drives/rootfs",
                   R"({"drive_id": "rootfs", "path_on_host": ")" + img +
                       R"(", "is_root_device": true, "is_read_only": false})"),
              HasSubstr("HTTP/1.1 204"));
  EXPECT_THAT(
      Curl(vm.sock(), "PUT", "/machine-config", R"({"vcpu_count": 2, "mem_size_mib": 128})"),
      HasSubstr("HTTP/1.1 204"));
  const std::string config = Curl(vm.sock(), "GET", "/vm/config", "");
  EXPECT_THAT(config, HasSubstr("HTTP/1.1 200"));
  EXPECT_THAT(config, HasSubstr(R"("drive_id":"rootfs")"));
  EXPECT_THAT(config, HasSubstr(R"("vcpu_count":2)"));
  EXPECT_THAT(Curl(vm.sock(), "PUT", "/actions", R"({"action_type": "InstanceStart"})"),
              HasSubstr("HTTP/1.1 204"));
  auto r = vm.proc().Finish(60000);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("root=/dev/vda rw")) << "the root drive is named on the cmdline";
  EXPECT_THAT(r.out, ContainsRegex(" [1-9][0-9]* passed, 0 failed"));
  EXPECT_THAT(r.err, HasSubstr("[gs:")) << "--id on every log line";
  EXPECT_NE(access(vm.sock().c_str(), F_OK), 0) << "the socket is removed at exit";
}

// The network step of the same guide: PUT /network-interfaces/eth0 on a TAP, then ping the
// guest through it.
TEST(ApiTest, GettingStartedNetworkInterfacePings) {
  ASSERT_EQ(geteuid(), 0u) << "network namespaces and TAPs need root";
  TapNamespace net("evapi");
  ASSERT_TRUE(net.ok());
  const std::string& ns = net.name();
  auto in = [&](const std::string& cmd) { return net.In(cmd); };
  const std::string sock = SockPath("net");
  unlink(sock.c_str());
  Spawned proc({"/usr/bin/ip", "netns", "exec", ns, EdgevisorBin(), "--api-sock", sock});
  ASSERT_TRUE(WaitForSocket(sock, 5000));
  EXPECT_THAT(Curl(sock, "PUT", "/boot-source",
                   R"({"kernel_image_path": ")" + Payload("net_responder") + R"("})"),
              HasSubstr("HTTP/1.1 204"));
  EXPECT_THAT(Curl(sock, "PUT", "/machine-config", R"({"vcpu_count": 1, "mem_size_mib": 64})"),
              HasSubstr("HTTP/1.1 204"));
  EXPECT_THAT(
      Curl(sock, "PUT", "/network-interfaces/eth0",
           R"({"iface_id": "eth0", "guest_mac": "AA:FC:00:00:00:01", "host_dev_name": "tap0"})"),
      HasSubstr("HTTP/1.1 204"));
  EXPECT_THAT(Curl(sock, "PUT", "/actions", R"({"action_type": "InstanceStart"})"),
              HasSubstr("HTTP/1.1 204"));
  ASSERT_TRUE(proc.WaitFor("ready", 30000)) << proc.out() << proc.err();
  auto [rc, out] = in("ping -c 3 -i 0.2 -W 5 10.0.2.15");
  EXPECT_EQ(rc, 0) << out;
  EXPECT_THAT(out, HasSubstr("3 received"));
  in("printf quit | socat -u - UDP:10.0.2.15:7");
  auto r = proc.Finish(20000);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("net_responder: quit"));
}

// ---- The bad-input suite ---------------------------------------------------------------------

enum class When { kPreBoot, kRunning };

struct BadCase {
  const char* name;
  When when;
  const char* method;
  const char* path;
  std::string body;
  const char* expect;  // the field (or path) the fault_message must name; empty: any 4xx
};

// Two VMs shared by every case: one never started (it has a root drive, but no boot source),
// and one running the `console` payload, which polls its UART forever.
class BadInputTest : public ::testing::TestWithParam<BadCase> {
 protected:
  static void SetUpTestSuite() {
    disk_ = MakeImage("api_bad.img", 1 << 20);
    pre_ = new ApiVm("pre");
    running_ = new ApiVm("run");
    ASSERT_TRUE(pre_->ready() && running_->ready());
    ASSERT_EQ(pre_->Drive("root0", disk_, /*root=*/true), 204);
    ASSERT_EQ(running_->Drive("root0", disk_, /*root=*/true), 204);
    ASSERT_EQ(running_->BootSource(Payload("console"), "irq"), 204);
    ASSERT_EQ(running_->Put("/machine-config", R"({"vcpu_count": 1, "mem_size_mib": 32})").status,
              204);
    ASSERT_EQ(running_->Start(), 204);
    ASSERT_EQ(running_->State(), "Running");
  }
  static void TearDownTestSuite() {
    delete pre_;
    delete running_;
  }
  static inline ApiVm* pre_ = nullptr;
  static inline ApiVm* running_ = nullptr;
  static inline std::string disk_;
};

TEST_P(BadInputTest, FourXxNamingTheFieldAndTheVmLivesOn) {
  const BadCase& c = GetParam();
  ApiVm& vm = c.when == When::kPreBoot ? *pre_ : *running_;
  const std::string before = vm.State();
  // An empty path sends `method` as raw bytes: a request that is not HTTP at all.
  HttpReply r = *c.path ? Http(vm.sock(), c.method, c.path, c.body)
                        : RawHttp(vm.sock(), std::string(c.method) + "\r\n\r\n");
  EXPECT_GE(r.status, 400) << r.raw;
  EXPECT_LT(r.status, 500) << r.raw;
  if (*c.expect) {
    Json j = Json::parse(r.body, nullptr, false);
    ASSERT_TRUE(j.is_object() && j.contains("fault_message")) << r.raw;
    EXPECT_THAT(j["fault_message"].get<std::string>(), HasSubstr(c.expect));
  }
  EXPECT_TRUE(vm.Alive());
  EXPECT_EQ(vm.State(), before) << "a bad request must not change the VM's state";
  if (c.when == When::kRunning) {
    EXPECT_EQ(vm.State(), "Running");
  }
}

std::string Big(size_t n) { return R"({"kernel_image_path": ")" + std::string(n, 'a') + "\"}"; }

const std::string kKernelField = R"("kernel_image_path": "/bin/true")";

// One case per line, so the table reads as a table.
// clang-format off
INSTANTIATE_TEST_SUITE_P(
    Api, BadInputTest,
    ::testing::Values(
        // Bodies: JSON itself.
        BadCase{"MalformedJson", When::kPreBoot, "PUT", "/boot-source", "{kernel_image_path", "body: not valid JSON"},
        BadCase{"EmptyBody", When::kPreBoot, "PUT", "/boot-source", "", "body: missing"},
        BadCase{"BodyIsArray", When::kPreBoot, "PUT", "/boot-source", "[1]", "must be a JSON object"},
        BadCase{"BodyIsString", When::kPreBoot, "PUT", "/machine-config", "\"x\"", "must be a JSON object"},
        BadCase{"TrailingGarbage", When::kPreBoot, "PUT", "/machine-config", R"({"vcpu_count":1,"mem_size_mib":8} x)", "not valid JSON"},
        BadCase{"NumberOutOfRange", When::kPreBoot, "PUT", "/machine-config", R"({"vcpu_count": 1e999, "mem_size_mib": 64})", "body: not valid JSON"},
        BadCase{"HugeBody", When::kPreBoot, "PUT", "/boot-source", Big(200000), "larger than the limit"},
        // boot-source
        BadCase{"KernelWrongType", When::kPreBoot, "PUT", "/boot-source", R"({"kernel_image_path": 5})", "kernel_image_path: must be a string"},
        BadCase{"KernelMissing", When::kPreBoot, "PUT", "/boot-source", R"({"boot_args": "x"})", "kernel_image_path: missing"},
        BadCase{"KernelEmpty", When::kPreBoot, "PUT", "/boot-source", R"({"kernel_image_path": ""})", "kernel_image_path"},
        BadCase{"KernelNotFound", When::kPreBoot, "PUT", "/boot-source", R"({"kernel_image_path": "/nonexistent/k"})", "kernel_image_path: cannot read"},
        BadCase{"BootUnknownField", When::kPreBoot, "PUT", "/boot-source", "{" + kKernelField + R"(, "foo": 1})", "foo: unknown field"},
        BadCase{"BootArgsWrongType", When::kPreBoot, "PUT", "/boot-source", "{" + kKernelField + R"(, "boot_args": 1})", "boot_args: must be a string"},
        BadCase{"BootArgsTooLong", When::kPreBoot, "PUT", "/boot-source", "{" + kKernelField + R"(, "boot_args": ")" + std::string(5000, 'x') + "\"}", "boot_args"},
        BadCase{"Initrd", When::kPreBoot, "PUT", "/boot-source", "{" + kKernelField + R"(, "initrd_path": "/i"})", "initrd_path"},
        // machine-config
        BadCase{"VcpuZero", When::kPreBoot, "PUT", "/machine-config", R"({"vcpu_count": 0, "mem_size_mib": 64})", "vcpu_count"},
        BadCase{"VcpuTooMany", When::kPreBoot, "PUT", "/machine-config", R"({"vcpu_count": 33, "mem_size_mib": 64})", "vcpu_count"},
        BadCase{"VcpuString", When::kPreBoot, "PUT", "/machine-config", R"({"vcpu_count": "2", "mem_size_mib": 64})", "vcpu_count: must be"},
        BadCase{"VcpuFloat", When::kPreBoot, "PUT", "/machine-config", R"({"vcpu_count": 1.5, "mem_size_mib": 64})", "vcpu_count"},
        BadCase{"VcpuMissing", When::kPreBoot, "PUT", "/machine-config", R"({"mem_size_mib": 64})", "vcpu_count: missing"},
        BadCase{"MemMissing", When::kPreBoot, "PUT", "/machine-config", R"({"vcpu_count": 1})", "mem_size_mib: missing"},
        BadCase{"MemNegative", When::kPreBoot, "PUT", "/machine-config", R"({"vcpu_count": 1, "mem_size_mib": -1})", "mem_size_mib"},
        BadCase{"MemMoreThanHost", When::kPreBoot, "PUT", "/machine-config", R"({"vcpu_count": 1, "mem_size_mib": 4294967296})", "mem_size_mib"},
        BadCase{"Smt", When::kPreBoot, "PUT", "/machine-config", R"({"vcpu_count": 2, "mem_size_mib": 64, "smt": true})", "smt"},
        BadCase{"CpuTemplate", When::kPreBoot, "PUT", "/machine-config", R"({"vcpu_count": 1, "mem_size_mib": 64, "cpu_template": "T2"})", "cpu_template"},
        BadCase{"HugePages", When::kPreBoot, "PUT", "/machine-config", R"({"vcpu_count": 1, "mem_size_mib": 64, "huge_pages": "2M"})", "huge_pages"},
        BadCase{"MachineUnknownField", When::kPreBoot, "PUT", "/machine-config", R"({"vcpu_count": 1, "mem_size_mib": 64, "cpus": 2})", "cpus: unknown field"},
        BadCase{"MachinePatchEmpty", When::kPreBoot, "PATCH", "/machine-config", "{}", "empty PATCH"},
        BadCase{"MachinePatchWrongType", When::kPreBoot, "PATCH", "/machine-config", R"({"vcpu_count": true})", "vcpu_count"},
        // drives
        BadCase{"DriveNoPath", When::kPreBoot, "PUT", "/drives/d1", R"({"drive_id": "d1", "is_root_device": false})", "path_on_host: missing"},
        BadCase{"DriveIdMismatch", When::kPreBoot, "PUT", "/drives/d1", R"({"drive_id": "d2", "path_on_host": "/dev/null", "is_root_device": false})", "drive_id"},
        BadCase{"DrivePathMissingFile", When::kPreBoot, "PUT", "/drives/d1", R"({"drive_id": "d1", "path_on_host": "/nonexistent.img", "is_root_device": false})", "path_on_host: cannot open"},
        BadCase{"DrivePathIsDirectory", When::kPreBoot, "PUT", "/drives/d1", R"({"drive_id": "d1", "path_on_host": "/tmp", "is_root_device": false})", "path_on_host"},
        BadCase{"DriveRootNotBool", When::kPreBoot, "PUT", "/drives/d1", R"({"drive_id": "d1", "path_on_host": "/dev/null", "is_root_device": "yes"})", "is_root_device: must be true or false"},
        BadCase{"DriveRootMissing", When::kPreBoot, "PUT", "/drives/d1", R"({"drive_id": "d1", "path_on_host": "/dev/null"})", "is_root_device: missing"},
        BadCase{"DriveSecondRoot", When::kPreBoot, "PUT", "/drives/d1", R"({"drive_id": "d1", "path_on_host": ")" + Payload("hello") + R"(", "is_root_device": true, "is_read_only": true})", "is_root_device"},
        BadCase{"DriveBadEngine", When::kPreBoot, "PUT", "/drives/d1", R"({"drive_id": "d1", "path_on_host": "/dev/null", "is_root_device": false, "io_engine": "Fast"})", "io_engine"},
        BadCase{"DriveBadCache", When::kPreBoot, "PUT", "/drives/d1", R"({"drive_id": "d1", "path_on_host": "/dev/null", "is_root_device": false, "cache_type": "None"})", "cache_type"},
        BadCase{"DriveRateLimiter", When::kPreBoot, "PUT", "/drives/d1", R"({"drive_id": "d1", "path_on_host": "/dev/null", "is_root_device": false, "rate_limiter": {"ops": 1}})", "rate_limiter.ops: must be a JSON object"},
        BadCase{"DriveVhostUser", When::kPreBoot, "PUT", "/drives/d1", R"({"drive_id": "d1", "socket": "/s", "is_root_device": false})", "socket"},
        BadCase{"DriveIdBadChars", When::kPreBoot, "PUT", "/drives/a-b", R"({"drive_id": "a-b", "path_on_host": "/dev/null", "is_root_device": false})", "drive_id"},
        BadCase{"DriveNoIdInPath", When::kPreBoot, "PUT", "/drives/", R"({"drive_id": "x", "path_on_host": "/dev/null", "is_root_device": false})", "drive id"},
        BadCase{"DriveUnknownField", When::kPreBoot, "PUT", "/drives/d1", R"({"drive_id": "d1", "path_on_host": "/dev/null", "is_root_device": false, "size": 1})", "size: unknown field"},
        BadCase{"DrivePatchBeforeBoot", When::kPreBoot, "PATCH", "/drives/root0", R"({"drive_id": "root0"})", "before starting"},
        // network-interfaces
        BadCase{"NetNoHostDev", When::kPreBoot, "PUT", "/network-interfaces/eth0", R"({"iface_id": "eth0"})", "host_dev_name: missing"},
        BadCase{"NetBadMac", When::kPreBoot, "PUT", "/network-interfaces/eth0", R"({"iface_id": "eth0", "host_dev_name": "tapx", "guest_mac": "zz:00:00:00:00:01"})", "guest_mac"},
        BadCase{"NetMulticastMac", When::kPreBoot, "PUT", "/network-interfaces/eth0", R"({"iface_id": "eth0", "host_dev_name": "tapx", "guest_mac": "01:00:5e:00:00:01"})", "guest_mac"},
        BadCase{"NetTapCannotBeOpened", When::kPreBoot, "PUT", "/network-interfaces/eth0", R"({"iface_id": "eth0", "host_dev_name": "lo"})", "host_dev_name: cannot open TAP"},
        BadCase{"NetNameTooLong", When::kPreBoot, "PUT", "/network-interfaces/eth0", R"({"iface_id": "eth0", "host_dev_name": "a_very_long_tap_name"})", "host_dev_name"},
        BadCase{"NetIdMismatch", When::kPreBoot, "PUT", "/network-interfaces/eth0", R"({"iface_id": "eth1", "host_dev_name": "tapx"})", "iface_id"},
        BadCase{"NetMtu", When::kPreBoot, "PUT", "/network-interfaces/eth0", R"({"iface_id": "eth0", "host_dev_name": "tapx", "mtu": 9000})", "mtu"},
        BadCase{"NetRateLimiter", When::kPreBoot, "PUT", "/network-interfaces/eth0", R"({"iface_id": "eth0", "host_dev_name": "tapx", "rx_rate_limiter": {"ops": {"size": 1, "refill_time": 1, "speed": 2}}})", "rx_rate_limiter.ops.speed: unknown field"},
        BadCase{"NetPatchBeforeBoot", When::kPreBoot, "PATCH", "/network-interfaces/eth0", R"({"iface_id": "eth0"})", "before starting"},
        // logger and metrics
        BadCase{"LoggerBadLevel", When::kPreBoot, "PUT", "/logger", R"({"level": "Loud"})", "level"},
        BadCase{"LoggerBadPath", When::kPreBoot, "PUT", "/logger", R"({"log_path": "/nonexistent/dir/log"})", "log_path"},
        BadCase{"LoggerShowOrigin", When::kPreBoot, "PUT", "/logger", R"({"show_log_origin": true})", "show_log_origin"},
        BadCase{"LoggerModule", When::kPreBoot, "PUT", "/logger", R"({"module": "api_server"})", "module"},
        BadCase{"MetricsNoPath", When::kPreBoot, "PUT", "/metrics", R"({"emit_id": true})", "metrics_path: missing"},
        BadCase{"MetricsBadPath", When::kPreBoot, "PUT", "/metrics", R"({"metrics_path": "/nonexistent/dir/m"})", "metrics_path"},
        BadCase{"MetricsPropertyNotString", When::kPreBoot, "PUT", "/metrics", R"({"metrics_path": "/tmp/m", "properties": {"a": 1}})", "properties.a"},
        // actions and vm state
        BadCase{"ActionUnknown", When::kPreBoot, "PUT", "/actions", R"({"action_type": "Reboot"})", "action_type"},
        BadCase{"ActionMissing", When::kPreBoot, "PUT", "/actions", "{}", "action_type: missing"},
        BadCase{"ActionWrongType", When::kPreBoot, "PUT", "/actions", R"({"action_type": 1})", "action_type: must be a string"},
        BadCase{"ActionExtraField", When::kPreBoot, "PUT", "/actions", R"({"action_type": "InstanceStart", "now": true})", "now: unknown field"},
        BadCase{"StartWithoutKernel", When::kPreBoot, "PUT", "/actions", R"({"action_type": "InstanceStart"})", "boot-source"},
        BadCase{"CtrlAltDelBeforeBoot", When::kPreBoot, "PUT", "/actions", R"({"action_type": "SendCtrlAltDel"})", "SendCtrlAltDel"},
        BadCase{"FlushMetricsUnconfigured", When::kPreBoot, "PUT", "/actions", R"({"action_type": "FlushMetrics"})", "FlushMetrics"},
        BadCase{"PauseBeforeBoot", When::kPreBoot, "PATCH", "/vm", R"({"state": "Paused"})", "before starting"},
        // methods and paths
        BadCase{"UnknownPath", When::kPreBoot, "GET", "/foo", "", "Invalid request method and/or path: GET /foo"},
        BadCase{"DeleteMethod", When::kPreBoot, "DELETE", "/drives/root0", "", "DELETE /drives/root0"},
        BadCase{"PostMethod", When::kPreBoot, "POST", "/actions", R"({"action_type": "InstanceStart"})", "POST /actions"},
        BadCase{"GetOnPutOnly", When::kPreBoot, "GET", "/boot-source", "", "GET /boot-source"},
        BadCase{"UnsupportedCpuConfig", When::kPreBoot, "PUT", "/cpu-config", "{}", "/cpu-config: not supported"},
        BadCase{"VsockHostCid", When::kPreBoot, "PUT", "/vsock", R"({"guest_cid": 2, "uds_path": "/v"})", "guest_cid: 2 is outside"},
        BadCase{"VsockNoPath", When::kPreBoot, "PUT", "/vsock", R"({"guest_cid": 3})", "uds_path: missing"},
        BadCase{"VsockAfterBoot", When::kRunning, "PUT", "/vsock", R"({"guest_cid": 3, "uds_path": "/v"})", "after starting"},
        BadCase{"MmdsNotAnObject", When::kPreBoot, "PUT", "/mmds", "[1]", "must be a JSON object"},
        BadCase{"MmdsPatchFirst", When::kPreBoot, "PATCH", "/mmds", R"({"a": 1})", "PUT /mmds first"},
        BadCase{"MmdsConfigUnknownInterface", When::kPreBoot, "PUT", "/mmds/config", R"({"network_interfaces": ["eth9"]})", "'eth9' is not a network interface"},
        BadCase{"MmdsConfigAfterBoot", When::kRunning, "PUT", "/mmds/config", R"({"network_interfaces": ["eth0"]})", "after starting"},
        BadCase{"UnsupportedPmem", When::kPreBoot, "PUT", "/pmem/p0", "{}", "/pmem/p0: not supported"},
        BadCase{"EntropyBadBucket", When::kPreBoot, "PUT", "/entropy", R"({"rate_limiter": {"bandwidth": {"size": "x", "refill_time": 1}}})", "rate_limiter.bandwidth.size"},
        BadCase{"EntropyUnknownField", When::kPreBoot, "PUT", "/entropy", R"({"rng": 1})", "rng: unknown field"},
        BadCase{"EntropyAfterBoot", When::kRunning, "PUT", "/entropy", "{}", "after starting"},
        BadCase{"NotHttp", When::kPreBoot, "BREW /coffee HTCPCP/1.0\r\nX:", "", "", ""},
        // after InstanceStart: pre-boot-only changes, bad states, and the same body checks
        BadCase{"StartTwice", When::kRunning, "PUT", "/actions", R"({"action_type": "InstanceStart"})", "InstanceStart is not supported after starting"},
        BadCase{"BootSourceAfterBoot", When::kRunning, "PUT", "/boot-source", "{" + kKernelField + "}", "PUT /boot-source is not supported after starting"},
        BadCase{"MachineAfterBoot", When::kRunning, "PUT", "/machine-config", R"({"vcpu_count": 1, "mem_size_mib": 64})", "after starting"},
        BadCase{"MachinePatchAfterBoot", When::kRunning, "PATCH", "/machine-config", R"({"vcpu_count": 2})", "after starting"},
        BadCase{"DriveAfterBoot", When::kRunning, "PUT", "/drives/d9", R"({"drive_id": "d9", "path_on_host": "/dev/null", "is_root_device": false})", "after starting"},
        BadCase{"NetAfterBoot", When::kRunning, "PUT", "/network-interfaces/eth0", R"({"iface_id": "eth0", "host_dev_name": "tapx"})", "after starting"},
        BadCase{"LoggerAfterBoot", When::kRunning, "PUT", "/logger", R"({"level": "Debug"})", "after starting"},
        // balloon
        BadCase{"BalloonBiggerThanGuest", When::kPreBoot, "PUT", "/balloon", R"({"amount_mib": 200, "deflate_on_oom": false})", "amount_mib: 200 MiB is more than the guest's 128 MiB"},
        BadCase{"BalloonNoDeflateOnOom", When::kPreBoot, "PUT", "/balloon", R"({"amount_mib": 1})", "deflate_on_oom: missing"},
        BadCase{"BalloonHinting", When::kPreBoot, "PUT", "/balloon", R"({"amount_mib": 1, "deflate_on_oom": true, "free_page_hinting": true})", "free_page_hinting"},
        BadCase{"BalloonIntervalTooLong", When::kPreBoot, "PUT", "/balloon", R"({"amount_mib": 1, "deflate_on_oom": true, "stats_polling_interval_s": 86401})", "stats_polling_interval_s"},
        BadCase{"BalloonPatchWithoutOne", When::kPreBoot, "PATCH", "/balloon", R"({"amount_mib": 1})", "no balloon device"},
        BadCase{"BalloonGetWithoutOne", When::kPreBoot, "GET", "/balloon", "", "no balloon device"},
        BadCase{"BalloonAfterBoot", When::kRunning, "PUT", "/balloon", R"({"amount_mib": 1, "deflate_on_oom": true})", "after starting"},
        BadCase{"BalloonStatsWithoutOne", When::kRunning, "GET", "/balloon/statistics", "", "no balloon device"},
        BadCase{"BalloonHintingStart", When::kRunning, "PATCH", "/balloon/hinting/start", "{}", "free page hinting"},
        BadCase{"MetricsAfterBoot", When::kRunning, "PUT", "/metrics", R"({"metrics_path": "/tmp/m"})", "after starting"},
        BadCase{"VmBadState", When::kRunning, "PATCH", "/vm", R"({"state": "Stopped"})", "state"},
        BadCase{"VmStateMissing", When::kRunning, "PATCH", "/vm", "{}", "state: missing"},
        BadCase{"VmStateWrongType", When::kRunning, "PATCH", "/vm", R"({"state": 1})", "state: must be a string"},
        BadCase{"VmUnknownField", When::kRunning, "PATCH", "/vm", R"({"state": "Resumed", "x": 1})", "x: unknown field"},
        BadCase{"DrivePatchNewPath", When::kRunning, "PATCH", "/drives/root0", R"({"drive_id": "root0", "path_on_host": "/dev/null"})", "path_on_host"},
        BadCase{"DrivePatchUnknownDrive", When::kRunning, "PATCH", "/drives/nope", R"({"drive_id": "nope"})", "drive_id: no drive"},
        BadCase{"DrivePatchIdMismatch", When::kRunning, "PATCH", "/drives/root0", R"({"drive_id": "other"})", "drive_id"},
        BadCase{"DrivePatchRateLimiter", When::kRunning, "PATCH", "/drives/root0", R"({"drive_id": "root0", "rate_limiter": {"bandwidth": {"size": 1.5, "refill_time": 1}}})", "rate_limiter.bandwidth.size"},
        BadCase{"NetPatchRateLimiter", When::kRunning, "PATCH", "/network-interfaces/eth0", R"({"iface_id": "eth0", "rx_rate_limiter": []})", "rx_rate_limiter: must be a JSON object"},
        BadCase{"MalformedJsonRunning", When::kRunning, "PATCH", "/vm", R"({"state": )", "not valid JSON"},
        BadCase{"HugeBodyRunning", When::kRunning, "PATCH", "/vm", Big(100000), "larger than the limit"},
        BadCase{"UnknownPathRunning", When::kRunning, "PUT", "/reboot", "{}", "PUT /reboot"},
        BadCase{"SnapshotRunning", When::kRunning, "PUT", "/snapshot/create", R"({"snapshot_path": "/s", "mem_file_path": "/m"})", "must be Paused first"},
        BadCase{"SnapshotDiff", When::kRunning, "PUT", "/snapshot/create", R"({"snapshot_type": "Diff", "snapshot_path": "/s", "mem_file_path": "/m"})", "snapshot_type: Diff"},
        BadCase{"SnapshotNoMemPath", When::kRunning, "PUT", "/snapshot/create", R"({"snapshot_path": "/s"})", "mem_file_path: missing"},
        BadCase{"SnapshotLoadAfterBoot", When::kRunning, "PUT", "/snapshot/load", R"({"snapshot_path": "/s", "mem_file_path": "/m"})", "/snapshot/load is not supported after starting"},
        BadCase{"MalformedHeaderRunning", When::kRunning, "GET / HTTP/1.1\r\nBad Header Line", "", "", ""},
        BadCase{"BadContentLengthRunning", When::kRunning, "PUT /vm HTTP/1.1\r\nHost: x\r\nContent-Length: abc", "", "", ""},
        BadCase{"BadChunkRunning", When::kRunning, "PATCH /vm HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nZZ", "", "", ""}),
    [](const ::testing::TestParamInfo<BadCase>& info) { return std::string(info.param.name); });
// clang-format on

// ---- The balloon ---------------------------------------------------------------------------

// The VMM's resident memory, in KiB (guest RAM is the bulk of it).
uint64_t RssKib(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(f, line);) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6));
  }
  return 0;
}

Json GetJson(ApiVm& vm, const std::string& path) {
  HttpReply r = vm.Get(path);
  EXPECT_EQ(r.status, 200) << path << ": " << r.body;
  return Json::parse(r.body, nullptr, false);
}

// The balloon payload writes over 16 MiB of its RAM, then gives those pages to the balloon when
// the API sets a 16 MiB target: the VMM's resident memory falls by about as much. Its statistics
// reach GET /balloon/statistics and are refreshed every second; it deflates at a 0 target and
// finds the pages it gave zeroed (released) and usable; its hostile buffers leave the VMM alive.
TEST(ApiTest, BalloonReleasesWhatTheGuestGivesAndReportsItsStatistics) {
  const std::string metrics = ::testing::TempDir() + "/api_balloon.metrics";
  unlink(metrics.c_str());
  ApiVm vm("balloon");
  ASSERT_TRUE(vm.ready());
  ASSERT_EQ(vm.Put("/metrics", R"({"metrics_path": ")" + metrics + R"("})").status, 204);
  ASSERT_EQ(vm.Put("/machine-config", R"({"vcpu_count": 1, "mem_size_mib": 128})").status, 204);
  ASSERT_EQ(vm.BootSource(Payload("balloon"), "region_mib=16"), 204);
  HttpReply b = vm.Put(
      "/balloon", R"({"amount_mib": 0, "deflate_on_oom": true, "stats_polling_interval_s": 1})");
  ASSERT_EQ(b.status, 204) << b.body;
  EXPECT_EQ(GetJson(vm, "/balloon")["stats_polling_interval_s"], 1);
  ASSERT_EQ(vm.Start(), 204);
  ASSERT_TRUE(vm.proc().WaitFor("balloon: ready, touched 16 MiB", 30000)) << vm.proc().out();
  const uint64_t before = RssKib(vm.proc().pid());
  EXPECT_EQ(vm.Patch("/balloon", R"({"amount_mib": 129})").status, 400);
  ASSERT_EQ(vm.Patch("/balloon", R"({"amount_mib": 16})").status, 204);
  ASSERT_TRUE(vm.proc().WaitFor("balloon: inflated 4096 pages", 30000)) << vm.proc().out();
  const uint64_t after = RssKib(vm.proc().pid());
  EXPECT_GE(before, after + 14 * 1024) << "RSS " << before << " KiB, then " << after << " KiB";

  Json st = GetJson(vm, "/balloon/statistics");
  EXPECT_EQ(st["target_mib"], 16) << st;
  EXPECT_EQ(st["target_pages"], 4096) << st;
  EXPECT_EQ(st["actual_mib"], 16) << st;
  EXPECT_EQ(st["total_memory"], 128ull << 20) << st;
  EXPECT_EQ(st["free_memory"], 0x1234000) << st;
  const uint64_t refreshes = st.value("minor_faults", uint64_t{0});
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  st = GetJson(vm, "/balloon/statistics");
  EXPECT_GE(st.value("minor_faults", uint64_t{0}), refreshes + 1)
      << "the guest's figures are asked for again every second: " << st;
  HttpReply off = vm.Patch("/balloon/statistics", R"({"stats_polling_interval_s": 0})");
  EXPECT_EQ(off.status, 400);
  EXPECT_THAT(off.body, HasSubstr("cannot be turned off"));
  EXPECT_EQ(vm.Patch("/balloon/statistics", R"({"stats_polling_interval_s": 2})").status, 204);
  Json config = GetJson(vm, "/vm/config");
  EXPECT_EQ(config["balloon"]["amount_mib"], 16) << config;
  EXPECT_EQ(config["balloon"]["stats_polling_interval_s"], 2) << config;

  ASSERT_EQ(vm.Patch("/balloon", R"({"amount_mib": 0})").status, 204);
  auto r = vm.proc().Finish(60000);
  EXPECT_THAT(r.out, HasSubstr("balloon: deflated 4096 pages")) << r.out << r.err;
  EXPECT_THAT(r.out, ContainsRegex("balloon: [1-9][0-9]* passed, 0 failed")) << r.out << r.err;
  uint64_t bad_pfns = 0, pages = 0, deflates = 0, stats = 0, fails = 0;
  for (const Json& l : MetricsLines(metrics)) {
    if (!l.contains("balloon")) continue;
    bad_pfns += l["balloon"]["inflate_bad_pfns"].get<uint64_t>();
    pages += l["balloon"]["inflate_pages"].get<uint64_t>();
    deflates += l["balloon"]["deflate_count"].get<uint64_t>();
    stats += l["balloon"]["stats_updates_count"].get<uint64_t>();
    fails += l["balloon"]["event_fails"].get<uint64_t>();
  }
  EXPECT_EQ(bad_pfns, 4u) << "the four page numbers outside RAM";
  EXPECT_GE(pages, 4096u + 4);
  EXPECT_EQ(deflates, 16u) << "4096 pages in buffers of 256";
  EXPECT_GE(stats, 3u);
  EXPECT_EQ(fails, 1u) << "the buffer outside RAM";
}

// ---- Pause and resume under block I/O load ---------------------------------------------------

TEST(ApiTest, HundredPausesUnderBlockLoadLoseNoIo) {
  const std::string img = MakeImage("api_pause.img", 8 << 20);
  const std::string metrics = ::testing::TempDir() + "/api_pause.metrics";
  unlink(metrics.c_str());
  ApiVm vm("pause");
  ASSERT_TRUE(vm.ready());
  ASSERT_EQ(vm.Put("/metrics", R"({"metrics_path": ")" + metrics + R"("})").status, 204);
  ASSERT_EQ(vm.BootSource(Payload("blk_bench"), "verify span=4 ops=3000 seed=7"), 204);
  ASSERT_EQ(vm.Drive("disk", img), 204);
  ASSERT_EQ(vm.Put("/machine-config", R"({"vcpu_count": 1, "mem_size_mib": 64})").status, 204);
  ASSERT_EQ(vm.Start(), 204);
  ASSERT_TRUE(vm.proc().WaitFor("bench: fill start", 20000)) << vm.proc().out();

  // Once, look closely: while paused, the vCPUs make no exits at all.
  ASSERT_EQ(vm.Patch("/vm", R"({"state": "Paused"})").status, 204);
  EXPECT_EQ(vm.State(), "Paused");
  ASSERT_EQ(vm.Put("/actions", R"({"action_type": "FlushMetrics"})").status, 204);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  ASSERT_EQ(vm.Put("/actions", R"({"action_type": "FlushMetrics"})").status, 204);
  auto lines = MetricsLines(metrics);
  ASSERT_GE(lines.size(), 2u);
  const Json& paused = lines.back();
  EXPECT_EQ(paused["vcpu"]["exit_mmio_write"], 0) << paused.dump();
  EXPECT_EQ(paused["vcpu"]["exit_mmio_read"], 0) << paused.dump();
  EXPECT_EQ(paused["vcpu"]["exit_io_out"], 0) << paused.dump();
  ASSERT_EQ(vm.Patch("/vm", R"({"state": "Resumed"})").status, 204);
  EXPECT_EQ(vm.State(), "Running");

  int cycles = 0;
  for (; cycles < 100 && vm.Alive(); ++cycles) {
    ASSERT_EQ(vm.Patch("/vm", R"({"state": "Paused"})").status, 204) << "cycle " << cycles;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    ASSERT_EQ(vm.Patch("/vm", R"({"state": "Resumed"})").status, 204) << "cycle " << cycles;
    std::this_thread::sleep_for(std::chrono::milliseconds(8));
  }
  EXPECT_EQ(cycles, 100);
  EXPECT_THAT(vm.proc().out(), ::testing::Not(HasSubstr("blk_bench: done")))
      << "the load must outlast the 100 cycles; raise ops=";
  auto r = vm.proc().Finish(180000);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("verify: checked="));
  EXPECT_THAT(r.out, HasSubstr("mismatches=0"));
  EXPECT_THAT(r.out, HasSubstr("blk_bench: done"));
  EXPECT_THAT(r.out, ::testing::Not(HasSubstr("FAILED")));
  // The final metrics line (written at exit) carries the block and vCPU counters.
  lines = MetricsLines(metrics);
  uint64_t reads = 0, writes = 0;
  for (const Json& l : lines) {
    if (l.contains("block_disk")) {
      reads += l["block_disk"]["read_count"].get<uint64_t>();
      writes += l["block_disk"]["write_count"].get<uint64_t>();
    }
  }
  EXPECT_EQ(reads, 6000u) << "every read the guest made, counted once";
  EXPECT_EQ(writes, 6000u + 1024u) << "random writes plus the fill of 4 MiB in 4 KiB blocks";
}

// ---- PATCH /drives: a new backing file under a running guest ----------------------------------

void PutWord(const std::string& path, uint64_t offset, uint64_t v) {
  std::fstream f(path, std::ios::binary | std::ios::in | std::ios::out);
  f.seekp(static_cast<std::streamoff>(offset));
  f.write(reinterpret_cast<const char*>(&v), sizeof(v));
}

uint64_t GetWord(const std::string& path, uint64_t offset) {
  std::ifstream f(path, std::ios::binary);
  f.seekg(static_cast<std::streamoff>(offset));
  uint64_t v = 0;
  f.read(reinterpret_cast<char*>(&v), sizeof(v));
  return v;
}

TEST(ApiTest, PatchDriveSwapsTheBackingFileUnderTheGuest) {
  const std::string a = MakeImage("swap_a.img", 1 << 20), b = MakeImage("swap_b.img", 2 << 20);
  PutWord(a, 0, 0xaaaa0001);
  PutWord(b, 0, 0xbbbb0002);
  ApiVm vm("swap");
  ASSERT_TRUE(vm.ready());
  ASSERT_EQ(vm.BootSource(Payload("blk_integrity"), "swap"), 204);
  ASSERT_EQ(vm.Drive("disk", a), 204);
  ASSERT_EQ(vm.Start(), 204);
  ASSERT_TRUE(vm.proc().WaitFor("swap: before", 20000)) << vm.proc().out();
  EXPECT_THAT(
      vm.Patch("/drives/disk", R"({"drive_id": "disk", "path_on_host": "/nonexistent"})").body,
      HasSubstr("path_on_host"))
      << "a bad new path leaves the drive alone";
  HttpReply r = vm.Patch("/drives/disk", R"({"drive_id": "disk", "path_on_host": ")" + b + "\"}");
  EXPECT_EQ(r.status, 204) << r.raw;
  EXPECT_THAT(vm.Get("/vm/config").body, HasSubstr(b));
  auto res = vm.proc().Finish(60000);
  EXPECT_EQ(res.exit_code, 0) << res.out << res.err;
  EXPECT_THAT(res.out, HasSubstr("swap: before word=aaaa0001 capacity=2048"));
  EXPECT_THAT(res.out, HasSubstr("swap: after word=bbbb0002 capacity=4096"));
  EXPECT_THAT(res.out, HasSubstr("config_change=1"))
      << "InterruptStatus has the configuration-change bit";
  EXPECT_EQ(GetWord(b, 512), 0x5157a99edu) << "writes after the swap go to the new file";
  EXPECT_EQ(GetWord(a, 512), 0u) << "and not to the old one";
}

// ---- seccomp and the image lock ----------------------------------------------------------------

// Every thread of PID: its name and its "Seccomp:" mode (0 off, 2 filtered).
std::vector<std::pair<std::string, std::string>> ThreadSeccompModes(pid_t pid) {
  std::vector<std::pair<std::string, std::string>> out;
  const auto [rc, list] = Sh("ls /proc/" + std::to_string(pid) + "/task");
  std::istringstream tids(list);
  for (std::string tid; tids >> tid;) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/task/" + tid + "/status");
    std::string line, name, mode;
    while (std::getline(f, line)) {
      if (line.rfind("Name:\t", 0) == 0) name = line.substr(6);
      if (line.rfind("Seccomp:\t", 0) == 0) mode = line.substr(9);
    }
    out.emplace_back(name, mode);
  }
  return out;
}

// A VM waiting for Ctrl+Alt+Del (the crash payload), with one drive on IMAGE.
void StartWaitingVm(ApiVm& vm, const std::string& image) {
  ASSERT_TRUE(vm.ready());
  ASSERT_EQ(vm.BootSource(Payload("crash"), "ctrl-alt-del"), 204);
  ASSERT_EQ(vm.Drive("disk", image), 204);
  ASSERT_EQ(vm.Start(), 204);
  ASSERT_TRUE(vm.proc().WaitFor("waiting for ctrl-alt-del", 20000)) << vm.proc().out();
}

void StopWaitingVm(ApiVm& vm) {
  EXPECT_EQ(vm.Put("/actions", R"({"action_type": "SendCtrlAltDel"})").status, 204);
  auto res = vm.proc().Finish(20000);
  EXPECT_EQ(res.exit_code, 0) << res.out << res.err;
}

TEST(ApiTest, EveryThreadRunsUnderItsSeccompFilter) {
  ApiVm vm("seccomp");
  StartWaitingVm(vm, MakeImage("seccomp.img", 1 << 20));
  auto threads = ThreadSeccompModes(vm.proc().pid());
  std::vector<std::string> names;
  for (const auto& [name, mode] : threads) {
    names.push_back(name);
    EXPECT_EQ(mode, "2") << "thread " << name << " runs without a seccomp filter";
  }
  // The main thread, the API's, the vCPU and the drive's worker at least.
  EXPECT_THAT(names, ::testing::IsSupersetOf({"edgevisor", "vcpu0", "blk0"}));
  EXPECT_GE(threads.size(), 4u);
  StopWaitingVm(vm);
}

TEST(ApiTest, NoSeccompRunsUnfilteredWithAWarning) {
  ApiVm vm("noseccomp", {"--no-seccomp"});
  StartWaitingVm(vm, MakeImage("noseccomp.img", 1 << 20));
  for (const auto& [name, mode] : ThreadSeccompModes(vm.proc().pid())) {
    EXPECT_EQ(mode, "0") << name;
  }
  StopWaitingVm(vm);
  EXPECT_THAT(vm.proc().err(), HasSubstr("--no-seccomp: the VMM's threads run without seccomp"));
}

ProcessResult RunHelloWithDrive(const std::string& drive_spec) {
  return RunProcess({EdgevisorBin(), "run", "--kernel", Payload("hello"), "--debug-exit",
                     "--serial", "off", "--drive", drive_spec});
}

TEST(ApiTest, ASecondWriterOfARunningVmsImageIsRefused) {
  const std::string image = MakeImage("locked.img", 1 << 20);
  {
    ApiVm vm("lock");
    StartWaitingVm(vm, image);
    const std::string holder = "process " + std::to_string(vm.proc().pid());
    for (const std::string& spec : {"path=" + image, "path=" + image + ",ro=on"}) {
      ProcessResult r = RunHelloWithDrive(spec);
      EXPECT_EQ(r.exit_code, 2) << spec << ": " << r.err;
      EXPECT_THAT(r.err, HasSubstr("path=" + image + ": the image is in use: " + holder)) << spec;
    }
    StopWaitingVm(vm);
  }
  EXPECT_EQ(RunHelloWithDrive("path=" + image).exit_code, 1) << "the lock went with the VM";
}

TEST(ApiTest, ReadOnlyDrivesShareAnImage) {
  const std::string image = MakeImage("shared.img", 1 << 20);
  ApiVm vm("shared");
  ASSERT_TRUE(vm.ready());
  ASSERT_EQ(vm.BootSource(Payload("crash"), "ctrl-alt-del"), 204);
  ASSERT_EQ(vm.Put("/drives/disk", R"({"drive_id": "disk", "path_on_host": ")" + image +
                                       R"(", "is_root_device": false, "is_read_only": true})")
                .status,
            204);
  ASSERT_EQ(vm.Start(), 204);
  ASSERT_TRUE(vm.proc().WaitFor("waiting for ctrl-alt-del", 20000)) << vm.proc().out();
  ProcessResult r = RunHelloWithDrive("path=" + image + ",ro=on");
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_EQ(RunHelloWithDrive("path=" + image).exit_code, 2) << "but no writer beside a reader";
  StopWaitingVm(vm);
}

// ---- SendCtrlAltDel ----------------------------------------------------------------------------

TEST(ApiTest, SendCtrlAltDelReachesTheGuestKeyboard) {
  ApiVm vm("cad");
  ASSERT_TRUE(vm.ready());
  ASSERT_EQ(vm.BootSource(Payload("crash"), "ctrl-alt-del"), 204);
  ASSERT_EQ(vm.Start(), 204);
  ASSERT_TRUE(vm.proc().WaitFor("waiting for ctrl-alt-del", 20000)) << vm.proc().out();
  HttpReply r = vm.Put("/actions", R"({"action_type": "SendCtrlAltDel"})");
  EXPECT_EQ(r.status, 204) << r.raw;
  auto res = vm.proc().Finish(20000);
  EXPECT_EQ(res.exit_code, 0) << res.out << res.err;
  EXPECT_THAT(res.out, HasSubstr("scan code 14"));
  EXPECT_THAT(res.out, HasSubstr("ctrl-alt-del received"));
  EXPECT_THAT(res.err, HasSubstr("reset through the i8042"));
}

// ---- Config file with the API; GET endpoints; SIGTERM before start -------------------------

TEST(ApiTest, ConfigFileWithApiBootsAtOnceAndAnswersGets) {
  const std::string cfg = ::testing::TempDir() + "/api_cfg.json";
  std::ofstream(cfg)
      << R"({"boot-source": {"kernel_image_path": ")" << Payload("console")
      << R"(", "boot_args": "irq"}, "machine-config": {"vcpu_count": 2, "mem_size_mib": 48}})";
  ApiVm vm("cfg", {"--config-file", cfg});
  ASSERT_TRUE(vm.ready());
  ASSERT_TRUE(vm.proc().WaitFor("console", 20000)) << vm.proc().out() << vm.proc().err();
  HttpReply info = vm.Get("/");
  ASSERT_EQ(info.status, 200);
  Json j = Json::parse(info.body);
  EXPECT_EQ(j["state"], "Running");
  EXPECT_EQ(j["id"], "cfg");
  EXPECT_EQ(j["app_name"], "edgevisor");
  HttpReply mc = vm.Get("/machine-config");
  ASSERT_EQ(mc.status, 200);
  EXPECT_EQ(Json::parse(mc.body)["vcpu_count"], 2);
  EXPECT_EQ(Json::parse(mc.body)["mem_size_mib"], 48);
  HttpReply version = vm.Get("/version");
  ASSERT_EQ(version.status, 200);
  EXPECT_EQ(Json::parse(version.body)["firecracker_version"], "1.17.0");
  EXPECT_EQ(Json::parse(version.body)["edgevisor_version"], "0.1.0");
  kill(vm.proc().pid(), SIGTERM);
  auto r = vm.proc().Finish(20000);
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

// ---- The entropy device (virtio-rng) -----------------------------------------------------------

// From the config file: the rng payload's checks (sizes, randomness, hostile chains) pass, and
// the metrics count the bytes and the chains it refused.
TEST(ApiTest, EntropyDeviceFromTheConfigFileServesTheGuest) {
  const std::string dir = ::testing::TempDir(), cfg = dir + "/api_rng.json",
                    metrics = dir + "/api_rng.metrics";
  unlink(metrics.c_str());
  std::ofstream(cfg) << R"({"boot-source": {"kernel_image_path": ")" << Payload("rng")
                     << R"("}, "machine-config": {"vcpu_count": 1, "mem_size_mib": 32},
      "entropy": {}, "metrics": {"metrics_path": ")"
                     << metrics << R"("}})";
  auto r = RunProcess({EdgevisorBin(), "--config-file", cfg, "--no-api", "--id", "rng"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, ContainsRegex("rng: [1-9][0-9]* passed, 0 failed")) << r.out << r.err;
  // Each line holds the increase since the one before.
  uint64_t bytes = 0, fails = 0, host_fails = 0;
  for (const Json& l : MetricsLines(metrics)) {
    if (!l.contains("entropy")) continue;
    bytes += l["entropy"]["entropy_bytes"].get<uint64_t>();
    fails += l["entropy"]["entropy_event_fails"].get<uint64_t>();
    host_fails += l["entropy"]["host_rng_fails"].get<uint64_t>();
  }
  // 1+16+64+512+4096+65536, 65536 (capped), 2x4096, 65536, 4096, and the 64-byte reads.
  EXPECT_GT(bytes, 200000u);
  EXPECT_GE(fails, 2u) << "the device-readable buffer and the one outside RAM";
  EXPECT_EQ(host_fails, 0u);
}

// Through the API, with a bandwidth limit: 8 KiB per 100 ms (81920 bytes/s). The guest reads
// 8 KiB (the full bucket) plus two seconds' worth: it takes 2 s, within 10 %, on the host's clock
// (the guest's own TSC-based count is printed too, but a nested guest's TSC rate is not to be
// trusted), and the limiter counts the times it held a request.
TEST(ApiTest, EntropyRateLimiterHoldsTheGuestToItsRate) {
  const std::string metrics = ::testing::TempDir() + "/api_rng_rate.metrics";
  unlink(metrics.c_str());
  ApiVm vm("rngrate");
  ASSERT_TRUE(vm.ready());
  ASSERT_EQ(vm.Put("/metrics", R"({"metrics_path": ")" + metrics + R"("})").status, 204);
  ASSERT_EQ(vm.BootSource(Payload("rng"), "rate_bytes=172032 timeout_ms=5000"), 204);
  HttpReply e = vm.Put("/entropy", R"({"rate_limiter": {"bandwidth": {"size": 8192,
      "refill_time": 100}}})");
  ASSERT_EQ(e.status, 204) << e.body;
  HttpReply bad =
      vm.Put("/entropy", R"({"rate_limiter": {"ops": {"size": -1, "refill_time": 1}}})");
  EXPECT_EQ(bad.status, 400);
  EXPECT_THAT(bad.body, HasSubstr("rate_limiter.ops.size"));
  HttpReply config = vm.Get("/vm/config");
  EXPECT_EQ(Json::parse(config.body)["entropy"]["rate_limiter"]["bandwidth"]["size"], 8192)
      << config.body;
  ASSERT_EQ(vm.Start(), 204);
  ASSERT_TRUE(vm.proc().WaitFor("rng: rate start", 20000)) << vm.proc().out();
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(vm.proc().WaitFor("rng: rate 172032 bytes", 20000)) << vm.proc().out();
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
          .count();
  EXPECT_GT(ms, 1800) << "2 s expected";
  EXPECT_LT(ms, 2200) << "2 s expected";
  auto r = vm.proc().Finish(60000);
  EXPECT_THAT(r.out, ContainsRegex("rng: [1-9][0-9]* passed, 0 failed")) << r.out << r.err;
  uint64_t throttled = 0;
  for (const Json& l : MetricsLines(metrics)) {
    if (l.contains("entropy"))
      throttled += l["entropy"]["entropy_rate_limiter_throttled"].get<uint64_t>();
  }
  EXPECT_GT(throttled, 10u) << "about one per 4 KiB request past the bucket";
}

// ---- Rate limiters on a drive -----------------------------------------------------------------

// blk_bench reads at queue depth 1 for as long as the test runs. The drive's limit holds it to
// 200 requests/s; a PATCH to 400/s, then to 800 KiB/s of bandwidth, changes the rate of the
// running guest within 10 % each time; a PATCH with 0-sized buckets lifts the limit.
TEST(ApiTest, DriveRateLimiterHoldsTheRateAndAPatchChangesIt) {
  const std::string img = MakeImage("api_rl.img", 8 << 20);
  const std::string metrics = ::testing::TempDir() + "/api_rl.metrics";
  unlink(metrics.c_str());
  ApiVm vm("blkrate");
  ASSERT_TRUE(vm.ready());
  ASSERT_EQ(vm.Put("/metrics", R"({"metrics_path": ")" + metrics + R"("})").status, 204);
  ASSERT_EQ(vm.BootSource(Payload("blk_bench"), "ops=100000000 span=4"), 204);
  HttpReply d = vm.Put("/drives/disk", R"({"drive_id": "disk", "path_on_host": ")" + img +
                                           R"(", "is_root_device": false,
      "rate_limiter": {"ops": {"size": 20, "refill_time": 100}}})");
  ASSERT_EQ(d.status, 204) << d.body;
  ASSERT_EQ(vm.Put("/machine-config", R"({"vcpu_count": 1, "mem_size_mib": 64})").status, 204);
  ASSERT_EQ(vm.Start(), 204);
  ASSERT_TRUE(vm.proc().WaitFor("bench: randread-qd1 start", 20000)) << vm.proc().out();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // past the bucket's 20

  const double r200 = CounterPerSecond(vm.sock(), metrics, "block", "read_count");
  EXPECT_GT(r200, 180);
  EXPECT_LT(r200, 220);
  HttpReply p = vm.Patch("/drives/disk", R"({"drive_id": "disk",
      "rate_limiter": {"ops": {"size": 40, "refill_time": 100}}})");
  ASSERT_EQ(p.status, 204) << p.body;
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const double r400 = CounterPerSecond(vm.sock(), metrics, "block", "read_count");
  EXPECT_GT(r400, 360);
  EXPECT_LT(r400, 440);
  // 409600 bytes per 500 ms: 819200 bytes/s, 200 reads of 4 KiB.
  p = vm.Patch("/drives/disk", R"({"drive_id": "disk",
      "rate_limiter": {"bandwidth": {"size": 409600, "refill_time": 500}}})");
  ASSERT_EQ(p.status, 204) << p.body;
  std::this_thread::sleep_for(std::chrono::milliseconds(800));  // past the full bucket
  const double bytes = CounterPerSecond(vm.sock(), metrics, "block", "read_bytes");
  EXPECT_GT(bytes, 0.9 * 819200);
  EXPECT_LT(bytes, 1.1 * 819200);
  HttpReply config = vm.Get("/vm/config");
  EXPECT_EQ(Json::parse(config.body)["drives"][0]["rate_limiter"]["bandwidth"]["size"], 409600)
      << config.body;
  p = vm.Patch("/drives/disk", R"({"drive_id": "disk",
      "rate_limiter": {"bandwidth": {"size": 0, "refill_time": 0}}})");
  ASSERT_EQ(p.status, 204) << p.body;
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  const double unlimited = CounterPerSecond(vm.sock(), metrics, "block", "read_count");
  EXPECT_GT(unlimited, 2 * 400) << "a 0 bucket does not limit";
  HttpReply bad = vm.Patch("/drives/disk", R"({"drive_id": "disk",
      "rate_limiter": {"ops": {"size": 1, "refill_time": -5}}})");
  EXPECT_EQ(bad.status, 400);
  EXPECT_THAT(bad.body, HasSubstr("rate_limiter.ops.refill_time"));
  uint64_t throttled = 0;
  for (const Json& l : MetricsLines(metrics)) {
    if (l.contains("block"))
      throttled += l["block"]["rate_limiter_throttled_events"].get<uint64_t>();
  }
  EXPECT_GT(throttled, 100u);
  std::printf(
      "drive limiter: %.0f, %.0f requests/s (200, 400 set); %.0f bytes/s (819200 set); "
      "%.0f requests/s unlimited\n",
      r200, r400, bytes, unlimited);  // NOLINT
  EXPECT_TRUE(vm.Alive());
  kill(vm.proc().pid(), SIGKILL);
  vm.proc().Finish(5000);
}

// A fleet driver written against Firecracker before 1.0: the config file's old field names, and
// the log and metrics as named pipes it reads, which nobody reads yet when the VMM opens them.
std::string ReadFifo(int fd) {
  std::string out;
  char buf[65536];
  for (ssize_t n; (n = read(fd, buf, sizeof(buf))) > 0;) out.append(buf, static_cast<size_t>(n));
  return out;
}

TEST(ApiTest, PreOneZeroConfigWithLogAndMetricsFifos) {
  const std::string dir = ::testing::TempDir(), cfg = dir + "/api_old_cfg.json",
                    log = dir + "/api_old.log.fifo", metrics = dir + "/api_old.metrics.fifo";
  for (const std::string& f : {log, metrics}) {
    unlink(f.c_str());
    ASSERT_EQ(mkfifo(f.c_str(), 0600), 0);
  }
  std::ofstream(cfg) << R"({"boot-source": {"kernel_image_path": ")" << Payload("crash")
                     << R"(", "boot_args": "ctrl-alt-del"},
      "machine-config": {"vcpu_count": 1, "mem_size_mib": 32, "ht_enabled": false},
      "logger": {"log_fifo": ")"
                     << log << R"(", "metrics_fifo": ")" << metrics << R"(", "level": "Info"}})";
  ApiVm vm("oldcfg", {"--config-file", cfg});
  ASSERT_TRUE(vm.ready()) << vm.proc().err();
  ASSERT_TRUE(vm.proc().WaitFor("waiting for ctrl-alt-del", 20000)) << vm.proc().out();
  const int log_fd = open(log.c_str(), O_RDONLY | O_NONBLOCK);
  const int metrics_fd = open(metrics.c_str(), O_RDONLY | O_NONBLOCK);
  ASSERT_GE(log_fd, 0);
  ASSERT_GE(metrics_fd, 0);
  ASSERT_EQ(vm.Put("/actions", R"({"action_type": "FlushMetrics"})").status, 204);
  const std::string log_text = ReadFifo(log_fd), metrics_text = ReadFifo(metrics_fd);
  EXPECT_THAT(log_text, HasSubstr("logger.log_fifo is deprecated"));
  EXPECT_THAT(log_text, HasSubstr("machine-config.ht_enabled is deprecated"));
  EXPECT_THAT(log_text, HasSubstr("[oldcfg:"));
  ASSERT_FALSE(metrics_text.empty());
  const Json line = Json::parse(metrics_text.substr(0, metrics_text.find('\n')), nullptr, false);
  EXPECT_TRUE(line.contains("utc_timestamp_ms")) << metrics_text;
  close(log_fd);  // the reader goes away: the VM must not notice
  EXPECT_EQ(vm.Put("/actions", R"({"action_type": "FlushMetrics"})").status, 204);
  EXPECT_EQ(vm.Put("/actions", R"({"action_type": "SendCtrlAltDel"})").status, 204);
  auto res = vm.proc().Finish(20000);
  EXPECT_EQ(res.exit_code, 0) << res.err;
  close(metrics_fd);
  for (const std::string& f : {log, metrics, cfg}) unlink(f.c_str());
}

TEST(ApiTest, SigtermBeforeStartExitsCleanly) {
  ApiVm vm("term");
  ASSERT_TRUE(vm.ready());
  kill(vm.proc().pid(), SIGTERM);
  auto r = vm.proc().Finish(10000);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("before InstanceStart"));
  EXPECT_NE(access(vm.sock().c_str(), F_OK), 0) << "the socket is removed";
}

TEST(ApiTest, StaleSocketAndBadFlagsAreRefused) {
  const std::string sock = SockPath("stale");
  std::ofstream(sock) << "";
  auto r = RunProcess({EdgevisorBin(), "--api-sock", sock});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--api-sock " + sock));
  unlink(sock.c_str());
  auto noapi = RunProcess({EdgevisorBin(), "--no-api"});
  EXPECT_EQ(noapi.exit_code, 2);
  EXPECT_THAT(noapi.err, HasSubstr("--no-api needs --config-file"));
  auto seccomp = RunProcess({EdgevisorBin(), "--api-sock", sock, "--seccomp-filter", "f"});
  EXPECT_EQ(seccomp.exit_code, 2);
  EXPECT_THAT(seccomp.err, HasSubstr("--seccomp-filter: not supported"));
}

}  // namespace
}  // namespace edgevisor::testing
