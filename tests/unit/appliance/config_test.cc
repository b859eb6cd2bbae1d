// appliance.json: parsing at both stages (errors name the field), rendering the config
// partition (the demo's Firecracker config, user configs checked by edgevisor's own parser),
// and the supervisor's restart policy, also against a fake edgevisor.
#include "src/appliance/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "src/appliance/jail.h"
#include "src/appliance/supervisor.h"
#include "tests/unit/tool_text.h"

namespace edgevisor::appliance {
namespace {

using ::testing::HasSubstr;
using Json = nlohmann::json;

constexpr char kGood[] = R"({
  "name": "edge-01",
  "console": "ttyS0,115200",
  "network": {
    "interfaces": [{"name": "eth0", "dhcp": true},
                   {"name": "eth1", "address": "192.0.2.10/24", "gateway": "192.0.2.1"}],
    "vm_bridge": {"name": "br0", "address": "172.16.0.1/24", "uplink": "eth1"}
  },
  "vms": [{"name": "demo", "demo": {"vcpus": 2, "mem_mib": 256, "net": true}},
          {"name": "crashy", "demo": {"cmdline": "ev.panic=1"}, "restart": "always"}]
})";

TEST(ApplianceConfigTest, ParsesABuildConfig) {
  auto c = ParseApplianceConfig(kGood, Stage::kBuild);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->name, "edge-01");
  ASSERT_EQ(c->interfaces.size(), 2u);
  EXPECT_TRUE(c->interfaces[0].dhcp);
  EXPECT_EQ(c->interfaces[1].gateway, "192.0.2.1");
  ASSERT_TRUE(c->bridge);
  EXPECT_EQ(c->bridge->uplink, "eth1");
  ASSERT_EQ(c->vms.size(), 2u);
  EXPECT_EQ(c->vms[0].demo->vcpus, 2);
  EXPECT_EQ(c->vms[0].restart, Restart::kOnFailure) << "the default";
  EXPECT_EQ(c->vms[1].restart, Restart::kAlways);
  EXPECT_EQ(c->kernel, "cloud");
}

TEST(ApplianceConfigTest, KernelTakesAFlavourAndADebianRelease) {
  for (const char* k : {"cloud", "generic", "generic@trixie", "cloud@bookworm"}) {
    auto c =
        ParseApplianceConfig(absl::StrFormat(R"({"name": "a", "kernel": "%s"})", k), Stage::kBuild);
    ASSERT_TRUE(c.ok()) << k << ": " << c.status();
    EXPECT_EQ(c->kernel, k);
  }
}

struct BadCase {
  const char* json;
  const char* error;
};

class BadConfigTest : public ::testing::TestWithParam<BadCase> {};

TEST_P(BadConfigTest, NamesTheField) {
  auto c = ParseApplianceConfig(GetParam().json, Stage::kBuild);
  ASSERT_FALSE(c.ok()) << GetParam().json;
  EXPECT_THAT(std::string(c.status().message()), HasSubstr(GetParam().error));
}

INSTANTIATE_TEST_SUITE_P(
    Cases, BadConfigTest,
    ::testing::Values(
        BadCase{"{", "not valid JSON"}, BadCase{"{}", "name: missing required field"},
        BadCase{R"({"name": "-x"})", "name: may not start or end with '-'"},
        BadCase{R"({"name": "a b"})", "name: 'a b': only letters"},
        BadCase{R"({"name": "a", "colour": 1})", "colour: unknown field"},
        BadCase{R"({"name": "a", "kernel": "rt"})", "kernel: 'rt' is not cloud or generic"},
        BadCase{R"({"name": "a", "kernel": "rt@trixie"})", "kernel: 'rt' is not cloud or generic"},
        BadCase{R"({"name": "a", "kernel": "generic@"})",
                "kernel: release '' is not a Debian release name"},
        BadCase{R"({"name": "a", "kernel": "cloud@../x"})",
                "kernel: release '../x' is not a Debian release name"},
        BadCase{R"({"name": "a", "console": "tty S0"})", "console: 'tty S0' is not a console"},
        BadCase{R"({"name": "a", "network": {"interfaces": [{"name": "eth0"}]}})",
                "network.interfaces[0]: give either \"dhcp\": true or an \"address\""},
        BadCase{R"({"name": "a", "network": {"interfaces": [{"name": "eth0",
                "address": "10.0.0.300/24"}]}})",
                "network.interfaces[0].address: '10.0.0.300/24' is not an IPv4 address"},
        BadCase{R"({"name": "a", "network": {"interfaces": [{"name": "a/b", "dhcp": true}]}})",
                "network.interfaces[0].name: 'a/b' is not an interface name"},
        BadCase{R"({"name": "a", "network": {"interfaces": [{"name": "e", "dhcp": true},
                {"name": "e", "dhcp": true}]}})",
                "network.interfaces[1].name: 'e' is given twice"},
        BadCase{R"({"name": "a", "network": {"vm_bridge": {"name": "br0",
                "address": "1.2.3.4"}}})",
                "network.vm_bridge.address: '1.2.3.4' is not an IPv4 address with a prefix"},
        BadCase{R"({"name": "a", "vms": {}})", "vms: must be an array"},
        BadCase{R"({"name": "a", "vms": [{"name": "Web", "demo": {}}]})",
                "vms[0].name: 'Web': only a-z"},
        BadCase{R"({"name": "a", "vms": [{"name": "averyveryverylongname", "demo": {}}]})",
                "vms[0].name: must be 1 to 12 characters"},
        BadCase{R"({"name": "a", "vms": [{"name": "w"}]})",
                "vms[0]: give either \"demo\": {...} or a Firecracker \"config\" file"},
        BadCase{R"({"name": "a", "vms": [{"name": "w", "demo": {}, "restart": "sometimes"}]})",
                "vms[0].restart: 'sometimes' is not one of always, on-failure, never"},
        BadCase{R"({"name": "a", "vms": [{"name": "w", "demo": {"vcpus": 0}}]})",
                "vms[0].demo.vcpus: 0 is outside [1, 32]"},
        BadCase{R"({"name": "a", "vms": [{"name": "w", "demo": {"net": true}}]})",
                "vms[0].demo.net: needs network.vm_bridge with an address"},
        BadCase{R"({"name": "a", "vms": [{"name": "w", "demo": {}}, {"name": "w",
                "demo": {}}]})",
                "vms[1].name: 'w' is given twice"},
        BadCase{R"({"name": "a", "vms": [{"name": "w", "config": "w.json",
                "files": {"../x": "y"}}]})",
                "vms[0].files.../x: is not a plain file name"}));

TEST(ApplianceConfigTest, RuntimeStageWantsConfigFilesOnly) {
  auto demo =
      ParseApplianceConfig(R"({"name": "a", "vms": [{"name": "w", "demo": {}}]})", Stage::kRuntime);
  ASSERT_FALSE(demo.ok());
  EXPECT_THAT(std::string(demo.status().message()), HasSubstr("vms[0].demo: unknown field"));
  auto escape = ParseApplianceConfig(
      R"({"name": "a", "vms": [{"name": "w", "config": "../etc/x.json"}]})", Stage::kRuntime);
  ASSERT_FALSE(escape.ok());
  EXPECT_THAT(std::string(escape.status().message()),
              HasSubstr("vms[0].config: must be a path inside the config partition"));
  EXPECT_TRUE(
      ParseApplianceConfig(R"({"name": "a", "vms": [{"name": "w", "config": "vms/w.json"}]})",
                           Stage::kRuntime)
          .ok());
}

TEST(ApplianceRenderTest, DemoVmsBecomeFirecrackerConfigs) {
  auto c = ParseApplianceConfig(kGood, Stage::kBuild);
  ASSERT_TRUE(c.ok());
  auto out = Render(*c, ".");
  ASSERT_TRUE(out.ok()) << out.status();
  // The runtime appliance.json parses at the runtime stage and names each VM's file.
  auto rt = ParseApplianceConfig(out->appliance.dump(), Stage::kRuntime);
  ASSERT_TRUE(rt.ok()) << rt.status() << out->appliance.dump();
  EXPECT_EQ(rt->vms[0].config, "vms/demo.json");
  EXPECT_EQ(rt->vms[1].restart, Restart::kAlways);
  EXPECT_EQ(rt->bridge->name, "br0");
  const Json demo = Json::parse(out->vm_configs.at("vms/demo.json"));
  EXPECT_EQ(demo["boot-source"]["kernel_image_path"], kDemoKernel);
  EXPECT_EQ(demo["boot-source"]["initrd_path"], kDemoInitrd);
  EXPECT_EQ(demo["machine-config"]["vcpu_count"], 2);
  EXPECT_EQ(demo["network-interfaces"][0]["host_dev_name"], "ev-demo");
  EXPECT_THAT(demo["boot-source"]["boot_args"].get<std::string>(),
              HasSubstr("ev.ping=172.16.0.1 ev.ip=172.16.0.100/24"));
  const Json crashy = Json::parse(out->vm_configs.at("vms/crashy.json"));
  EXPECT_THAT(crashy["boot-source"]["boot_args"].get<std::string>(), HasSubstr(" ev.panic=1"));
  EXPECT_FALSE(crashy.contains("network-interfaces"));
}

TEST(ApplianceRenderTest, UserConfigsAreCheckedByEdgevisorsParser) {
  testing::ScratchDir dir;
  auto put = [&](const std::string& name, const std::string& text) {
    dir.Write(name, std::vector<uint8_t>(text.begin(), text.end()));
  };
  put("web.json",
      R"({"boot-source": {"kernel_image_path": "/data/vms/web/vmlinux"},
          "machine-config": {"vcpu_count": 1, "mem_size_mib": 128}})");
  put("vmlinux", "kernel");
  put("bad.json", R"({"boot-source": {}, "machine-config": {"vcpu_count": 1,
                      "mem_size_mib": 128}})");
  auto good = ParseApplianceConfig(
      R"({"name": "a", "vms": [{"name": "web", "config": "web.json",
          "files": {"vmlinux": "vmlinux"}}]})",
      Stage::kBuild);
  ASSERT_TRUE(good.ok()) << good.status();
  auto out = Render(*good, dir.path());
  ASSERT_TRUE(out.ok()) << out.status();
  ASSERT_EQ(out->data_files.size(), 1u);
  EXPECT_EQ(out->data_files[0].first, dir.File("vmlinux"));
  EXPECT_EQ(out->data_files[0].second, "vms/web/vmlinux");
  EXPECT_THAT(out->vm_configs.at("vms/web.json"), HasSubstr("/data/vms/web/vmlinux"));

  auto bad = ParseApplianceConfig(R"({"name": "a", "vms": [{"name": "b", "config": "bad.json"}]})",
                                  Stage::kBuild);
  ASSERT_TRUE(bad.ok());
  auto r = Render(*bad, dir.path());
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()),
              HasSubstr("vms[0].config: bad.json: boot-source.kernel_image_path"));

  auto missing = ParseApplianceConfig(
      R"({"name": "a", "vms": [{"name": "web", "config": "web.json",
          "files": {"vmlinux": "nope"}}]})",
      Stage::kBuild);
  ASSERT_TRUE(missing.ok());
  auto m = Render(*missing, dir.path());
  ASSERT_FALSE(m.ok());
  EXPECT_THAT(std::string(m.status().message()), HasSubstr("vms[0].files.vmlinux: cannot read"));
}

int Exited(int code) { return code << 8; }  // a wait status for exit(code)

TEST(SupervisorPolicyTest, RestartsByPolicyAndOutcome) {
  using std::chrono::milliseconds;
  using std::chrono::seconds;
  milliseconds b{0};
  // Power-off: only "always" starts it again.
  EXPECT_TRUE(Decide(Restart::kAlways, Classify(Exited(0)), seconds{5}, &b).restart);
  EXPECT_FALSE(Decide(Restart::kOnFailure, Classify(Exited(0)), seconds{5}, &b).restart);
  // A reboot starts it again at once, unless "never".
  auto r = Decide(Restart::kOnFailure, Classify(Exited(kRebootExitCode)), seconds{5}, &b);
  EXPECT_TRUE(r.restart);
  EXPECT_EQ(r.delay, milliseconds{0});
  EXPECT_FALSE(Decide(Restart::kNever, Classify(Exited(kRebootExitCode)), seconds{5}, &b).restart);
  // A refused config is not retried.
  EXPECT_FALSE(Decide(Restart::kAlways, Classify(Exited(2)), seconds{0}, &b).restart);
  // Crashes (an exit code or a signal) back off 1, 2, 4 ... 60 s, and reset after a long run.
  b = milliseconds{0};
  std::vector<int64_t> delays;
  for (int i = 0; i < 8; ++i) {
    delays.push_back(
        Decide(Restart::kOnFailure, Classify(9 /* SIGKILL */), seconds{1}, &b).delay.count());
  }
  EXPECT_EQ(delays, (std::vector<int64_t>{1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000}));
  EXPECT_EQ(Decide(Restart::kOnFailure, Classify(Exited(1)), seconds{700}, &b).delay.count(), 1000);
  EXPECT_FALSE(Decide(Restart::kNever, Classify(Exited(1)), seconds{1}, &b).restart);
  EXPECT_EQ(DescribeExit(9), "killed by signal 9");
  EXPECT_EQ(DescribeExit(Exited(3)), "crashed (exit 3)");
}

TEST(SupervisorTest, RestartsACrashingVmAndLogsItsLines) {
  if (getenv("EDGEVISOR_QEMU_USER") != nullptr) {
    GTEST_SKIP() << "qemu-user hangs in fork() here; this runs natively in the x86 builds, and "
                    "the arm64 appliance boots run the real supervisor";
  }
  testing::ScratchDir dir;
  // A fake edgevisor: prints its arguments, then crashes the first time and powers off the
  // second.
  const std::string fake = dir.File("edgevisor");
  const std::string script = "#!/bin/sh\necho \"args: $*\"\nif [ -e " + dir.File("ran") +
                             " ]; then exit 0; fi\ntouch " + dir.File("ran") + "\nexit 3\n";
  dir.Write("edgevisor", std::vector<uint8_t>(script.begin(), script.end()));
  chmod(fake.c_str(), 0755);
  mkdir(dir.File("log").c_str(), 0755);
  std::vector<std::string> lines;
  SupervisorOptions opts;
  opts.edgevisor = fake;
  opts.jailer = "";  // run the fake directly
  opts.config_dir = "/config";
  opts.log_dir = dir.File("log");
  opts.console = [&](const std::string& l) { lines.push_back(l); };
  opts.max_starts = 5;
  VmEntry vm;
  vm.name = "demo";
  vm.config = "vms/demo.json";
  SuperviseVm(opts, vm);  // crash -> 1 s back-off -> power-off -> done
  const std::string all = testing::FoldWhitespace([&] {
    std::string s;
    for (const auto& l : lines) s += l + "\n";
    return s;
  }());
  EXPECT_THAT(all, HasSubstr("[demo] args: --config-file /config/vms/demo.json --no-api --id "
                             "demo --reboot-exit-code 75"));
  EXPECT_THAT(all, HasSubstr("vm demo: crashed (exit 3) after 0 s; restarting in 1000 ms"));
  EXPECT_THAT(all, HasSubstr("vm demo: starting (run 2, restart policy on-failure)"));
  EXPECT_THAT(all, HasSubstr("vm demo: the guest powered off (exit 0) after 0 s; not restarting"));
  EXPECT_THAT(dir.Read("log/demo.log"), HasSubstr("args: --config-file"));
}

// ---- the jail (jail.h) ------------------------------------------------------------------------

TEST(Jail, ConfigPathsBecomeJailRelativeAndEveryFileIsListed) {
  const std::string fc = R"({"boot-source": {"kernel_image_path": "/usr/share/k",
    "initrd_path": "/usr/share/i", "boot_args": "console=ttyS0"},
    "drives": [{"drive_id": "root", "path_on_host": "/data/vms/a/root.ext4",
                "is_root_device": true, "is_read_only": false},
               {"drive_id": "seed", "path_on_host": "/data/vms/a/seed.img",
                "is_root_device": false, "is_read_only": true}]})";
  std::vector<std::tuple<std::string, std::string, bool>> files;
  auto out = JailConfig(fc, &files);
  ASSERT_TRUE(out.ok()) << out.status();
  const auto j = nlohmann::json::parse(*out);
  EXPECT_EQ(j["boot-source"]["kernel_image_path"], "/kernel");
  EXPECT_EQ(j["boot-source"]["initrd_path"], "/initrd");
  EXPECT_EQ(j["boot-source"]["boot_args"], "console=ttyS0");
  EXPECT_EQ(j["drives"][0]["path_on_host"], "/drive0");
  EXPECT_EQ(j["drives"][1]["path_on_host"], "/drive1");
  using F = std::tuple<std::string, std::string, bool>;
  EXPECT_THAT(files, ::testing::ElementsAre(F{"/usr/share/k", "kernel", false},
                                            F{"/usr/share/i", "initrd", false},
                                            F{"/data/vms/a/root.ext4", "drive0", true},
                                            F{"/data/vms/a/seed.img", "drive1", false}));
  EXPECT_FALSE(JailConfig("[1, 2]", &files).ok());
}

TEST(Jail, JailerCommandCarriesTheUidTheLimitsAndTheVmmFlags) {
  JailSpec s;
  s.jailer = "/usr/bin/jailer";
  s.edgevisor = "/usr/bin/edgevisor";
  s.vm = "demo";
  s.uid = 10001;
  s.memory_max_mib = 384;
  s.cpu_max_percent = 150;
  s.reboot_exit_code = 75;
  EXPECT_EQ(absl::StrJoin(JailerArgv(s), " "),
            "/usr/bin/jailer --id demo --exec-file /usr/bin/edgevisor --uid 10001 --gid 10001 "
            "--chroot-base-dir /run/jailer --cgroup-version 2 --cgroup memory.max=402653184 "
            "--cgroup cpu.max=150000 100000 -- --config-file /config.json --no-api "
            "--reboot-exit-code 75");
  EXPECT_EQ(JailRoot(s), "/run/jailer/edgevisor/demo/root");
  s.memory_max_mib.reset();
  s.cpu_max_percent.reset();
  const std::string unlimited = absl::StrJoin(JailerArgv(s), " ");
  EXPECT_THAT(unlimited, HasSubstr("--cgroup memory.max=max --cgroup cpu.max=max 100000"));
  // Under systemd (ev-appliance vm-start) the unit's cgroup holds the VMM: no cgroup flags.
  s.own_cgroup = false;
  EXPECT_EQ(absl::StrJoin(JailerArgv(s), " "),
            "/usr/bin/jailer --id demo --exec-file /usr/bin/edgevisor --uid 10001 --gid 10001 "
            "--chroot-base-dir /run/jailer -- --config-file /config.json --no-api "
            "--reboot-exit-code 75");
}

TEST(Jail, LimitsAreParsedAndRenderedWithTheirFieldNames) {
  auto bad = ParseApplianceConfig(
      R"({"name": "x", "vms": [{"name": "a", "demo": {}, "memory_max_mib": 8}]})", Stage::kBuild);
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("vms[0].memory_max_mib"));
  auto ok = ParseApplianceConfig(
      R"({"name": "x", "vms": [{"name": "a", "config": "vms/a.json", "memory_max_mib": 512,
          "cpu_max_percent": 50}]})",
      Stage::kRuntime);
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->vms[0].memory_max_mib, 512);
  EXPECT_EQ(ok->vms[0].cpu_max_percent, 50);
}

}  // namespace

}  // namespace edgevisor::appliance
