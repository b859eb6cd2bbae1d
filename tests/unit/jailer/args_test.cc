// The jailer's command line (src/jailer/args.cc): every flag, the defaults, the paths it
// derives, what the VMM is exec'd with, and each malformed input: its exit code and a message
// that names the flag.
#include "src/jailer/args.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <string>
#include <vector>

#include "src/jailer/exit_codes.h"

namespace edgevisor::jailer {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::vector<std::string> Valid(std::vector<std::string> more = {}) {
  std::vector<std::string> a = {"--id",  "vm-1", "--exec-file", "/usr/bin/edgevisor",
                                "--uid", "123",  "--gid",       "100"};
  a.insert(a.end(), more.begin(), more.end());
  return a;
}

TEST(JailerArgs, EveryFlag) {
  auto a = ParseJailerArgs({"--id",
                            "551e7604-e35c-42b3-b825-416853441234",
                            "--exec-file",
                            "/usr/bin/edgevisor",
                            "--uid",
                            "123",
                            "--gid",
                            "100",
                            "--chroot-base-dir",
                            "/var/jails/",
                            "--netns",
                            "/var/run/netns/my_netns",
                            "--daemonize",
                            "--new-pid-ns",
                            "--cgroup-version",
                            "2",
                            "--cgroup",
                            "memory.max=268435456",
                            "--cgroup",
                            "cpu.max=50000 100000",
                            "--parent-cgroup",
                            "all_uvms/external_uvms/",
                            "--resource-limit",
                            "fsize=250000000",
                            "--resource-limit",
                            "no-file=1024",
                            "--node",
                            "1",
                            "--",
                            "--api-sock",
                            "/api.sock",
                            "--",
                            "x"});
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->id, "551e7604-e35c-42b3-b825-416853441234");
  EXPECT_EQ(a->exec_file, "/usr/bin/edgevisor");
  EXPECT_EQ(a->uid, 123u);
  EXPECT_EQ(a->gid, 100u);
  EXPECT_EQ(a->chroot_base_dir, "/var/jails");
  EXPECT_EQ(a->netns, "/var/run/netns/my_netns");
  EXPECT_TRUE(a->daemonize);
  EXPECT_TRUE(a->new_pid_ns);
  EXPECT_EQ(a->cgroup_version, 2);
  EXPECT_THAT(a->cgroups, ElementsAre(CgroupSetting{"memory.max", "268435456"},
                                      CgroupSetting{"cpu.max", "50000 100000"}));
  EXPECT_EQ(a->cgroups[0].Controller(), "memory");
  EXPECT_EQ(a->parent_cgroup, "all_uvms/external_uvms");
  EXPECT_THAT(a->rlimits, ElementsAre(ResourceLimit{"fsize", RLIMIT_FSIZE, 250000000},
                                      ResourceLimit{"no-file", RLIMIT_NOFILE, 1024}));
  EXPECT_EQ(a->numa_node, 1);
  EXPECT_THAT(a->vmm_args, ElementsAre("--api-sock", "/api.sock", "--", "x"));
  EXPECT_EQ(a->JailDir(), "/var/jails/edgevisor/551e7604-e35c-42b3-b825-416853441234");
  EXPECT_EQ(a->CgroupPath(), "all_uvms/external_uvms/551e7604-e35c-42b3-b825-416853441234");
}

TEST(JailerArgs, FirecrackersDefaults) {
  auto a = ParseJailerArgs(Valid());
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->chroot_base_dir, "/srv/jailer");
  EXPECT_EQ(a->cgroup_version, 1);
  EXPECT_TRUE(a->netns.empty());
  EXPECT_FALSE(a->daemonize);
  EXPECT_FALSE(a->new_pid_ns);
  EXPECT_TRUE(a->cgroups.empty());
  EXPECT_TRUE(a->rlimits.empty());
  EXPECT_FALSE(a->numa_node.has_value());
  EXPECT_TRUE(a->vmm_args.empty());  // `--` is optional
  EXPECT_EQ(a->ExecFileName(), "edgevisor");
  EXPECT_EQ(a->JailDir(), "/srv/jailer/edgevisor/vm-1");
  EXPECT_EQ(a->RootDir(), "/srv/jailer/edgevisor/vm-1/root");
  EXPECT_EQ(a->CgroupPath(), "edgevisor/vm-1");  // the parent cgroup is the exec file's name
}

TEST(JailerArgs, ValuesAfterEqualsSign) {
  auto a = ParseJailerArgs({"--id=vm-2", "--exec-file=edgevisor", "--uid=0", "--gid=0",
                            "--cgroup=cpuset.cpus=0-3", "--chroot-base-dir=/"});
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->id, "vm-2");
  EXPECT_EQ(a->ExecFileName(), "edgevisor");
  EXPECT_THAT(a->cgroups, ElementsAre(CgroupSetting{"cpuset.cpus", "0-3"}));
  EXPECT_EQ(a->JailDir(), "/edgevisor/vm-2");
}

TEST(JailerArgs, IdOf64IsTheLongestAllowed) {
  EXPECT_TRUE(ParseJailerArgs(
                  {"--id", std::string(64, 'a'), "--exec-file", "e", "--uid", "1", "--gid", "1"})
                  .ok());
  EXPECT_TRUE(CheckId("ABC-xyz-019").ok());
}

TEST(JailerArgs, HelpAndVersionNeedNothingElse) {
  EXPECT_TRUE(ParseJailerArgs({"--help"})->help);
  EXPECT_TRUE(ParseJailerArgs({"-h"})->help);
  EXPECT_TRUE(ParseJailerArgs({"--version"})->version);
  EXPECT_THAT(Usage(), HasSubstr("--resource-limit"));
}

TEST(JailerArgs, VmmGetsTheIdAndTimesFirst) {
  auto a =
      ParseJailerArgs(Valid({"--", "--api-sock", "/api.sock", "--id", "vm-1", "--level", "Debug"}));
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_THAT(
      VmmArgv(*a, 11, 22, 33),
      ElementsAre("--id", "vm-1", "--start-time-us", "11", "--start-time-cpu-us", "22",
                  "--parent-cpu-time-us", "33", "--api-sock", "/api.sock", "--level", "Debug"));
  auto b = ParseJailerArgs(Valid({"--", "--id=vm-1"}));
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(VmmArgv(*b, 0, 0, 0).size(), 8u) << "the same --id is not passed twice";
}

struct BadInput {
  const char* name;
  std::vector<std::string> args;
  int exit_code;
  std::vector<std::string> needles;  // all must be in the message; the first names the flag
};

class JailerBadInput : public ::testing::TestWithParam<BadInput> {};

TEST_P(JailerBadInput, ExitCodeAndMessageNameTheFlag) {
  auto a = ParseJailerArgs(GetParam().args);
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(ExitCodeOf(a.status()), GetParam().exit_code) << a.status();
  for (const std::string& n : GetParam().needles) {
    EXPECT_THAT(std::string(a.status().message()), HasSubstr(n));
  }
}

std::vector<std::string> Without(const std::string& flag) {
  std::vector<std::string> a = Valid();
  for (size_t i = 0; i < a.size(); i += 2) {
    if (a[i] == flag)
      a.erase(a.begin() + static_cast<long>(i), a.begin() + static_cast<long>(i) + 2);
  }
  return a;
}

std::vector<std::string> With(const std::string& flag, const std::string& value) {
  std::vector<std::string> a = Without(flag);
  a.insert(a.end(), {flag, value});
  return a;
}

INSTANTIATE_TEST_SUITE_P(
    Parse, JailerBadInput,
    ::testing::Values(
        BadInput{"IdWithUnderscore", With("--id", "vm_1"), kExitBadId, {"--id", "'_'"}},
        BadInput{"IdWithSlash", With("--id", "../etc"), kExitBadId, {"--id", "'.'"}},
        BadInput{"IdWithSpace", With("--id", "a b"), kExitBadId, {"--id"}},
        BadInput{"IdOf65",
                 With("--id", std::string(65, 'a')),
                 kExitBadId,
                 {"--id", "65 characters, at most 64"}},
        BadInput{"IdEmpty", With("--id", ""), kExitBadId, {"--id: empty"}},
        BadInput{"NoId", Without("--id"), kExitUsage, {"--id", "missing"}},
        BadInput{"NoExecFile", Without("--exec-file"), kExitUsage, {"--exec-file", "missing"}},
        BadInput{"NoUid", Without("--uid"), kExitUsage, {"--uid", "missing"}},
        BadInput{"NoGid", Without("--gid"), kExitUsage, {"--gid", "missing"}},
        BadInput{"ExecFileIsAFolder",
                 With("--exec-file", "/usr/bin/"),
                 kExitUsage,
                 {"--exec-file", "does not name a file"}},
        BadInput{"ExecFileEmpty", With("--exec-file", ""), kExitUsage, {"--exec-file"}},
        BadInput{"UidNotANumber", With("--uid", "root"), kExitUsage, {"--uid", "'root'"}},
        BadInput{"UidNegative", With("--uid", "-1"), kExitUsage, {"--uid", "'-1'"}},
        BadInput{"UidTooLarge", With("--uid", "4294967295"), kExitUsage, {"--uid"}},
        BadInput{"UidEmpty", With("--uid", ""), kExitUsage, {"--uid"}},
        BadInput{"GidNotANumber", With("--gid", "1x"), kExitUsage, {"--gid", "'1x'"}},
        BadInput{"ChrootBaseRelative",
                 With("--chroot-base-dir", "srv/jailer"),
                 kExitUsage,
                 {"--chroot-base-dir", "not absolute"}},
        BadInput{"ChrootBaseDotDot",
                 With("--chroot-base-dir", "/srv/../etc"),
                 kExitUsage,
                 {"--chroot-base-dir", "'..'"}},
        BadInput{"NetnsEmpty", With("--netns", ""), kExitUsage, {"--netns", "empty"}},
        BadInput{"CgroupVersion3",
                 With("--cgroup-version", "3"),
                 kExitUsage,
                 {"--cgroup-version", "'3'"}},
        BadInput{"CgroupWithoutEquals",
                 With("--cgroup", "memory.limit_in_bytes"),
                 kExitUsage,
                 {"--cgroup", "FILE=VALUE"}},
        BadInput{"CgroupWithoutController",
                 With("--cgroup", "memory=1"),
                 kExitUsage,
                 {"--cgroup", "'memory'"}},
        BadInput{"CgroupClimbingOut",
                 With("--cgroup", "../memory.max=1"),
                 kExitUsage,
                 {"--cgroup", "'../memory.max'"}},
        BadInput{"CgroupInAFolder", With("--cgroup", "x/memory.max=1"), kExitUsage, {"--cgroup"}},
        BadInput{"CgroupEmptyValue",
                 With("--cgroup", "memory.max="),
                 kExitUsage,
                 {"--cgroup", "memory.max"}},
        BadInput{"ParentCgroupAbsolute",
                 With("--parent-cgroup", "/x"),
                 kExitUsage,
                 {"--parent-cgroup", "not relative"}},
        BadInput{"ParentCgroupDotDot",
                 With("--parent-cgroup", "a/../../b"),
                 kExitUsage,
                 {"--parent-cgroup", "'..'"}},
        BadInput{"ResourceLimitUnknown",
                 With("--resource-limit", "cpu=1"),
                 kExitUsage,
                 {"--resource-limit", "'cpu'", "fsize or no-file"}},
        BadInput{"ResourceLimitNotANumber",
                 With("--resource-limit", "no-file=many"),
                 kExitUsage,
                 {"--resource-limit", "'many'"}},
        BadInput{"ResourceLimitWithoutEquals",
                 With("--resource-limit", "fsize"),
                 kExitUsage,
                 {"--resource-limit", "NAME=VALUE"}},
        BadInput{"NodeNotANumber", With("--node", "zero"), kExitUsage, {"--node", "'zero'"}},
        BadInput{"NodeNegative", With("--node", "-1"), kExitUsage, {"--node"}},
        BadInput{"UnknownFlag",
                 Valid({"--seccomp-level", "2"}),
                 kExitUsage,
                 {"--seccomp-level", "unknown flag"}},
        BadInput{"VmmFlagBeforeDoubleDash",
                 Valid({"--api-sock", "/a.sock"}),
                 kExitUsage,
                 {"--api-sock", "after --"}},
        BadInput{"StrayArgument", Valid({"stray"}), kExitUsage, {"stray", "unexpected"}},
        BadInput{"MissingValueAtEnd", Valid({"--netns"}), kExitUsage, {"--netns: missing value"}},
        BadInput{"MissingValueBeforeFlag",
                 Valid({"--netns", "--daemonize"}),
                 kExitUsage,
                 {"--netns: missing value"}},
        BadInput{"IdTwice", Valid({"--id", "vm-2"}), kExitUsage, {"--id", "more than once"}},
        BadInput{"BooleanWithValue",
                 Valid({"--daemonize=yes"}),
                 kExitUsage,
                 {"--daemonize", "takes no value"}},
        BadInput{
            "OtherIdForTheVmm", Valid({"--", "--id", "vm-2"}), kExitUsage, {"--id", "'vm-2'"}}),
    [](const ::testing::TestParamInfo<BadInput>& i) { return i.param.name; });

}  // namespace
}  // namespace edgevisor::jailer
