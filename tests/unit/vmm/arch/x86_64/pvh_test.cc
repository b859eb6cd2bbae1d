#include "src/vmm/arch/x86_64/pvh.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "src/vmm/arch/arch.h"
#include "src/vmm/arch/x86_64/layout.h"
#include "tests/unit/elf_builder.h"
#include "tests/unit/test_ram.h"

namespace edgevisor {
namespace {

using ::testing::HasSubstr;

GuestMemory Mem(uint64_t mib) { return testing::TestRam(mib); }

TEST(PvhTest, StartInfoHasCmdlineAndMemmap) {
  GuestMemory mem = Mem(64);
  ASSERT_TRUE(x86::WritePvhStartInfo(mem, "console=ttyS0 hello").ok());
  auto si = mem.ReadObj<x86::HvmStartInfo>(x86::kStartInfoAddr);
  ASSERT_TRUE(si.ok());
  EXPECT_EQ(si->magic, x86::kHvmStartMagic);
  EXPECT_EQ(si->version, 1u);
  ASSERT_EQ(si->memmap_entries, 2u);
  auto cl = mem.Translate(si->cmdline_paddr, 20);
  EXPECT_STREQ(reinterpret_cast<const char*>(cl->data()), "console=ttyS0 hello");
  auto e0 = mem.ReadObj<x86::HvmMemmapEntry>(si->memmap_paddr);
  auto e1 = mem.ReadObj<x86::HvmMemmapEntry>(si->memmap_paddr + sizeof(x86::HvmMemmapEntry));
  EXPECT_EQ(e0->addr, 0u);
  EXPECT_EQ(e0->size, x86::kEbdaStart);
  EXPECT_EQ(e1->addr, x86::kHighMemStart);
  EXPECT_EQ(e1->addr + e1->size, 64u << 20);
  EXPECT_EQ(e1->type, x86::kE820Ram);
}

TEST(PvhTest, LargeGuestSkipsMmioHole) {
  auto layout = arch::RamLayout(4096ull << 20);
  ASSERT_EQ(layout.size(), 2u);
  EXPECT_EQ(layout[0].end(), x86::kMmioHoleStart);
  EXPECT_EQ(layout[1].start, x86::kMmioHoleEnd);
  EXPECT_EQ(layout[0].size + layout[1].size, 4096ull << 20);
}

TEST(PvhTest, RejectsOverlongCmdline) {
  GuestMemory mem = Mem(8);
  auto s = x86::WritePvhStartInfo(mem, std::string(x86::kCmdlineMax, 'a'));
  EXPECT_THAT(std::string(s.message()), HasSubstr("command line"));
}

TEST(PvhTest, LoadKernelUsesPvhEntry) {
  GuestMemory mem = Mem(8);
  auto elf = testing::BuildElf({{0x100000, std::vector<uint8_t>(32, 0xf4), 64}},
                               {testing::PvhNote(0x100004)});
  auto boot = arch::LoadKernel(elf, "x", {}, mem);
  ASSERT_TRUE(boot.ok()) << boot.status();
  EXPECT_EQ(boot->entry, 0x100004u);
  EXPECT_EQ(boot->boot_info, x86::kStartInfoAddr);
  EXPECT_EQ((*mem.Translate(0x100000, 1))[0], 0xf4);
}

TEST(PvhTest, ElfWithoutPvhNoteTakesTheLinux64BitProtocol) {
  GuestMemory mem = Mem(8);
  auto elf = testing::BuildElf({{0x100000, std::vector<uint8_t>(32), 64}}, {});
  auto boot = arch::LoadKernel(elf, "", {}, mem);
  ASSERT_TRUE(boot.ok()) << boot.status();
  EXPECT_EQ(boot->protocol, arch::BootEntry::Protocol::kLinux64);
  EXPECT_EQ(boot->entry, 0x100000u);
}

TEST(PvhTest, InitrdIsTheFirstModule) {
  GuestMemory mem = Mem(8);
  auto elf = testing::BuildElf({{0x100000, std::vector<uint8_t>(32, 0xf4), 64}},
                               {testing::PvhNote(0x100004)});
  const std::vector<uint8_t> initrd(5000, 0x42);
  auto boot = arch::LoadKernel(elf, "x", initrd, mem);
  ASSERT_TRUE(boot.ok()) << boot.status();
  auto si = mem.ReadObj<x86::HvmStartInfo>(x86::kStartInfoAddr);
  ASSERT_TRUE(si.ok());
  ASSERT_EQ(si->nr_modules, 1u);
  auto mod = mem.ReadObj<x86::HvmModlistEntry>(si->modlist_paddr);
  ASSERT_TRUE(mod.ok());
  EXPECT_EQ(mod->size, 5000u);
  EXPECT_EQ(mod->paddr % 4096, 0u);
  EXPECT_EQ(mod->paddr + 8192, 8u << 20) << "page-aligned at the top of RAM";
  EXPECT_EQ((*mem.Translate(mod->paddr + 4999, 1))[0], 0x42);
}

TEST(PvhTest, LoadKernelRejectsSegmentOverBootArea) {
  GuestMemory mem = Mem(8);
  auto elf =
      testing::BuildElf({{0x6000, std::vector<uint8_t>(32), 64}}, {testing::PvhNote(0x6000)});
  EXPECT_THAT(std::string(arch::LoadKernel(elf, "", {}, mem).status().message()),
              HasSubstr("boot area"));
}

TEST(PvhTest, LoadKernelRejectsSegmentPastRam) {
  GuestMemory mem = Mem(2);
  auto elf = testing::BuildElf({{0x100000, std::vector<uint8_t>(32), 4 << 20}},
                               {testing::PvhNote(0x100000)});
  EXPECT_THAT(std::string(arch::LoadKernel(elf, "", {}, mem).status().message()),
              HasSubstr("guest RAM"));
}

}  // namespace
}  // namespace edgevisor
