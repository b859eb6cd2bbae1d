// The generated x86_64 ACPI tables: structure and pointers checked here, content checked by
// disassembling every table with ACPICA's iasl (acpica-tools) and recompiling the DSDT.
#include "src/vmm/arch/x86_64/acpi.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>

#include "absl/strings/str_format.h"
#include "src/vmm/arch/x86_64/layout.h"
#include "tests/unit/test_ram.h"
#include "tests/unit/tool_text.h"

namespace edgevisor::x86 {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

const AcpiVirtioMmio kDevs[] = {{0xd0001000, 0x1000, 5}, {0xd0002000, 0x1000, 6}};

uint64_t Le(const acpi::Bytes& b, size_t off, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; ++i) v |= uint64_t{b.at(off + i)} << (8 * i);
  return v;
}

const AcpiTable& Find(const std::vector<AcpiTable>& t, const std::string& sig) {
  for (const AcpiTable& x : t) {
    if (x.signature == sig) return x;
  }
  ADD_FAILURE() << "no " << sig;
  return t.front();
}

TEST(AcpiTest, TablesChecksumAndPointAtEachOther) {
  auto tables = BuildAcpiTables(2, kDevs);
  ASSERT_TRUE(tables.ok()) << tables.status();
  ASSERT_EQ(tables->size(), 5u);
  for (const AcpiTable& t : *tables) {
    EXPECT_GE(t.addr, kAcpiBase);
    EXPECT_LE(t.addr + t.data.size(), kAcpiEnd);
    EXPECT_EQ(t.addr % 16, 0u) << t.signature;
    if (t.signature == "RSD PTR ") continue;
    EXPECT_EQ(acpi::Checksum(t.data), 0) << t.signature << " checksum";
    EXPECT_EQ(Le(t.data, 4, 4), t.data.size()) << t.signature << " length";
    EXPECT_EQ(std::string(t.data.begin(), t.data.begin() + 4), t.signature);
  }
  const AcpiTable& xsdt = Find(*tables, "XSDT");
  EXPECT_EQ(Le(tables->front().data, 24, 8), xsdt.addr) << "RSDP -> XSDT";
  EXPECT_EQ(Le(xsdt.data, 36, 8), Find(*tables, "FACP").addr);
  EXPECT_EQ(Le(xsdt.data, 44, 8), Find(*tables, "APIC").addr);
  EXPECT_EQ(Le(Find(*tables, "FACP").data, 140, 8), Find(*tables, "DSDT").addr) << "X_DSDT";
}

TEST(AcpiTest, MadtHasOneLocalApicPerVcpu) {
  for (int n : {1, 2, 8}) {
    auto tables = BuildAcpiTables(n, {});
    ASSERT_TRUE(tables.ok());
    const acpi::Bytes& m = Find(*tables, "APIC").data;
    int lapics = 0;
    for (size_t off = 44; off + 2 <= m.size(); off += m[off + 1]) {
      ASSERT_GT(m[off + 1], 0);
      if (m[off] == 0) {
        EXPECT_EQ(m[off + 3], lapics) << "APIC IDs 0..n-1, matching CPUID";
        ++lapics;
      }
    }
    EXPECT_EQ(lapics, n);
  }
  EXPECT_FALSE(BuildAcpiTables(0, {}).ok());
  EXPECT_FALSE(BuildAcpiTables(256, {}).ok());
}

TEST(AcpiTest, WrittenIntoGuestMemoryWhereLinuxLooks) {
  GuestMemory mem = testing::TestRam(64);
  auto rsdp = WriteAcpiTables(mem, 1, kDevs);
  ASSERT_TRUE(rsdp.ok()) << rsdp.status();
  EXPECT_EQ(*rsdp, kAcpiBase) << "16-byte aligned in the BIOS area that Linux scans";
  auto sig = mem.ReadObj<std::array<char, 8>>(*rsdp);
  ASSERT_TRUE(sig.ok());
  EXPECT_EQ(std::string(sig->begin(), sig->end()), "RSD PTR ");
}

// Runs iasl on every table and returns the disassembly by signature.
class IaslTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::system("command -v iasl >/dev/null 2>&1") != 0) {
      GTEST_FAIL() << "iasl is missing: install acpica-tools (tools/install-deps does)";
    }
  }

  // Disassembles one table; returns the .dsl text with iasl's "//" comments removed and all
  // whitespace runs folded to one space ("" and a failure if iasl failed).
  std::string Disassemble(const AcpiTable& t) {
    std::string name = t.signature == "RSD PTR " ? "RSDP" : t.signature;
    dir_.Write(name + ".dat", t.data);
    const std::string cmd =
        absl::StrFormat("cd %s && iasl -d %s.dat > %s.log 2>&1", dir_.path(), name, name);
    EXPECT_EQ(std::system(cmd.c_str()), 0) << dir_.Read(name + ".log");
    return testing::FoldWhitespace(dir_.Read(name + ".dsl"), /*drop_line_comments=*/true);
  }

  // The Space ID and Address lines of a Generic Address Structure in a data-table disassembly.
  static std::string Gas(const std::string& dsl, const std::string& field) {
    size_t at = dsl.find(field + " : [Generic Address Structure]");
    if (at == std::string::npos) return "missing";
    const size_t space = dsl.find("Space ID : ", at);
    const size_t addr = dsl.find("Address : ", space);
    if (space == std::string::npos || addr == std::string::npos) return "malformed";
    return dsl.substr(space + 11, 2) + " " + dsl.substr(addr + 10, 16);
  }

  testing::ScratchDir dir_;
};

TEST_F(IaslTest, EveryTableDisassemblesWithoutComplaint) {
  auto tables = BuildAcpiTables(2, kDevs);
  ASSERT_TRUE(tables.ok());
  for (const AcpiTable& t : *tables) {
    if (t.signature == "RSD PTR ") continue;  // iasl -d takes only SDTs (checked above)
    const std::string dsl = Disassemble(t);
    EXPECT_THAT(dsl, Not(HasSubstr("Invalid"))) << t.signature;
    EXPECT_THAT(dsl, Not(HasSubstr("Error"))) << t.signature;
    EXPECT_THAT(dsl, Not(HasSubstr("Incorrect checksum"))) << t.signature;
  }
}

TEST_F(IaslTest, DsdtDescribesCom1ThePs2ControllerAndEveryVirtioMmioDevice) {
  auto tables = BuildAcpiTables(2, kDevs);
  ASSERT_TRUE(tables.ok());
  const std::string dsl = Disassemble(Find(*tables, "DSDT"));
  EXPECT_THAT(dsl, HasSubstr("Scope (\\_SB) {"));
  EXPECT_THAT(dsl,
              HasSubstr("Device (COM1) { Name (_HID, EisaId (\"PNP0501\") /* 16550A-compatible"));
  EXPECT_THAT(dsl, HasSubstr("IO (Decode16, 0x03F8, 0x03F8, 0x01, 0x08, ) IRQNoFlags () {4}"));
  EXPECT_THAT(dsl, HasSubstr("Device (PS2) { Name (_HID, EisaId (\"PNP0303\")"));
  EXPECT_THAT(dsl, HasSubstr("IO (Decode16, 0x0060, 0x0060, 0x01, 0x01, ) IO (Decode16, 0x0064, "
                             "0x0064, 0x01, 0x01, ) IRQNoFlags () {1}"));
  for (int i = 0; i < 2; ++i) {
    EXPECT_THAT(dsl, HasSubstr(absl::StrFormat(
                         "Device (V%03d) { Name (_HID, \"LNRO0005\") Name (_UID, %s) Name (_CCA, "
                         "One) Name (_CRS, ResourceTemplate () { Memory32Fixed (ReadWrite, "
                         "0x%08X, 0x00001000, ) Interrupt (ResourceConsumer, Edge, ActiveHigh, "
                         "Exclusive, ,, ) { 0x%08X, } }) }",
                         i, i == 0 ? "Zero" : "One", kDevs[i].base, kDevs[i].gsi)));
  }
  EXPECT_THAT(dsl, HasSubstr("Name (\\_S5, Package (0x04) { 0x05, Zero, Zero, Zero })"));

  // The disassembly compiles back to AML without errors.
  const std::string cmd = absl::StrFormat("cd %s && iasl DSDT.dsl > compile.log 2>&1", dir_.path());
  EXPECT_EQ(std::system(cmd.c_str()), 0) << dir_.Read("compile.log");
}

TEST_F(IaslTest, FadtIsHardwareReducedWithSleepAndResetRegisters) {
  auto tables = BuildAcpiTables(1, {});
  ASSERT_TRUE(tables.ok());
  const std::string dsl = Disassemble(Find(*tables, "FACP"));
  EXPECT_THAT(dsl, HasSubstr("Revision : 06"));
  EXPECT_THAT(dsl, HasSubstr("FADT Minor Revision : 05"));
  EXPECT_THAT(dsl, HasSubstr("Hardware Reduced (V5) : 1"));
  EXPECT_THAT(dsl, HasSubstr("Reset Register Supported (V2) : 1"));
  EXPECT_THAT(dsl, HasSubstr("8042 Present on ports 60/64 (V2) : 1"));
  EXPECT_THAT(dsl, HasSubstr("CMOS RTC Not Present (V5) : 1"));
  // The three registers are byte-wide I/O ports of the AcpiPm device.
  EXPECT_EQ(Gas(dsl, "Reset Register"), absl::StrFormat("01 %016X", kAcpiResetPort));
  EXPECT_THAT(dsl, HasSubstr(absl::StrFormat("Value to cause reset : %02X", kAcpiResetValue)));
  EXPECT_EQ(Gas(dsl, "Sleep Control Register"), absl::StrFormat("01 %016X", kAcpiSleepControlPort));
  EXPECT_EQ(Gas(dsl, "Sleep Status Register"), absl::StrFormat("01 %016X", kAcpiSleepStatusPort));
}

TEST_F(IaslTest, MadtListsTheLocalApicsAndTheIoapic) {
  auto tables = BuildAcpiTables(3, {});
  ASSERT_TRUE(tables.ok());
  const std::string dsl = Disassemble(Find(*tables, "APIC"));
  for (int i = 0; i < 3; ++i) {
    // Entry i starts at byte 44 + 8i: its processor UID at +2, its APIC ID at +3.
    const int apic_id_at = 44 + 8 * i + 3;
    EXPECT_THAT(
        dsl, HasSubstr(absl::StrFormat("Processor ID : %02X [%03Xh %04d 1] Local Apic ID : %02X", i,
                                       apic_id_at, apic_id_at, i)));
  }
  EXPECT_THAT(dsl, HasSubstr("I/O Apic ID : 00"));
  EXPECT_THAT(dsl, HasSubstr("Address : FEC00000"));
  EXPECT_THAT(dsl, HasSubstr("Local Apic Address : FEE00000"));
}

}  // namespace
}  // namespace edgevisor::x86
