// The aarch64 device tree: built with libfdt, decompiled with dtc (device-tree-compiler), and
// checked node by node against the bindings Linux reads.
#include "src/vmm/arch/aarch64/fdt.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>

#include "absl/strings/str_format.h"
#include "tests/unit/tool_text.h"

namespace edgevisor::aarch64 {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// The tree as dtc prints it, with runs of whitespace folded to one space.
std::string Decompile(const std::vector<uint8_t>& dtb) {
  testing::ScratchDir dir;
  dir.Write("t.dtb", dtb);
  const std::string cmd = absl::StrFormat("dtc -I dtb -O dts -o %s %s 2>%s", dir.File("t.dts"),
                                          dir.File("t.dtb"), dir.File("err"));
  EXPECT_EQ(std::system(cmd.c_str()), 0)
      << "dtc failed (device-tree-compiler installed?) " << dir.Read("err");
  return testing::FoldWhitespace(dir.Read("t.dts"));
}

FdtConfig Config(int gic) {
  FdtConfig c;
  c.ram_base = 0x80000000;
  c.ram_size = 256 << 20;
  c.vcpus = 2;
  c.gic_version = gic;
  c.cmdline = "console=ttyS0 panic=1";
  c.initrd_addr = 0x8f000000;
  c.initrd_size = 0x100000;
  c.virtio = {{0x0a000000, 0x1000, 16}, {0x0a001000, 0x1000, 17}};
  return c;
}

TEST(FdtTest, GicV3TreeHasEveryNodeLinuxNeeds) {
  auto dtb = BuildFdt(Config(3));
  ASSERT_TRUE(dtb.ok()) << dtb.status();
  const std::string t = Decompile(*dtb);
  EXPECT_THAT(t, HasSubstr("#address-cells = <0x02>; #size-cells = <0x02>;"));
  EXPECT_THAT(t, HasSubstr("chosen { bootargs = \"console=ttyS0 panic=1\"; "
                           "stdout-path = \"/uart@9000000\"; "
                           "linux,initrd-start = <0x00 0x8f000000>; "
                           "linux,initrd-end = <0x00 0x8f100000>; };"));
  EXPECT_THAT(t, HasSubstr("memory@80000000 { device_type = \"memory\"; "
                           "reg = <0x00 0x80000000 0x00 0x10000000>; };"));
  EXPECT_THAT(t, HasSubstr("cpu@0 { device_type = \"cpu\"; compatible = \"arm,arm-v8\"; "
                           "enable-method = \"psci\"; reg = <0x00>; };"));
  EXPECT_THAT(t, HasSubstr("cpu@1 {"));
  EXPECT_THAT(t, Not(HasSubstr("cpu@2 {")));
  EXPECT_THAT(t,
              HasSubstr("psci { compatible = \"arm,psci-0.2\\0arm,psci\"; method = \"hvc\"; };"));
  EXPECT_THAT(t, HasSubstr("timer { compatible = \"arm,armv8-timer\"; interrupts = <0x01 0x0d 0x08 "
                           "0x01 0x0e 0x08 0x01 0x0b 0x08 0x01 0x0a 0x08>; always-on; };"));
  EXPECT_THAT(t, HasSubstr("intc@8000000 { compatible = \"arm,gic-v3\"; "
                           "reg = <0x00 0x8000000 0x00 0x10000 0x00 0x80a0000 0x00 0x40000>;"));
  EXPECT_THAT(t, HasSubstr("interrupt-controller;"));
  EXPECT_THAT(t, HasSubstr("uart@9000000 { compatible = \"ns16550a\"; "
                           "reg = <0x00 0x9000000 0x00 0x1000>; interrupts = <0x00 0x01 0x04>; "
                           "clock-frequency = <0x1c2000>; };"));
  EXPECT_THAT(t, HasSubstr("rtc@9010000 { compatible = \"arm,pl031\\0arm,primecell\";"));
  EXPECT_THAT(t, HasSubstr("clock-names = \"apb_pclk\";"));
  for (int i = 0; i < 2; ++i) {
    EXPECT_THAT(t, HasSubstr(absl::StrFormat(
                       "virtio_mmio@a00%d000 { compatible = \"virtio,mmio\"; "
                       "reg = <0x00 0xa00%d000 0x00 0x1000>; interrupts = <0x00 0x%x 0x01>; "
                       "dma-coherent; };",
                       i, i, 16 + i)));
  }
  // The GIC's phandle is what the root's interrupt-parent names.
  EXPECT_THAT(t, HasSubstr("interrupt-parent = <0x01>;"));
  EXPECT_THAT(t, HasSubstr("phandle = <0x01>;"));
}

TEST(FdtTest, GicV2TreeUsesTheCpuInterface) {
  auto dtb = BuildFdt(Config(2));
  ASSERT_TRUE(dtb.ok()) << dtb.status();
  const std::string t = Decompile(*dtb);
  EXPECT_THAT(t, HasSubstr("intc@8000000 { compatible = \"arm,cortex-a15-gic\"; "
                           "reg = <0x00 0x8000000 0x00 0x1000 0x00 0x8010000 0x00 0x2000>;"));
  EXPECT_THAT(t, Not(HasSubstr("arm,gic-v3")));
  // The timer's PPIs name the CPUs they reach (bits 15:8 of the flags): CPUs 0 and 1.
  EXPECT_THAT(t,
              HasSubstr("timer { compatible = \"arm,armv8-timer\"; interrupts = <0x01 0x0d 0x308 "
                        "0x01 0x0e 0x308 0x01 0x0b 0x308 0x01 0x0a 0x308>; always-on; };"));
  FdtConfig eight = Config(2);
  eight.vcpus = 8;
  EXPECT_THAT(Decompile(*BuildFdt(eight)), HasSubstr("interrupts = <0x01 0x0d 0xff08 "));
}

TEST(FdtTest, ThePmuNodeHasItsPpiOnBothGics) {
  FdtConfig v3 = Config(3);
  EXPECT_THAT(Decompile(*BuildFdt(v3)), Not(HasSubstr("pmu {"))) << "no PMU unless asked";
  v3.pmu = true;
  EXPECT_THAT(
      Decompile(*BuildFdt(v3)),
      HasSubstr("pmu { compatible = \"arm,armv8-pmuv3\"; interrupts = <0x01 0x07 0x04>; };"));
  FdtConfig v2 = Config(2);
  v2.pmu = true;
  // On a GICv2 the PPI names the CPUs it reaches too (bits 15:8): CPUs 0 and 1.
  EXPECT_THAT(
      Decompile(*BuildFdt(v2)),
      HasSubstr("pmu { compatible = \"arm,armv8-pmuv3\"; interrupts = <0x01 0x07 0x304>; };"));
}

TEST(FdtTest, GicV3ItsIsAnMsiControllerUnderTheGic) {
  FdtConfig c = Config(3);
  EXPECT_THAT(Decompile(*BuildFdt(c)), Not(HasSubstr("msi-controller")));
  c.gic_its = true;
  const std::string t = Decompile(*BuildFdt(c));
  // Linux's GICv3 driver finds the ITS among the GIC's children; `ranges` maps its reg.
  EXPECT_THAT(t, HasSubstr("ranges; msi-controller@8080000 { compatible = \"arm,gic-v3-its\"; "
                           "msi-controller; #msi-cells = <0x01>; "
                           "reg = <0x00 0x8080000 0x00 0x20000>; phandle = <0x03>; }; };"));
  // A GICv2 has no ITS, whatever the caller asks.
  c.gic_version = 2;
  EXPECT_THAT(Decompile(*BuildFdt(c)), Not(HasSubstr("msi-controller")));
}

TEST(FdtTest, NoInitrdNoInitrdProperties) {
  FdtConfig c = Config(3);
  c.initrd_size = 0;
  const std::string t = Decompile(*BuildFdt(c));
  EXPECT_THAT(t, Not(HasSubstr("linux,initrd")));
}

TEST(FdtTest, LimitsAndMpidrs) {
  FdtConfig c = Config(2);
  c.vcpus = 9;
  EXPECT_THAT(std::string(BuildFdt(c).status().message()), HasSubstr("at most 8 CPUs"));
  c.gic_version = 4;
  EXPECT_FALSE(BuildFdt(c).ok());
  EXPECT_EQ(DefaultMpidr(0), 0u);
  EXPECT_EQ(DefaultMpidr(15), 0xfu);
  EXPECT_EQ(DefaultMpidr(16), 0x100u) << "Aff1 counts groups of 16";
  EXPECT_EQ(DefaultMpidr(33), 0x201u);
}

}  // namespace
}  // namespace edgevisor::aarch64
