#include "src/vmm/loader/elf.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/unit/elf_builder.h"

namespace edgevisor {
namespace {

using testing::BuildElf;
using ::testing::HasSubstr;
using testing::PvhNote;

std::vector<uint8_t> Code(size_t n, uint8_t v = 0x90) { return std::vector<uint8_t>(n, v); }

std::string Err(const std::vector<uint8_t>& elf) {
  auto r = ParseElf64(elf, EM_X86_64);
  return r.ok() ? "OK" : std::string(r.status().message());
}

TEST(ElfTest, ParsesSegmentsAndPvhNote) {
  auto elf =
      BuildElf({{0x100000, Code(64), 0x2000}, {0x200000, Code(16), 16}}, {PvhNote(0x100010)});
  auto img = ParseElf64(elf, EM_X86_64);
  ASSERT_TRUE(img.ok()) << img.status();
  ASSERT_EQ(img->loads.size(), 2u);
  EXPECT_EQ(img->loads[0].paddr, 0x100000u);
  EXPECT_EQ(img->loads[0].filesz, 64u);
  EXPECT_EQ(img->loads[0].memsz, 0x2000u);
  ASSERT_TRUE(img->pvh_entry.has_value());
  EXPECT_EQ(*img->pvh_entry, 0x100010u);
}

TEST(ElfTest, EightBytePvhNoteAccepted) {
  testing::TestNote n{{'X', 'e', 'n', 0}, 18, std::vector<uint8_t>(8, 0)};
  n.desc[0] = 0x40;
  n.desc[2] = 0x10;
  auto img = ParseElf64(BuildElf({{0x100000, Code(8), 8}}, {n}), EM_X86_64);
  ASSERT_TRUE(img.ok());
  EXPECT_EQ(*img->pvh_entry, 0x100040u);
}

TEST(ElfTest, NoNoteMeansNoPvhEntry) {
  auto img = ParseElf64(BuildElf({{0x100000, Code(8), 8}}, {}), EM_X86_64);
  ASSERT_TRUE(img.ok());
  EXPECT_FALSE(img->pvh_entry.has_value());
}

TEST(ElfTest, OtherNotesIgnored) {
  testing::TestNote gnu{{'G', 'N', 'U', 0}, 18, Code(4)};
  auto img = ParseElf64(BuildElf({{0x100000, Code(8), 8}}, {gnu}), EM_X86_64);
  ASSERT_TRUE(img.ok());
  EXPECT_FALSE(img->pvh_entry.has_value());
}

TEST(ElfTest, RejectsEmptyFile) { EXPECT_THAT(Err({}), HasSubstr("not an ELF")); }

TEST(ElfTest, RejectsBadMagic) {
  auto elf = BuildElf({{0x100000, Code(8), 8}}, {});
  elf[1] = 'X';
  EXPECT_THAT(Err(elf), HasSubstr("bad magic"));
}

TEST(ElfTest, RejectsTruncatedHeader) {
  auto elf = BuildElf({{0x100000, Code(8), 8}}, {});
  elf.resize(20);
  EXPECT_THAT(Err(elf), HasSubstr("truncated ELF header"));
}

TEST(ElfTest, Rejects32BitElf) {
  auto elf = BuildElf({{0x100000, Code(8), 8}}, {});
  elf[EI_CLASS] = ELFCLASS32;
  EXPECT_THAT(Err(elf), HasSubstr("64-bit"));
}

TEST(ElfTest, RejectsWrongMachine) {
  EXPECT_THAT(Err(BuildElf({{0x100000, Code(8), 8}}, {}, EM_AARCH64)), HasSubstr("machine"));
}

TEST(ElfTest, RejectsSharedObject) {
  auto elf = BuildElf({{0x100000, Code(8), 8}}, {});
  testing::Ehdr(elf)->e_type = ET_DYN;
  EXPECT_THAT(Err(elf), HasSubstr("ET_EXEC"));
}

TEST(ElfTest, RejectsProgramHeadersPastEnd) {
  auto elf = BuildElf({{0x100000, Code(8), 8}}, {});
  testing::Ehdr(elf)->e_phnum = 1000;
  EXPECT_THAT(Err(elf), HasSubstr("program headers"));
}

TEST(ElfTest, RejectsHugePhoff) {
  auto elf = BuildElf({{0x100000, Code(8), 8}}, {});
  testing::Ehdr(elf)->e_phoff = ~0ull - 8;
  EXPECT_THAT(Err(elf), HasSubstr("program headers"));
}

TEST(ElfTest, RejectsTruncatedSegmentData) {
  auto elf = BuildElf({{0x100000, Code(4096), 4096}}, {});
  elf.resize(elf.size() - 100);
  EXPECT_THAT(Err(elf), HasSubstr("truncated"));
}

TEST(ElfTest, RejectsHugeFilesz) {
  auto elf = BuildElf({{0x100000, Code(8), 8}}, {});
  testing::Phdr(elf, 0)->p_filesz = ~0ull;
  testing::Phdr(elf, 0)->p_memsz = ~0ull;
  EXPECT_THAT(Err(elf), HasSubstr("outside the file"));
}

TEST(ElfTest, RejectsFileszLargerThanMemsz) {
  auto elf = BuildElf({{0x100000, Code(64), 64}}, {});
  testing::Phdr(elf, 0)->p_memsz = 8;
  EXPECT_THAT(Err(elf), HasSubstr("larger than p_memsz"));
}

TEST(ElfTest, RejectsWrappingPhysicalRange) {
  auto elf = BuildElf({{0x100000, Code(8), 8}}, {});
  testing::Phdr(elf, 0)->p_paddr = ~0ull - 4;
  EXPECT_THAT(Err(elf), HasSubstr("wraps"));
}

TEST(ElfTest, RejectsOverlappingSegments) {
  EXPECT_THAT(Err(BuildElf({{0x100000, Code(8), 0x2000}, {0x101000, Code(8), 8}}, {})),
              HasSubstr("overlap"));
}

TEST(ElfTest, RejectsNoLoadableSegments) {
  EXPECT_THAT(Err(BuildElf({}, {PvhNote(0x100000)})), HasSubstr("no loadable"));
}

TEST(ElfTest, RejectsNoteRunningPastSegment) {
  testing::TestNote big{{'X', 'e', 'n', 0}, 18, Code(4)};
  auto elf = BuildElf({{0x100000, Code(8), 8}}, {big});
  testing::Phdr(elf, 0)->p_filesz = 14;  // cuts into the name
  EXPECT_THAT(Err(elf), HasSubstr("runs past"));
}

TEST(ElfTest, RejectsNoteWithHugeDescsz) {
  auto elf = BuildElf({{0x100000, Code(8), 8}}, {PvhNote(0x100000)});
  auto* nh = reinterpret_cast<Elf64_Nhdr*>(elf.data() + testing::Phdr(elf, 0)->p_offset);
  nh->n_descsz = 0xfffffff0;
  EXPECT_THAT(Err(elf), HasSubstr("runs past"));
}

TEST(ElfTest, RejectsPvhNoteWithBadDescSize) {
  testing::TestNote n{{'X', 'e', 'n', 0}, 18, Code(2)};
  EXPECT_THAT(Err(BuildElf({{0x100000, Code(8), 8}}, {n})), HasSubstr("descriptor size"));
}

TEST(ElfTest, RejectsPvhEntryAbove4G) {
  testing::TestNote n{{'X', 'e', 'n', 0}, 18, std::vector<uint8_t>(8, 0)};
  n.desc[4] = 1;
  EXPECT_THAT(Err(BuildElf({{0x100000, Code(8), 8}}, {n})), HasSubstr("32-bit"));
}

TEST(ElfTest, RejectsNoteSegmentOutsideFile) {
  auto elf = BuildElf({{0x100000, Code(8), 8}}, {PvhNote(0x100000)});
  testing::Phdr(elf, 0)->p_offset = 1 << 30;
  EXPECT_THAT(Err(elf), HasSubstr("PT_NOTE"));
}

class ElfLoadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto m = GuestMemory::Create({{0, 4 << 20}});
    ASSERT_TRUE(m.ok());
    mem_ = std::move(*m);
  }
  GuestMemory mem_;
};

TEST_F(ElfLoadTest, CopiesDataAndZeroesBss) {
  std::memset(mem_.Translate(0x100000, 0x2000)->data(), 0xee, 0x2000);
  auto elf = BuildElf({{0x100000, Code(16, 0xab), 0x2000}}, {});
  auto img = ParseElf64(elf, EM_X86_64);
  ASSERT_TRUE(img.ok());
  ASSERT_TRUE(LoadElfSegments(*img, elf, mem_).ok());
  auto s = *mem_.Translate(0x100000, 0x2000);
  EXPECT_EQ(s[0], 0xab);
  EXPECT_EQ(s[15], 0xab);
  EXPECT_EQ(s[16], 0);
  EXPECT_EQ(s[0x1fff], 0);
}

TEST_F(ElfLoadTest, RejectsSegmentOutsideRam) {
  auto elf = BuildElf({{0x100000, Code(16), 16}, {0x10000000, Code(16), 16}}, {});
  auto img = ParseElf64(elf, EM_X86_64);
  ASSERT_TRUE(img.ok());
  std::memset(mem_.Translate(0x100000, 16)->data(), 0x11, 16);
  auto st = LoadElfSegments(*img, elf, mem_);
  EXPECT_THAT(std::string(st.message()), HasSubstr("does not fit in guest RAM"));
  EXPECT_EQ((*mem_.Translate(0x100000, 1))[0], 0x11) << "a failed load must not write anything";
}

TEST_F(ElfLoadTest, RejectsSegmentStraddlingRamEnd) {
  auto elf = BuildElf({{(4 << 20) - 8, Code(16), 16}}, {});
  auto img = ParseElf64(elf, EM_X86_64);
  ASSERT_TRUE(img.ok());
  EXPECT_FALSE(LoadElfSegments(*img, elf, mem_).ok());
}

}  // namespace
}  // namespace edgevisor
