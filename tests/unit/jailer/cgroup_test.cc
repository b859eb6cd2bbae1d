// The jailer's cgroup plan (src/jailer/cgroup.cc, mountinfo.cc): where each --cgroup file goes
// on a v1, hybrid or v2 host, and the refusals that name the file and the host's layout.
#include "src/jailer/cgroup.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "src/jailer/exit_codes.h"

namespace edgevisor::jailer {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;

// A hybrid host, as this project's CI machine: v1 controllers and an (empty) cgroup2.
constexpr char kHybrid[] =
    "23 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n"
    "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
    "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:9 - cgroup cgroup rw,cpu,cpuacct\n"
    "34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset\n"
    "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
    "40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd\n"
    "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n"
    "50 23 0:40 / /mnt/with\\040space rw - tmpfs none rw\n"
    "garbage line\n";

HostCgroups Hybrid() {
  HostCgroups h;
  h.mounts = FindCgroupMounts(ParseMountInfo(kHybrid));
  return h;  // v2_controllers: none
}

HostCgroups PureV2() {
  HostCgroups h;
  h.mounts.v2 = "/sys/fs/cgroup";
  h.v2_controllers = {"cpuset", "cpu", "io", "memory", "pids"};
  return h;
}

JailerArgs Args(int version, std::vector<CgroupSetting> settings, std::string parent = "") {
  JailerArgs a;
  a.id = "vm-1";
  a.exec_file = "/usr/bin/edgevisor";
  a.cgroup_version = version;
  a.cgroups = std::move(settings);
  a.parent_cgroup = std::move(parent);
  return a;
}

TEST(MountInfo, FindsEachHierarchy) {
  const std::vector<Mount> mounts = ParseMountInfo(kHybrid);
  ASSERT_EQ(mounts.size(), 8u);  // the garbage line is skipped
  EXPECT_EQ(mounts[7].mount_point, "/mnt/with space");
  const CgroupMounts c = FindCgroupMounts(mounts);
  EXPECT_THAT(c.v1, ElementsAre(Pair("cpu", "/sys/fs/cgroup/cpu,cpuacct"),
                                Pair("cpuacct", "/sys/fs/cgroup/cpu,cpuacct"),
                                Pair("cpuset", "/sys/fs/cgroup/cpuset"),
                                Pair("memory", "/sys/fs/cgroup/memory")));
  EXPECT_EQ(c.v2, "/sys/fs/cgroup/unified");
}

TEST(PlanCgroups, NoSettingsNoCgroup) {
  auto plan = PlanCgroups(Args(1, {}), {}, Hybrid());
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_TRUE(plan->empty());
}

TEST(PlanCgroups, V1OneFolderPerHierarchy) {
  const JailerArgs a = Args(
      1, {{"memory.limit_in_bytes", "1024"}, {"cpu.cfs_quota_us", "5"}, {"cpuacct.usage", "0"}});
  auto plan = PlanCgroups(a, a.cgroups, Hybrid());
  ASSERT_TRUE(plan.ok()) << plan.status();
  ASSERT_EQ(plan->size(), 2u);
  EXPECT_EQ((*plan)[0].Path(), "/sys/fs/cgroup/memory/edgevisor/vm-1");
  EXPECT_EQ((*plan)[1].Path(), "/sys/fs/cgroup/cpu,cpuacct/edgevisor/vm-1");
  EXPECT_EQ((*plan)[1].settings.size(), 2u) << "cpu and cpuacct share one mount";
}

TEST(PlanCgroups, ParentCgroup) {
  const JailerArgs a = Args(1, {{"cpuset.cpus", "0"}}, "all_uvms/external_uvms");
  auto plan = PlanCgroups(a, a.cgroups, Hybrid());
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ((*plan)[0].Path(), "/sys/fs/cgroup/cpuset/all_uvms/external_uvms/vm-1");
}

TEST(PlanCgroups, V2OneFolderWithItsControllers) {
  const JailerArgs a = Args(2, {{"memory.max", "1G"},
                                {"cpu.max", "5 10"},
                                {"memory.high", "1"},
                                {"cgroup.max.descendants", "0"}});
  auto plan = PlanCgroups(a, a.cgroups, PureV2());
  ASSERT_TRUE(plan.ok()) << plan.status();
  ASSERT_EQ(plan->size(), 1u);
  EXPECT_EQ((*plan)[0].Path(), "/sys/fs/cgroup/edgevisor/vm-1");
  EXPECT_THAT((*plan)[0].controllers, ElementsAre("memory", "cpu"));
  EXPECT_EQ((*plan)[0].settings.size(), 4u);
}

void ExpectRefused(const JailerArgs& a, const HostCgroups& host,
                   const std::vector<std::string>& needles) {
  auto plan = PlanCgroups(a, a.cgroups, host);
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(ExitCodeOf(plan.status()), kExitCgroup);
  for (const std::string& n : needles) {
    EXPECT_THAT(std::string(plan.status().message()), HasSubstr(n));
  }
}

TEST(PlanCgroups, V2RefusedWhereTheHostHasTheControllerOnV1) {
  ExpectRefused(Args(2, {{"memory.max", "1G"}}), Hybrid(),
                {"--cgroup memory.max=1G", "cgroup v2 hierarchy at /sys/fs/cgroup/unified",
                 "no 'memory' controller", "it has: none", "on cgroup v1 (/sys/fs/cgroup/memory)",
                 "--cgroup-version 1"});
}

TEST(PlanCgroups, V1RefusedOnAPureV2Host) {
  ExpectRefused(Args(1, {{"memory.limit_in_bytes", "1"}}), PureV2(),
                {"--cgroup memory.limit_in_bytes=1", "no cgroup v1 hierarchy", "cgroup v1: none",
                 "--cgroup-version 2"});
}

TEST(PlanCgroups, V2RefusedWithoutAnyV2) {
  HostCgroups v1_only = Hybrid();
  v1_only.mounts.v2.clear();
  ExpectRefused(Args(2, {{"memory.max", "1"}}), v1_only,
                {"--cgroup memory.max=1", "no cgroup v2 hierarchy", "--cgroup-version 1"});
}

TEST(PlanCgroups, UnknownControllerNamesTheFile) {
  ExpectRefused(Args(1, {{"hugetlb.limit", "1"}}), Hybrid(),
                {"--cgroup hugetlb.limit=1", "'hugetlb'", "cgroup v1: cpu cpuacct cpuset memory"});
  ExpectRefused(Args(1, {{"cgroup.procs", "1"}}), Hybrid(), {"--cgroup cgroup.procs=1"});
}

TEST(WithNumaNode, AddsTheNodesCpusetUnlessGiven) {
  JailerArgs a = Args(1, {{"memory.max", "1"}});
  a.numa_node = 1;
  EXPECT_THAT(WithNumaNode(a, "2-3,6\n"),
              ElementsAre(CgroupSetting{"cpuset.mems", "1"}, CgroupSetting{"cpuset.cpus", "2-3,6"},
                          CgroupSetting{"memory.max", "1"}));
  a.cgroups.push_back({"cpuset.cpus", "2"});
  EXPECT_THAT(WithNumaNode(a, "2-3"),
              ElementsAre(CgroupSetting{"cpuset.mems", "1"}, CgroupSetting{"memory.max", "1"},
                          CgroupSetting{"cpuset.cpus", "2"}));
  a.numa_node.reset();
  EXPECT_EQ(WithNumaNode(a, "").size(), 2u);
}

}  // namespace
}  // namespace edgevisor::jailer
