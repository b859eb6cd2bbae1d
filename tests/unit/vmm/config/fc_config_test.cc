#include "src/vmm/config/fc_config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "nlohmann/json.hpp"

namespace edgevisor {
namespace {

using ::testing::HasSubstr;

constexpr char kGettingStarted[] = R"({
  "boot-source": {"kernel_image_path": "/k.elf", "boot_args": "console=ttyS0 reboot=k"},
  "drives": [
    {"drive_id": "data", "path_on_host": "/d.img", "is_root_device": false, "io_engine": "Sync"},
    {"drive_id": "rootfs", "path_on_host": "/r.ext4", "is_root_device": true,
     "is_read_only": false, "cache_type": "Unsafe", "io_engine": "Async"}
  ],
  "machine-config": {"vcpu_count": 2, "mem_size_mib": 1024, "smt": false,
                     "track_dirty_pages": false},
  "network-interfaces": [{"iface_id": "eth0", "guest_mac": "AA:FC:00:00:00:01",
                          "host_dev_name": "tap0"}],
  "logger": {"log_path": "/tmp/fc.log", "level": "Debug", "show_level": true,
             "show_log_origin": false}
})";

TEST(FcConfigTest, FirecrackerGettingStartedConfig) {
  auto c = ParseFirecrackerConfig(kGettingStarted);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->vm.boot.kernel_path, "/k.elf");
  EXPECT_EQ(c->vm.boot.cmdline, "console=ttyS0 reboot=k root=/dev/vda rw");
  EXPECT_EQ(c->vm.machine.vcpus, 2);
  EXPECT_EQ(c->vm.machine.mem_mib, 1024u);
  ASSERT_EQ(c->vm.drives.size(), 2u);
  EXPECT_EQ(c->vm.drives[0].id, "rootfs") << "the root drive becomes /dev/vda";
  EXPECT_EQ(c->vm.drives[0].engine, DriveConfig::Engine::kUring);
  EXPECT_EQ(c->vm.drives[1].engine, DriveConfig::Engine::kSync);
  ASSERT_EQ(c->vm.nets.size(), 1u);
  EXPECT_EQ(c->vm.nets[0].tap, "tap0");
  EXPECT_EQ(c->vm.nets[0].mac[0], 0xaa);
  EXPECT_EQ(c->logger.level, "debug");
  EXPECT_EQ(c->logger.log_path, "/tmp/fc.log");
  ASSERT_TRUE(c->resources.logger.has_value());
}

TEST(FcConfigTest, InitrdPathReachesTheModel) {
  auto c = ParseFirecrackerConfig(
      R"({"boot-source": {"kernel_image_path": "/k", "initrd_path": "/initrd.img"}})");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->vm.boot.initrd_path, "/initrd.img");
}

TEST(FcConfigTest, BalloonReachesTheModelAndPrintsBack) {
  auto c = ParseFirecrackerConfig(R"({"boot-source": {"kernel_image_path": "/k"},
    "machine-config": {"vcpu_count": 1, "mem_size_mib": 256},
    "balloon": {"amount_mib": 64, "deflate_on_oom": true, "stats_polling_interval_s": 5,
                "free_page_hinting": false, "free_page_reporting": true}})");
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_TRUE(c->vm.balloon.has_value());
  EXPECT_EQ(c->vm.balloon->amount_mib, 64u);
  EXPECT_TRUE(c->vm.balloon->deflate_on_oom);
  EXPECT_EQ(c->vm.balloon->stats_polling_interval_s, 5u);
  EXPECT_TRUE(c->vm.balloon->free_page_reporting);
  const Json j = c->resources.ToJson();
  EXPECT_EQ(j["balloon"]["amount_mib"], 64);
  auto again = ParseFirecrackerConfig(j.dump());
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->vm.balloon->stats_polling_interval_s, 5u);
  auto minimal = ParseFirecrackerConfig(R"({"boot-source": {"kernel_image_path": "/k"},
    "balloon": {"amount_mib": 0, "deflate_on_oom": false}})");
  ASSERT_TRUE(minimal.ok()) << minimal.status();
  EXPECT_EQ(minimal->vm.balloon->stats_polling_interval_s, 0u) << "no statistics by default";
  EXPECT_FALSE(minimal->vm.balloon->free_page_reporting);
}

TEST(FcConfigTest, VsockReachesTheModelAndPrintsBack) {
  auto c = ParseFirecrackerConfig(R"({"boot-source": {"kernel_image_path": "/k"},
    "vsock": {"vsock_id": "vsock0", "guest_cid": 52, "uds_path": "/run/v.sock"}})");
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_TRUE(c->vm.vsock.has_value());
  EXPECT_EQ(c->vm.vsock->guest_cid, 52u);
  EXPECT_EQ(c->vm.vsock->uds_path, "/run/v.sock");
  EXPECT_EQ(c->vm.vsock->vsock_id, "vsock0");
  const Json j = c->resources.ToJson();
  EXPECT_EQ(j["vsock"]["guest_cid"], 52);
  auto again = ParseFirecrackerConfig(j.dump());
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->vm.vsock->uds_path, "/run/v.sock");
  auto no_id = ParseFirecrackerConfig(R"({"boot-source": {"kernel_image_path": "/k"},
    "vsock": {"guest_cid": 3, "uds_path": "/v"}})");
  ASSERT_TRUE(no_id.ok()) << no_id.status();
  EXPECT_EQ(no_id->vm.vsock->vsock_id, "");
}

TEST(FcConfigTest, MmdsConfigReachesTheModelAndPrintsBack) {
  auto c = ParseFirecrackerConfig(R"({"boot-source": {"kernel_image_path": "/k"},
    "network-interfaces": [{"iface_id": "eth0", "host_dev_name": "tap0"}],
    "mmds-config": {"version": "V2", "network_interfaces": ["eth0"],
                    "ipv4_address": "169.254.170.2", "imds_compat": true}})");
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_TRUE(c->vm.mmds.has_value());
  EXPECT_EQ(c->vm.mmds->version, MmdsConfig::Version::kV2);
  EXPECT_EQ(c->vm.mmds->network_interfaces, std::vector<std::string>{"eth0"});
  EXPECT_EQ(c->vm.mmds->ipv4_address, (std::array<uint8_t, 4>{169, 254, 170, 2}));
  EXPECT_TRUE(c->vm.mmds->imds_compat);
  const Json j = c->resources.ToJson();
  EXPECT_EQ(j["mmds-config"]["ipv4_address"], "169.254.170.2");
  auto again = ParseFirecrackerConfig(j.dump());
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(*again->vm.mmds, *c->vm.mmds);
  auto defaults = ParseFirecrackerConfig(R"({"boot-source": {"kernel_image_path": "/k"},
    "network-interfaces": [{"iface_id": "eth0", "host_dev_name": "tap0"}],
    "mmds-config": {"network_interfaces": ["eth0"]}})");
  ASSERT_TRUE(defaults.ok()) << defaults.status();
  EXPECT_EQ(defaults->vm.mmds->version, MmdsConfig::Version::kV1);
  EXPECT_EQ(defaults->vm.mmds->ipv4_address, (std::array<uint8_t, 4>{169, 254, 169, 254}));
}

TEST(FcConfigTest, EntropyWithARateLimiterReachesTheModel) {
  auto c = ParseFirecrackerConfig(R"({"boot-source": {"kernel_image_path": "/k"},
    "entropy": {"rate_limiter": {"bandwidth": {"size": 4096, "refill_time": 100,
                                               "one_time_burst": 1024},
                                 "ops": {"size": 0, "refill_time": 0}}}})");
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_TRUE(c->vm.entropy.has_value());
  const RateLimiterConfig& r = c->vm.entropy->rate_limiter;
  EXPECT_EQ(r.bandwidth, (BucketConfig{4096, 1024, 100}));
  EXPECT_FALSE(r.ops.limits()) << "a 0 bucket does not limit";
  // GET /vm/config prints it back in the same shape, without the bucket that does not limit.
  const Json j = c->resources.ToJson();
  EXPECT_EQ(j["entropy"]["rate_limiter"]["bandwidth"]["refill_time"], 100);
  EXPECT_FALSE(j["entropy"]["rate_limiter"].contains("ops"));
  auto again = ParseFirecrackerConfig(j.dump());
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->vm.entropy->rate_limiter, r);
  auto none = ParseFirecrackerConfig(R"({"boot-source": {"kernel_image_path": "/k"}})");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->vm.entropy.has_value());
}

TEST(FcConfigTest, ADrivesRateLimiterReachesTheModelAndGoesBackOut) {
  auto c = ParseFirecrackerConfig(R"({"boot-source": {"kernel_image_path": "/k"},
    "drives": [{"drive_id": "d", "path_on_host": "/d", "is_root_device": false,
                "rate_limiter": {"ops": {"size": 100, "refill_time": 1000}}}]})");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->vm.drives[0].rate_limiter.ops, (BucketConfig{100, 0, 1000}));
  EXPECT_FALSE(c->vm.drives[0].rate_limiter.bandwidth.limits());
  const Json j = c->resources.ToJson();
  EXPECT_EQ(j["drives"][0]["rate_limiter"]["ops"]["size"], 100);
  auto p = ParsePartialDrive(Json::parse(R"({"drive_id": "d", "rate_limiter": {}})"), "");
  ASSERT_TRUE(p.ok()) << p.status();
  ASSERT_TRUE(p->rate_limiter.has_value()) << "an empty limiter is a change: to no limit";
  EXPECT_FALSE(p->rate_limiter->limits());
  EXPECT_FALSE(p->path_on_host.has_value());
}

TEST(FcConfigTest, AnInterfacesRateLimitersReachTheModel) {
  auto c = ParseFirecrackerConfig(R"({"boot-source": {"kernel_image_path": "/k"},
    "network-interfaces": [{"iface_id": "eth0", "host_dev_name": "tap0",
        "rx_rate_limiter": {"bandwidth": {"size": 1000000, "refill_time": 1000}},
        "tx_rate_limiter": {"ops": {"size": 50, "one_time_burst": 10, "refill_time": 100}}}]})");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->vm.nets[0].rx_rate_limiter.bandwidth, (BucketConfig{1000000, 0, 1000}));
  EXPECT_EQ(c->vm.nets[0].tx_rate_limiter.ops, (BucketConfig{50, 10, 100}));
  const Json j = c->resources.ToJson();
  EXPECT_EQ(j["network-interfaces"][0]["tx_rate_limiter"]["ops"]["one_time_burst"], 10);
  auto p = ParsePartialNetworkInterface(
      Json::parse(R"({"iface_id": "eth0", "tx_rate_limiter": {}})"), "");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_FALSE(p->rx_rate_limiter.has_value()) << "absent: unchanged";
  ASSERT_TRUE(p->tx_rate_limiter.has_value());
  EXPECT_FALSE(p->tx_rate_limiter->limits());
  EXPECT_FALSE(
      ParsePartialNetworkInterface(Json::parse(R"({"iface_id": "eth0", "mtu": 9000})"), "").ok());
}

TEST(FcConfigTest, ReadOnlyRootWithPartuuid) {
  auto c = ParseFirecrackerConfig(R"({"boot-source": {"kernel_image_path": "/k"},
    "drives": [{"drive_id": "r", "path_on_host": "/r", "is_root_device": true,
                "is_read_only": true, "partuuid": "0eaa91a0-01"}]})");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_THAT(c->vm.boot.cmdline, HasSubstr("root=PARTUUID=0eaa91a0-01 ro"));
  EXPECT_TRUE(c->vm.drives[0].read_only);
}

// What fleet drivers written against Firecracker before 1.0 still send.
constexpr char kPreOneZero[] = R"({
  "boot-source": {"kernel_image_path": "/k.elf"},
  "machine-config": {"vcpu_count": 1, "mem_size_mib": 128, "ht_enabled": false},
  "network-interfaces": [{"iface_id": "eth0", "host_dev_name": "tap0",
                          "allow_mmds_requests": true}],
  "logger": {"log_fifo": "/run/fc/log.fifo", "metrics_fifo": "/run/fc/metrics.fifo",
             "level": "Warning", "show_level": false, "show_log_origin": false}
})";

TEST(FcConfigTest, PreOneZeroFieldNamesAreAliasesWithANote) {
  auto c = ParseFirecrackerConfig(kPreOneZero);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->logger.log_path, "/run/fc/log.fifo");
  EXPECT_EQ(c->logger.level, "warn");
  EXPECT_FALSE(c->logger.show_level);
  ASSERT_TRUE(c->resources.metrics.has_value());
  EXPECT_EQ(c->resources.metrics->metrics_path, "/run/fc/metrics.fifo");
  EXPECT_EQ(c->vm.machine.vcpus, 1);
  ASSERT_EQ(c->vm.nets.size(), 1u);
  EXPECT_EQ(c->vm.nets[0].tap, "tap0");
  ASSERT_EQ(c->deprecations.size(), 4u);
  EXPECT_THAT(c->deprecations[0], HasSubstr("machine-config.ht_enabled is deprecated"));
  EXPECT_THAT(c->deprecations[0], HasSubstr("use machine-config.smt"));
  EXPECT_THAT(c->deprecations[1], HasSubstr("network-interfaces[0].allow_mmds_requests"));
  EXPECT_THAT(c->deprecations[2], HasSubstr("logger.log_fifo is deprecated"));
  EXPECT_THAT(c->deprecations[3], HasSubstr("use metrics.metrics_path"));
  // Today's names make no notes.
  auto current = ParseFirecrackerConfig(kGettingStarted);
  ASSERT_TRUE(current.ok());
  EXPECT_TRUE(current->deprecations.empty());
}

struct BadCase {
  const char* name;
  const char* json;
  const char* expect;  // the field the message must name
};

class FcConfigBadTest : public ::testing::TestWithParam<BadCase> {};

TEST_P(FcConfigBadTest, NamesTheField) {
  auto c = ParseFirecrackerConfig(GetParam().json);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(c.status().message()), HasSubstr(GetParam().expect));
}

INSTANTIATE_TEST_SUITE_P(
    Cases, FcConfigBadTest,
    ::testing::Values(
        BadCase{"NotJson", "{boot-source", "not valid JSON"},
        BadCase{"NotAnObject", "[1,2]", "must be a JSON object"},
        BadCase{"UnknownTopLevel", R"({"boot-source":{"kernel_image_path":"/k"},"bogus":1})",
                "bogus: unknown field"},
        BadCase{"MissingBootSource", R"({"machine-config":{"vcpu_count":1,"mem_size_mib":8}})",
                "boot-source: missing"},
        BadCase{"KernelWrongType", R"({"boot-source":{"kernel_image_path":5}})",
                "boot-source.kernel_image_path: must be a string"},
        BadCase{"KernelMissing", R"({"boot-source":{"boot_args":"x"}})",
                "boot-source.kernel_image_path: missing"},
        BadCase{"UnknownBootField", R"({"boot-source":{"kernel_image_path":"/k","x":1}})",
                "boot-source.x: unknown field"},

        BadCase{
            "VcpuZero",
            R"({"boot-source":{"kernel_image_path":"/k"},"machine-config":{"vcpu_count":0,"mem_size_mib":8}})",
            "machine-config.vcpu_count"},
        BadCase{
            "VcpuNegative",
            R"({"boot-source":{"kernel_image_path":"/k"},"machine-config":{"vcpu_count":-1,"mem_size_mib":8}})",
            "machine-config.vcpu_count"},
        BadCase{
            "MemString",
            R"({"boot-source":{"kernel_image_path":"/k"},"machine-config":{"vcpu_count":1,"mem_size_mib":"8"}})",
            "machine-config.mem_size_mib"},
        BadCase{"MemMissing",
                R"({"boot-source":{"kernel_image_path":"/k"},"machine-config":{"vcpu_count":1}})",
                "machine-config.mem_size_mib: missing"},
        BadCase{
            "Smt",
            R"({"boot-source":{"kernel_image_path":"/k"},"machine-config":{"vcpu_count":1,"mem_size_mib":8,"smt":true}})",
            "machine-config.smt"},
        BadCase{
            "CpuTemplate",
            R"({"boot-source":{"kernel_image_path":"/k"},"machine-config":{"vcpu_count":1,"mem_size_mib":8,"cpu_template":"T2"}})",
            "machine-config.cpu_template"},
        BadCase{"DrivesNotArray", R"({"boot-source":{"kernel_image_path":"/k"},"drives":{}})",
                "drives: must be an array"},
        BadCase{
            "DriveNoPath",
            R"({"boot-source":{"kernel_image_path":"/k"},"drives":[{"drive_id":"a","is_root_device":false}]})",
            "drives[0].path_on_host: missing"},
        BadCase{
            "DriveNoRootFlag",
            R"({"boot-source":{"kernel_image_path":"/k"},"drives":[{"drive_id":"a","path_on_host":"/a"}]})",
            "drives[0].is_root_device: missing"},
        BadCase{
            "DriveRootNotBool",
            R"({"boot-source":{"kernel_image_path":"/k"},"drives":[{"drive_id":"a","path_on_host":"/a","is_root_device":"yes"}]})",
            "drives[0].is_root_device: must be true or false"},
        BadCase{
            "TwoRoots",
            R"({"boot-source":{"kernel_image_path":"/k"},"drives":[{"drive_id":"a","path_on_host":"/a","is_root_device":true},{"drive_id":"b","path_on_host":"/b","is_root_device":true}]})",
            "drives[1].is_root_device"},
        BadCase{
            "BadEngine",
            R"({"boot-source":{"kernel_image_path":"/k"},"drives":[{"drive_id":"a","path_on_host":"/a","is_root_device":false,"io_engine":"Fast"}]})",
            "drives[0].io_engine"},
        BadCase{
            "DriveRateLimiterNoRefill",
            R"({"boot-source":{"kernel_image_path":"/k"},"drives":[{"drive_id":"a","path_on_host":"/a","is_root_device":false,"rate_limiter":{"ops":{"size":1}}}]})",
            "drives[0].rate_limiter.ops.refill_time: missing"},
        BadCase{
            "UnknownDriveField",
            R"({"boot-source":{"kernel_image_path":"/k"},"drives":[{"drive_id":"a","path_on_host":"/a","is_root_device":false,"speed":1}]})",
            "drives[0].speed: unknown field"},
        BadCase{
            "NetNoTap",
            R"({"boot-source":{"kernel_image_path":"/k"},"network-interfaces":[{"iface_id":"eth0"}]})",
            "network-interfaces[0].host_dev_name: missing"},
        BadCase{
            "NetBadMac",
            R"({"boot-source":{"kernel_image_path":"/k"},"network-interfaces":[{"iface_id":"eth0","host_dev_name":"t","guest_mac":"zz"}]})",
            "network-interfaces[0].guest_mac"},
        BadCase{
            "NetMulticastMac",
            R"({"boot-source":{"kernel_image_path":"/k"},"network-interfaces":[{"iface_id":"eth0","host_dev_name":"t","guest_mac":"01:00:5e:00:00:01"}]})",
            "network-interfaces[0].guest_mac"},
        BadCase{
            "BalloonBiggerThanTheGuest",
            R"({"boot-source":{"kernel_image_path":"/k"},"machine-config":{"vcpu_count":1,"mem_size_mib":64},"balloon":{"amount_mib":65,"deflate_on_oom":true}})",
            "balloon.amount_mib: 65 MiB is more than the guest's 64 MiB"},
        BadCase{"BalloonNoAmount",
                R"({"boot-source":{"kernel_image_path":"/k"},"balloon":{"deflate_on_oom":true}})",
                "balloon.amount_mib: missing"},
        BadCase{
            "BalloonAmountTooBig",
            R"({"boot-source":{"kernel_image_path":"/k"},"balloon":{"amount_mib":16777216,"deflate_on_oom":true}})",
            "balloon.amount_mib: 16777216 is outside"},
        BadCase{
            "BalloonOomNotBool",
            R"({"boot-source":{"kernel_image_path":"/k"},"balloon":{"amount_mib":1,"deflate_on_oom":1}})",
            "balloon.deflate_on_oom: must be true or false"},
        BadCase{
            "BalloonHinting",
            R"({"boot-source":{"kernel_image_path":"/k"},"balloon":{"amount_mib":1,"deflate_on_oom":true,"free_page_hinting":true}})",
            "balloon.free_page_hinting: is not supported"},
        BadCase{
            "BalloonUnknownField",
            R"({"boot-source":{"kernel_image_path":"/k"},"balloon":{"amount_mib":1,"deflate_on_oom":true,"size":1}})",
            "balloon.size: unknown field"},
        BadCase{"EntropyUnknownField",
                R"({"boot-source":{"kernel_image_path":"/k"},"entropy":{"rate":1}})",
                "entropy.rate: unknown field"},
        BadCase{"EntropyNotObject", R"({"boot-source":{"kernel_image_path":"/k"},"entropy":[]})",
                "entropy: must be a JSON object"},
        BadCase{
            "BucketNegative",
            R"({"boot-source":{"kernel_image_path":"/k"},"entropy":{"rate_limiter":{"bandwidth":{"size":-1,"refill_time":10}}}})",
            "entropy.rate_limiter.bandwidth.size: must be a non-negative integer"},
        BadCase{
            "BucketNoRefill",
            R"({"boot-source":{"kernel_image_path":"/k"},"entropy":{"rate_limiter":{"ops":{"size":10}}}})",
            "entropy.rate_limiter.ops.refill_time: missing"},
        BadCase{
            "BucketTooBig",
            R"({"boot-source":{"kernel_image_path":"/k"},"entropy":{"rate_limiter":{"ops":{"size":10,"refill_time":4294967296}}}})",
            "entropy.rate_limiter.ops.refill_time: 4294967296 is outside"},
        BadCase{
            "BucketBurstString",
            R"({"boot-source":{"kernel_image_path":"/k"},"entropy":{"rate_limiter":{"ops":{"size":10,"refill_time":1,"one_time_burst":"x"}}}})",
            "entropy.rate_limiter.ops.one_time_burst"},
        BadCase{
            "RateLimiterUnknownBucket",
            R"({"boot-source":{"kernel_image_path":"/k"},"entropy":{"rate_limiter":{"bytes":{}}}})",
            "entropy.rate_limiter.bytes: unknown field"},
        BadCase{
            "NetRateLimiterBad",
            R"({"boot-source":{"kernel_image_path":"/k"},"network-interfaces":[{"iface_id":"eth0","host_dev_name":"t","tx_rate_limiter":{"bandwidth":{"size":true,"refill_time":1}}}]})",
            "network-interfaces[0].tx_rate_limiter.bandwidth.size"},
        BadCase{"LoggerLevel",
                R"({"boot-source":{"kernel_image_path":"/k"},"logger":{"level":"Loud"}})",
                "logger.level"},
        BadCase{"MetricsNoPath",
                R"({"boot-source":{"kernel_image_path":"/k"},"metrics":{"emit_id":true}})",
                "metrics.metrics_path: missing"},
        // Pre-1.0 field names: each refusal names the field as the file wrote it.
        BadCase{
            "HtEnabledTrue",
            R"({"boot-source":{"kernel_image_path":"/k"},"machine-config":{"vcpu_count":1,"mem_size_mib":64,"ht_enabled":true}})",
            "machine-config.ht_enabled: true"},
        BadCase{
            "HtEnabledAndSmt",
            R"({"boot-source":{"kernel_image_path":"/k"},"machine-config":{"vcpu_count":1,"mem_size_mib":64,"ht_enabled":false,"smt":false}})",
            "machine-config.ht_enabled: is the pre-1.0 name of machine-config.smt"},
        BadCase{
            "HtEnabledNotBool",
            R"({"boot-source":{"kernel_image_path":"/k"},"machine-config":{"vcpu_count":1,"mem_size_mib":64,"ht_enabled":"no"}})",
            "machine-config.ht_enabled: must be true or false"},
        BadCase{
            "LogFifoAndLogPath",
            R"({"boot-source":{"kernel_image_path":"/k"},"logger":{"log_fifo":"/a","log_path":"/b"}})",
            "logger.log_fifo: is the pre-1.0 name of logger.log_path"},
        BadCase{"LogFifoNotString",
                R"({"boot-source":{"kernel_image_path":"/k"},"logger":{"log_fifo":7}})",
                "logger.log_fifo: must be a string"},
        BadCase{
            "MetricsFifoAndMetrics",
            R"({"boot-source":{"kernel_image_path":"/k"},"logger":{"metrics_fifo":"/m"},"metrics":{"metrics_path":"/n"}})",
            "logger.metrics_fifo: and metrics.metrics_path both name the metrics file"},
        BadCase{"MetricsFifoEmpty",
                R"({"boot-source":{"kernel_image_path":"/k"},"logger":{"metrics_fifo":""}})",
                "logger.metrics_fifo: must be a non-empty string"},
        BadCase{
            "LoggerOptionsHaveNoEquivalent",
            R"({"boot-source":{"kernel_image_path":"/k"},"logger":{"options":["LogDirtyPages"]}})",
            "logger.options: unknown field"},
        BadCase{
            "AllowMmdsRequestsNotBool",
            R"({"boot-source":{"kernel_image_path":"/k"},"network-interfaces":[{"iface_id":"eth0","host_dev_name":"t","allow_mmds_requests":1}]})",
            "network-interfaces[0].allow_mmds_requests: must be true or false"},
        BadCase{
            "MmdsUnknownInterface",
            R"({"boot-source":{"kernel_image_path":"/k"},"network-interfaces":[{"iface_id":"eth0","host_dev_name":"t"}],"mmds-config":{"network_interfaces":["eth1"]}})",
            "mmds-config.network_interfaces: 'eth1' is not a network interface"},
        BadCase{
            "MmdsNoInterfaces",
            R"({"boot-source":{"kernel_image_path":"/k"},"network-interfaces":[{"iface_id":"eth0","host_dev_name":"t"}],"mmds-config":{"network_interfaces":[]}})",
            "mmds-config.network_interfaces: must be a non-empty array"},
        BadCase{
            "MmdsInterfacesMissing",
            R"({"boot-source":{"kernel_image_path":"/k"},"network-interfaces":[{"iface_id":"eth0","host_dev_name":"t"}],"mmds-config":{"version":"V1"}})",
            "mmds-config.network_interfaces: missing required field"},
        BadCase{
            "MmdsVersion3",
            R"({"boot-source":{"kernel_image_path":"/k"},"network-interfaces":[{"iface_id":"eth0","host_dev_name":"t"}],"mmds-config":{"version":"V3","network_interfaces":["eth0"]}})",
            "mmds-config.version: must be V1 or V2"},
        BadCase{
            "MmdsNotLinkLocal",
            R"({"boot-source":{"kernel_image_path":"/k"},"network-interfaces":[{"iface_id":"eth0","host_dev_name":"t"}],"mmds-config":{"network_interfaces":["eth0"],"ipv4_address":"10.0.0.1"}})",
            "mmds-config.ipv4_address"},
        BadCase{
            "MmdsAddressTooBig",
            R"({"boot-source":{"kernel_image_path":"/k"},"network-interfaces":[{"iface_id":"eth0","host_dev_name":"t"}],"mmds-config":{"network_interfaces":["eth0"],"ipv4_address":"169.254.169.256"}})",
            "mmds-config.ipv4_address"},
        BadCase{
            "MmdsAddressNetwork",
            R"({"boot-source":{"kernel_image_path":"/k"},"network-interfaces":[{"iface_id":"eth0","host_dev_name":"t"}],"mmds-config":{"network_interfaces":["eth0"],"ipv4_address":"169.254.0.9"}})",
            "mmds-config.ipv4_address"},
        BadCase{
            "MmdsUnknownField",
            R"({"boot-source":{"kernel_image_path":"/k"},"network-interfaces":[{"iface_id":"eth0","host_dev_name":"t"}],"mmds-config":{"network_interfaces":["eth0"],"port":80}})",
            "mmds-config.port: unknown field"},
        BadCase{
            "VsockHostCid",
            R"({"boot-source":{"kernel_image_path":"/k"},"vsock":{"guest_cid":2,"uds_path":"/v"}})",
            "vsock.guest_cid: 2 is outside [3, 4294967294]"},
        BadCase{
            "VsockCidTooBig",
            R"({"boot-source":{"kernel_image_path":"/k"},"vsock":{"guest_cid":4294967295,"uds_path":"/v"}})",
            "vsock.guest_cid: 4294967295 is outside"},
        BadCase{"VsockNoPath",
                R"({"boot-source":{"kernel_image_path":"/k"},"vsock":{"guest_cid":3}})",
                "vsock.uds_path: missing required field"},
        BadCase{
            "VsockEmptyPath",
            R"({"boot-source":{"kernel_image_path":"/k"},"vsock":{"guest_cid":3,"uds_path":""}})",
            "vsock.uds_path: must not be empty"},
        BadCase{
            "VsockPathTooLong",
            R"({"boot-source":{"kernel_image_path":"/k"},"vsock":{"guest_cid":3,"uds_path":"/xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}})",
            "vsock.uds_path: is too long"},
        BadCase{
            "VsockUnknownField",
            R"({"boot-source":{"kernel_image_path":"/k"},"vsock":{"guest_cid":3,"uds_path":"/v","port":1}})",
            "vsock.port: unknown field"}),
    [](const ::testing::TestParamInfo<BadCase>& i) { return i.param.name; });

}  // namespace
}  // namespace edgevisor
