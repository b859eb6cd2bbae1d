#include "src/vmm/cli.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

namespace edgevisor {
namespace {

using ::testing::HasSubstr;

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    kernel_ = ::testing::TempDir() + "/cli_test_kernel";
    std::ofstream(kernel_) << "x";
    host_.mem_mib = 1024;
    host_.max_vcpus = 8;
  }
  absl::StatusOr<RunOptions> Parse(std::vector<std::string> args) {
    return ParseRunArgs(args, host_);
  }
  std::string Err(std::vector<std::string> args) {
    auto r = Parse(std::move(args));
    EXPECT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    return std::string(r.status().message());
  }
  std::string kernel_;
  HostLimits host_;
};

TEST_F(CliTest, ParsesAllFlags) {
  auto r = Parse({"--kernel", kernel_, "--cmdline", "a b=c", "--mem", "64", "--vcpus=2", "--serial",
                  "file:/tmp/x", "--debug-exit", "--id", "vm1", "--log-level", "debug"});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->vm.boot.kernel_path, kernel_);
  EXPECT_EQ(r->vm.boot.cmdline, "a b=c");
  EXPECT_EQ(r->vm.machine.mem_mib, 64u);
  EXPECT_EQ(r->vm.machine.vcpus, 2);
  EXPECT_EQ(r->vm.serial.mode, SerialConfig::Mode::kFile);
  EXPECT_EQ(r->vm.serial.path, "/tmp/x");
  EXPECT_TRUE(r->vm.debug_exit);
  EXPECT_EQ(r->vm.id, "vm1");
  EXPECT_EQ(r->log_level, "debug");
}

TEST_F(CliTest, RebootExitCodeAndVirtioMmioCmdline) {
  auto r = Parse({"--kernel", kernel_, "--reboot-exit-code", "42", "--no-virtio-mmio-cmdline"});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->vm.reboot_exit_code, 42);
  EXPECT_FALSE(r->vm.virtio_mmio_cmdline);
  EXPECT_THAT(Err({"--kernel", kernel_, "--reboot-exit-code", "256"}),
              HasSubstr("--reboot-exit-code: '256'"));
  EXPECT_THAT(Err({"--kernel", kernel_, "--reboot-exit-code=x"}), HasSubstr("--reboot-exit-code"));
  EXPECT_THAT(Err({"--kernel", kernel_, "--no-virtio-mmio-cmdline=1"}),
              HasSubstr("--no-virtio-mmio-cmdline: takes no value"));
}

TEST_F(CliTest, BootProtocol) {
  EXPECT_EQ(Parse({"--kernel", kernel_})->vm.boot.protocol, BootProtocol::kAuto);
  EXPECT_EQ(Parse({"--kernel", kernel_, "--boot-protocol", "pvh"})->vm.boot.protocol,
            BootProtocol::kPvh);
  EXPECT_EQ(Parse({"--kernel", kernel_, "--boot-protocol=linux"})->vm.boot.protocol,
            BootProtocol::kLinux);
  EXPECT_THAT(Err({"--kernel", kernel_, "--boot-protocol", "efi"}),
              HasSubstr("--boot-protocol: 'efi' is not one of auto, pvh, linux"));
}

TEST_F(CliTest, Gic) {
  EXPECT_EQ(Parse({"--kernel", kernel_, "--gic", "auto"})->vm.machine.gic, 0);
  EXPECT_THAT(Err({"--kernel", kernel_, "--gic", "v4"}),
              HasSubstr("--gic: 'v4' is not one of auto, v2, v3"));
#if defined(__aarch64__)
  EXPECT_EQ(Parse({"--kernel", kernel_, "--gic", "v2"})->vm.machine.gic, 2);
  EXPECT_EQ(Parse({"--kernel", kernel_, "--gic=v3"})->vm.machine.gic, 3);
#else
  EXPECT_THAT(Err({"--kernel", kernel_, "--gic", "v2"}), HasSubstr("--gic: only aarch64"));
#endif
}

TEST_F(CliTest, Arm64FeaturesOff) {
  EXPECT_THAT(Err({"--kernel", kernel_, "--arm64-off", "pmu,mte"}),
              HasSubstr("--arm64-off: 'mte' is not pmu, sve or pac"));
#if defined(__aarch64__)
  auto all = Parse({"--kernel", kernel_});
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->vm.machine.arm64, (Arm64CpuFeatures{.pmu = true, .sve = true, .ptrauth = true}));
  auto some = Parse({"--kernel", kernel_, "--arm64-off", "pmu,pac"});
  ASSERT_TRUE(some.ok()) << some.status();
  EXPECT_EQ(some->vm.machine.arm64,
            (Arm64CpuFeatures{.pmu = false, .sve = true, .ptrauth = false}));
#else
  EXPECT_THAT(Err({"--kernel", kernel_, "--arm64-off", "sve"}),
              HasSubstr("--arm64-off: only aarch64"));
#endif
}

TEST_F(CliTest, Defaults) {
  auto r = Parse({"--kernel", kernel_});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->vm.machine.vcpus, 1);
  EXPECT_EQ(r->vm.machine.mem_mib, 128u);
  EXPECT_EQ(r->vm.serial.mode, SerialConfig::Mode::kStdio);
  EXPECT_FALSE(r->vm.debug_exit);
  EXPECT_EQ(r->vm.reboot_exit_code, 0);
  EXPECT_TRUE(r->vm.virtio_mmio_cmdline);
}

TEST_F(CliTest, MissingKernel) { EXPECT_THAT(Err({"--mem", "64"}), HasSubstr("--kernel")); }

TEST_F(CliTest, NonexistentKernel) {
  EXPECT_THAT(Err({"--kernel", "/nonexistent/k"}),
              AllOf(HasSubstr("--kernel"), HasSubstr("No such file")));
}

TEST_F(CliTest, KernelIsDirectory) {
  EXPECT_THAT(Err({"--kernel", "/tmp"}), AllOf(HasSubstr("--kernel"), HasSubstr("regular")));
}

TEST_F(CliTest, UnreadableKernel) {
  if (geteuid() == 0) GTEST_SKIP() << "root reads any file";
  std::string p = ::testing::TempDir() + "/cli_unreadable";
  std::ofstream(p) << "x";
  chmod(p.c_str(), 0);
  EXPECT_THAT(Err({"--kernel", p}), HasSubstr("--kernel"));
}

TEST_F(CliTest, ZeroMem) {
  EXPECT_THAT(Err({"--kernel", kernel_, "--mem", "0"}), HasSubstr("--mem"));
}

TEST_F(CliTest, MemLargerThanHost) {
  EXPECT_THAT(Err({"--kernel", kernel_, "--mem", "4096"}),
              AllOf(HasSubstr("--mem"), HasSubstr("host")));
}

TEST_F(CliTest, MemNotANumber) {
  EXPECT_THAT(Err({"--kernel", kernel_, "--mem", "lots"}), HasSubstr("--mem"));
  EXPECT_THAT(Err({"--kernel", kernel_, "--mem", "-5"}), HasSubstr("--mem"));
}

TEST_F(CliTest, ZeroVcpus) {
  EXPECT_THAT(Err({"--kernel", kernel_, "--vcpus", "0"}), HasSubstr("--vcpus"));
}

TEST_F(CliTest, TooManyVcpus) {
  EXPECT_THAT(Err({"--kernel", kernel_, "--vcpus", "9"}), HasSubstr("--vcpus"));
}

TEST_F(CliTest, BadSerial) {
  EXPECT_THAT(Err({"--kernel", kernel_, "--serial", "tcp:1"}), HasSubstr("--serial"));
  EXPECT_THAT(Err({"--kernel", kernel_, "--serial", "file:"}), HasSubstr("--serial"));
}

TEST_F(CliTest, MissingValue) {
  EXPECT_THAT(Err({"--kernel"}), HasSubstr("--kernel: missing value"));
}

TEST_F(CliTest, UnknownFlag) {
  EXPECT_THAT(Err({"--kernel", kernel_, "--frobnicate"}), HasSubstr("--frobnicate"));
}

TEST_F(CliTest, BadLogLevel) {
  EXPECT_THAT(Err({"--kernel", kernel_, "--log-level", "loud"}), HasSubstr("--log-level"));
}

}  // namespace
}  // namespace edgevisor

namespace edgevisor {
namespace {

TEST(DriveSpecTest, ParsesAllKeys) {
  auto d = ParseDriveSpec("path=/d.img,id=rootfs,ro=on,direct=on,queues=4,engine=sync", 0);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->path, "/d.img");
  EXPECT_EQ(d->id, "rootfs");
  EXPECT_TRUE(d->read_only);
  EXPECT_TRUE(d->direct);
  EXPECT_EQ(d->queues, 4);
  EXPECT_EQ(d->engine, DriveConfig::Engine::kSync);
}

TEST(DriveSpecTest, DefaultsAndDefaultId) {
  auto d = ParseDriveSpec("path=/d.img", 3);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->id, "drive3");
  EXPECT_FALSE(d->read_only);
  EXPECT_EQ(d->queues, 1);
  EXPECT_EQ(d->engine, DriveConfig::Engine::kAuto);
}

TEST(DriveSpecTest, RejectsBadSpecsNamingTheKey) {
  for (const char* spec :
       {"id=x", "path=/a,queues=0", "path=/a,queues=17", "path=/a,ro=maybe", "path=/a,engine=aio",
        "path=/a,colour=red", "path=/a,novalue", "path=/a,id="}) {
    auto d = ParseDriveSpec(spec, 0);
    EXPECT_FALSE(d.ok()) << spec;
    EXPECT_NE(std::string(d.status().message()).find("--drive"), std::string::npos) << spec;
  }
}

TEST(DriveSpecTest, DuplicateIdsRejected) {
  VmConfig cfg;
  cfg.boot.kernel_path = "/k";
  DriveConfig a, b;
  a.path = "/a";
  b.path = "/b";
  a.id = b.id = "x";
  cfg.drives = {a, b};
  HostLimits host{1024, 8};
  EXPECT_FALSE(ValidateVmConfig(cfg, host).ok());
}

}  // namespace
}  // namespace edgevisor

namespace edgevisor {
namespace {

TEST(NetSpecTest, ParsesAllKeys) {
  auto n = ParseNetSpec("tap=tap7,mac=52:54:00:12:34:56,queues=2", 0);
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(n->tap, "tap7");
  EXPECT_EQ(n->mac[0], 0x52);
  EXPECT_EQ(n->mac[5], 0x56);
  EXPECT_EQ(n->queues, 2);
}

TEST(NetSpecTest, DefaultMacIsLocallyAdministeredAndPerIndex) {
  auto a = ParseNetSpec("tap=a", 0);
  auto b = ParseNetSpec("tap=b", 1);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->mac[0] & 0x02, 0x02);
  EXPECT_EQ(a->mac[0] & 0x01, 0);
  EXPECT_NE(a->mac, b->mac);
}

TEST(NetSpecTest, RejectsBadSpecsNamingTheFlag) {
  for (const char* spec :
       {"mac=52:54:00:12:34:56", "tap=t,mac=zz", "tap=t,mac=01:00:00:00:00:01", "tap=t,queues=0",
        "tap=t,queues=9", "tap=t,speed=fast", "tap=t,x", "tap=t,mac=52:54:00:12:34:56:77"}) {
    auto n = ParseNetSpec(spec, 0);
    EXPECT_FALSE(n.ok()) << spec;
    EXPECT_NE(std::string(n.status().message()).find("--net"), std::string::npos) << spec;
  }
}

TEST(NetSpecTest, DuplicateTapRejected) {
  VmConfig cfg;
  cfg.boot.kernel_path = "/k";
  cfg.nets = {*ParseNetSpec("tap=x", 0), *ParseNetSpec("tap=x", 1)};
  EXPECT_FALSE(ValidateVmConfig(cfg, HostLimits{1024, 8}).ok());
}

}  // namespace
}  // namespace edgevisor

namespace edgevisor {
namespace {

TEST(FirecrackerArgsTest, RebootExitCodeOnlyWithNoApi) {
  auto ok =
      ParseFirecrackerArgs({"--config-file", "vm.json", "--no-api", "--reboot-exit-code", "75"});
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->reboot_exit_code, 75);
  EXPECT_FALSE(ParseFirecrackerArgs({"--config-file", "vm.json", "--no-api"})->reboot_exit_code);
  auto api = ParseFirecrackerArgs({"--api-sock", "/tmp/s", "--reboot-exit-code", "75"});
  ASSERT_FALSE(api.ok());
  EXPECT_THAT(std::string(api.status().message()), HasSubstr("--reboot-exit-code: only with"));
  auto big =
      ParseFirecrackerArgs({"--config-file", "vm.json", "--no-api", "--reboot-exit-code", "256"});
  ASSERT_FALSE(big.ok());
  EXPECT_THAT(std::string(big.status().message()), HasSubstr("0 to 255"));
}

}  // namespace
}  // namespace edgevisor
