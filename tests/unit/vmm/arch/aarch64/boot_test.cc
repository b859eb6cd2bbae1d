// The arm64 Image boot protocol: where the kernel, the initrd and the device tree go.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "src/vmm/arch/aarch64/layout.h"
#include "src/vmm/arch/arch.h"
#include "tests/unit/arm64_image_builder.h"
#include "tests/unit/test_ram.h"

namespace edgevisor {
namespace {

using ::testing::HasSubstr;

TEST(Arm64BootTest, KernelAtTextOffsetFdtAtTheTopInitrdBelowIt) {
  GuestMemory mem = testing::TestRam(64);
  const auto image = testing::BuildArm64Image({.text_offset = 0x80000, .image_size = 0x200000});
  const std::vector<uint8_t> initrd(10000, 0x7e);
  auto boot = arch::LoadKernel(image, "console=ttyS0", initrd, mem);
  ASSERT_TRUE(boot.ok()) << boot.status();
  EXPECT_EQ(boot->protocol, arch::BootEntry::Protocol::kArm64Image);
  EXPECT_EQ(boot->entry, aarch64::kRamBase + 0x80000);
  EXPECT_EQ((*mem.Translate(boot->entry, 1))[0], 0x4d) << "the Image's first byte";
  EXPECT_EQ(boot->boot_info, aarch64::kRamBase + (62 << 20)) << "the last 2 MiB of 64 MiB";
  EXPECT_EQ(boot->boot_info % (2 << 20), 0u);
  EXPECT_EQ(boot->initrd_size, initrd.size());
  EXPECT_EQ(boot->initrd_addr % 4096, 0u);
  EXPECT_LE(boot->initrd_addr + boot->initrd_size, boot->boot_info);
  EXPECT_EQ((*mem.Translate(boot->initrd_addr, 1))[0], 0x7e);
  EXPECT_EQ(boot->cmdline, "console=ttyS0");
}

TEST(Arm64BootTest, TooLittleMemoryNamesMem) {
  GuestMemory mem = testing::TestRam(4);
  const auto image = testing::BuildArm64Image({.image_size = 3 << 20});
  EXPECT_THAT(std::string(arch::LoadKernel(image, "", {}, mem).status().message()),
              HasSubstr("--mem"));
  GuestMemory mem2 = testing::TestRam(8);
  EXPECT_THAT(std::string(arch::LoadKernel(testing::BuildArm64Image({}), "",
                                           std::vector<uint8_t>(7 << 20, 1), mem2)
                              .status()
                              .message()),
              HasSubstr("--initrd"));
}

TEST(Arm64BootTest, OnlyOneBootProtocol) {
  GuestMemory mem = testing::TestRam(64);
  EXPECT_THAT(
      std::string(arch::LoadKernel(testing::BuildArm64Image({}), "", {}, mem, BootProtocol::kPvh)
                      .status()
                      .message()),
      HasSubstr("--boot-protocol"));
}

TEST(Arm64BootTest, RamStartsAtTwoGiBAndSpisAreEncoded) {
  const auto layout = arch::RamLayout(128 << 20);
  ASSERT_EQ(layout.size(), 1u);
  EXPECT_EQ(layout[0].start, 0x80000000u);
  EXPECT_EQ(arch::VirtioMmioSlot(1).base, 0x0a001000u);
  EXPECT_EQ(arch::VirtioMmioSlot(1).gsi, 17u) << "irqfd GSI = SPI number";
  EXPECT_EQ(arch::IrqLine(1), (1u << 24) | 33u) << "KVM_IRQ_LINE: SPI type, INTID 32 + 1";
}

}  // namespace
}  // namespace edgevisor
