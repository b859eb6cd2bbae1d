// The Linux 64-bit boot protocol: what LoadKernel writes for a bzImage and for a vmlinux.
#include "src/vmm/arch/x86_64/linux_boot.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>

#include "src/vmm/arch/arch.h"
#include "src/vmm/arch/x86_64/cpuid.h"
#include "src/vmm/arch/x86_64/layout.h"
#include "tests/unit/bzimage_builder.h"
#include "tests/unit/elf_builder.h"
#include "tests/unit/test_ram.h"

namespace edgevisor {
namespace {

using ::testing::HasSubstr;

GuestMemory Mem(uint64_t mib) { return testing::TestRam(mib); }

template <typename T>
T ZeroPage(const GuestMemory& mem, uint64_t off) {
  return *mem.ReadObj<T>(x86::kZeroPageAddr + off);
}

TEST(LinuxBootTest, BzImageLoadsAtPrefAddressWithAZeroPage) {
  GuestMemory mem = Mem(64);
  const auto image = testing::BuildBzImage({});
  const std::vector<uint8_t> initrd(10000, 0x7e);
  auto boot = arch::LoadKernel(image, "console=ttyS0 root=/dev/vda", initrd, mem);
  ASSERT_TRUE(boot.ok()) << boot.status();
  EXPECT_EQ(boot->protocol, arch::BootEntry::Protocol::kLinux64);
  EXPECT_EQ(boot->entry, 0x1000200u) << "startup_64 is 0x200 into the protected-mode kernel";
  EXPECT_EQ(boot->boot_info, x86::kZeroPageAddr);
  EXPECT_EQ((*mem.Translate(0x1000000, 1))[0], 1) << "kernel bytes at pref_address";

  EXPECT_EQ(ZeroPage<uint16_t>(mem, x86::kBpBootFlag), 0xaa55);
  EXPECT_EQ(ZeroPage<uint32_t>(mem, x86::kBpHeader), kHdrSMagic) << "setup header copied";
  EXPECT_EQ(ZeroPage<uint8_t>(mem, x86::kBpTypeOfLoader), 0xff);
  EXPECT_EQ(ZeroPage<uint32_t>(mem, x86::kBpCmdLinePtr), x86::kCmdlineAddr);
  char cmdline[64] = {};
  ASSERT_TRUE(
      mem.Read(x86::kCmdlineAddr, absl::MakeSpan(reinterpret_cast<uint8_t*>(cmdline), 63)).ok());
  EXPECT_STREQ(cmdline, "console=ttyS0 root=/dev/vda");

  // e820: low RAM to the EBDA, the legacy hole reserved, RAM from 1 MiB to the end.
  ASSERT_EQ(ZeroPage<uint8_t>(mem, x86::kBpE820Entries), 3);
  EXPECT_EQ(ZeroPage<uint64_t>(mem, x86::kBpE820Table + 0), 0u);
  EXPECT_EQ(ZeroPage<uint64_t>(mem, x86::kBpE820Table + 8), x86::kEbdaStart);
  EXPECT_EQ(ZeroPage<uint32_t>(mem, x86::kBpE820Table + 16), 1u);
  EXPECT_EQ(ZeroPage<uint32_t>(mem, x86::kBpE820Table + 20 + 16), 2u) << "reserved";
  EXPECT_EQ(ZeroPage<uint64_t>(mem, x86::kBpE820Table + 40), x86::kHighMemStart);
  EXPECT_EQ(ZeroPage<uint64_t>(mem, x86::kBpE820Table + 48), (64u << 20) - x86::kHighMemStart);

  // The initrd: page-aligned at the top of RAM, described in the zero page.
  const uint32_t at = ZeroPage<uint32_t>(mem, x86::kBpRamdiskImage);
  EXPECT_EQ(ZeroPage<uint32_t>(mem, x86::kBpRamdiskSize), 10000u);
  EXPECT_EQ(at % 4096, 0u);
  EXPECT_EQ(at, (64u << 20) - 12288);
  EXPECT_EQ((*mem.Translate(at + 9999, 1))[0], 0x7e);

  // Identity map: the PD entry for 16 MiB is a 2 MiB page at 16 MiB.
  EXPECT_EQ(*mem.ReadObj<uint64_t>(x86::kPml4Addr + 0x2000 + 8 * 8), 0x1000083u);
}

TEST(LinuxBootTest, InitrdRespectsInitrdAddrMax) {
  GuestMemory mem = Mem(256);
  testing::BzParams p;
  p.initrd_addr_max = 0x3fffffff;  // above RAM: RAM's end rules
  auto boot = arch::LoadKernel(testing::BuildBzImage(p), "", std::vector<uint8_t>(4096, 1), mem);
  ASSERT_TRUE(boot.ok()) << boot.status();
  EXPECT_EQ(ZeroPage<uint32_t>(mem, x86::kBpRamdiskImage), (256u << 20) - 4096);
  GuestMemory mem2 = Mem(256);
  p.initrd_addr_max = 0x07ffffff;  // 128 MiB - 1
  boot = arch::LoadKernel(testing::BuildBzImage(p), "", std::vector<uint8_t>(4096, 1), mem2);
  ASSERT_TRUE(boot.ok()) << boot.status();
  EXPECT_EQ(ZeroPage<uint32_t>(mem2, x86::kBpRamdiskImage), (128u << 20) - 4096);
}

TEST(LinuxBootTest, ErrorsNameTheInput) {
  GuestMemory mem = Mem(32);
  testing::BzParams p;
  p.cmdline_size = 10;
  EXPECT_THAT(std::string(arch::LoadKernel(testing::BuildBzImage(p), std::string(11, 'x'), {}, mem)
                              .status()
                              .message()),
              HasSubstr("--cmdline"));
  p = {};
  p.init_size = 64 << 20;  // more than the VM's RAM above 16 MiB
  EXPECT_THAT(
      std::string(arch::LoadKernel(testing::BuildBzImage(p), "", {}, mem).status().message()),
      HasSubstr("--mem"));
  EXPECT_THAT(std::string(arch::LoadKernel(testing::BuildBzImage({}), "",
                                           std::vector<uint8_t>(20 << 20, 1), mem)
                              .status()
                              .message()),
              HasSubstr("--initrd"));
}

TEST(LinuxBootTest, VmlinuxWithoutPvhNoteGetsASynthesizedHeader) {
  GuestMemory mem = Mem(64);
  auto elf = testing::BuildElf({{0x1000000, std::vector<uint8_t>(64, 0x90), 0x10000}}, {},
                               EM_X86_64, 0x1000000);
  auto boot = arch::LoadKernel(elf, "quiet", {}, mem);
  ASSERT_TRUE(boot.ok()) << boot.status();
  EXPECT_EQ(boot->protocol, arch::BootEntry::Protocol::kLinux64);
  EXPECT_EQ(boot->entry, 0x1000000u);
  EXPECT_EQ(ZeroPage<uint16_t>(mem, x86::kBpBootFlag), 0xaa55);
  EXPECT_EQ(ZeroPage<uint32_t>(mem, x86::kBpHeader), kHdrSMagic);
  EXPECT_EQ(ZeroPage<uint8_t>(mem, x86::kBpLoadflags) & kLoadedHigh, kLoadedHigh);
  EXPECT_EQ(ZeroPage<uint32_t>(mem, x86::kBpCmdLinePtr), x86::kCmdlineAddr);
}

// --boot-protocol: a vmlinux that carries the PVH note (Debian's does) can still be entered
// through the 64-bit protocol; impossible choices are refused.
TEST(LinuxBootTest, ForcedProtocols) {
  GuestMemory mem = Mem(64);
  auto pvh_elf = testing::BuildElf({{0x1000000, std::vector<uint8_t>(64, 0x90), 0x10000}},
                                   {testing::PvhNote(0x1000010)}, EM_X86_64, 0x1000000);
  auto boot = arch::LoadKernel(pvh_elf, "", {}, mem);
  ASSERT_TRUE(boot.ok()) << boot.status();
  EXPECT_EQ(boot->protocol, arch::BootEntry::Protocol::kPvh) << "auto picks PVH for the note";
  boot = arch::LoadKernel(pvh_elf, "", {}, mem, BootProtocol::kLinux);
  ASSERT_TRUE(boot.ok()) << boot.status();
  EXPECT_EQ(boot->protocol, arch::BootEntry::Protocol::kLinux64);
  EXPECT_EQ(boot->entry, 0x1000000u) << "e_entry, not the PVH entry";
  EXPECT_EQ(ZeroPage<uint32_t>(mem, x86::kBpHeader), kHdrSMagic);

  auto plain_elf = testing::BuildElf({{0x1000000, std::vector<uint8_t>(64, 0x90), 0x10000}}, {},
                                     EM_X86_64, 0x1000000);
  EXPECT_THAT(
      std::string(arch::LoadKernel(plain_elf, "", {}, mem, BootProtocol::kPvh).status().message()),
      HasSubstr("no PVH entry note"));
  EXPECT_THAT(
      std::string(arch::LoadKernel(testing::BuildBzImage({}), "", {}, mem, BootProtocol::kPvh)
                      .status()
                      .message()),
      HasSubstr("a bzImage has no PVH entry"));
  EXPECT_TRUE(arch::LoadKernel(testing::BuildBzImage({}), "", {}, mem, BootProtocol::kLinux).ok());
}

TEST(LinuxBootTest, VmlinuxErrors) {
  GuestMemory mem = Mem(64);
  auto low = testing::BuildElf({{0x80000, std::vector<uint8_t>(64), 64}}, {}, EM_X86_64, 0x80000);
  EXPECT_THAT(std::string(arch::LoadKernel(low, "", {}, mem).status().message()),
              HasSubstr("below 1 MiB"));
  auto lost =
      testing::BuildElf({{0x1000000, std::vector<uint8_t>(64), 64}}, {}, EM_X86_64, 0x2000000);
  EXPECT_THAT(std::string(arch::LoadKernel(lost, "", {}, mem).status().message()),
              HasSubstr("entry point"));
}

TEST(CpuidTest, NoFiveLevelPaging) {
  std::vector<kvm_cpuid_entry2> entries(1);
  entries[0].function = 7;
  entries[0].index = 0;
  entries[0].ecx = 0xffffffff;
  x86::FixupCpuid(entries, 0, 1);
  EXPECT_EQ(entries[0].ecx & (1u << 16), 0u);
  EXPECT_EQ(entries[0].ecx | (1u << 16), 0xffffffffu) << "only LA57 is cleared";
}

}  // namespace
}  // namespace edgevisor
