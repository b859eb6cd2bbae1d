#include "src/vmm/arch/x86_64/acpi.h"

#include "absl/strings/str_format.h"
#include "src/vmm/acpi/aml.h"
#include "src/vmm/arch/x86_64/layout.h"

namespace edgevisor::x86 {
namespace {

using acpi::Bytes;
using acpi::Sdt;
namespace aml = acpi::aml;

constexpr uint32_t kLapicAddr = 0xfee00000;
constexpr uint32_t kIoapicAddr = 0xfec00000;

// FADT (ACPI 6.5, 5.2.9), revision 6 minor 5: 276 bytes.
constexpr size_t kFadtSize = 276;
constexpr size_t kFadtIapcBootArch = 109;
constexpr size_t kFadtFlags = 112;
constexpr size_t kFadtResetReg = 116;
constexpr size_t kFadtResetValue = 128;
constexpr size_t kFadtMinorVersion = 131;
constexpr size_t kFadtXDsdt = 140;
constexpr size_t kFadtSleepControl = 244;
constexpr size_t kFadtSleepStatus = 256;
constexpr size_t kFadtHypervisorId = 268;
// IA-PC boot architecture flags.
constexpr uint16_t kIapc8042 = 1 << 1;
constexpr uint16_t kIapcVgaNotPresent = 1 << 2;
constexpr uint16_t kIapcMsiNotSupported = 1 << 3;
constexpr uint16_t kIapcPcieAspmControls = 1 << 4;
constexpr uint16_t kIapcCmosRtcNotPresent = 1 << 5;
// Fixed feature flags.
constexpr uint32_t kFlagPwrButton = 1 << 4;  // no fixed power button
constexpr uint32_t kFlagSlpButton = 1 << 5;  // no fixed sleep button
constexpr uint32_t kFlagResetRegSup = 1 << 10;
constexpr uint32_t kFlagHwReduced = 1 << 20;

Bytes BuildDsdt(absl::Span<const AcpiVirtioMmio> virtio) {
  std::vector<Bytes> sb;
  sb.push_back(aml::Device(
      "COM1", {aml::Name("_HID", aml::EisaId("PNP0501")), aml::Name("_UID", aml::Integer(0)),
               aml::Name("_CRS", aml::ResourceTemplate(
                                     {aml::IoPort(kCom1Port, 8), aml::IrqNoFlags(kCom1Irq)}))}));
  // The i8042: Linux probes it through PNP (PNP0303), for Ctrl+Alt+Del and reboot=k.
  sb.push_back(aml::Device(
      "PS2_", {aml::Name("_HID", aml::EisaId("PNP0303")),
               aml::Name("_CRS", aml::ResourceTemplate({aml::IoPort(0x60, 1), aml::IoPort(0x64, 1),
                                                        aml::IrqNoFlags(kKeyboardIrq)}))}));
  for (size_t i = 0; i < virtio.size(); ++i) {
    const AcpiVirtioMmio& v = virtio[i];
    sb.push_back(aml::Device(
        absl::StrFormat("V%03X", i),
        {aml::Name("_HID", aml::String("LNRO0005")), aml::Name("_UID", aml::Integer(i)),
         aml::Name("_CCA", aml::Integer(1)),  // cache-coherent DMA
         aml::Name("_CRS",
                   aml::ResourceTemplate({aml::Memory32Fixed(static_cast<uint32_t>(v.base), v.size),
                                          aml::Interrupt(v.gsi)}))}));
  }
  Sdt dsdt("DSDT", 2);  // revision 2: 64-bit integers
  dsdt.Raw(aml::Scope("\\_SB_", sb));
  // Sleep type for S5 (soft off): the value the OS writes to the sleep-control register.
  dsdt.Raw(aml::Name("\\_S5_", aml::Package({aml::Integer(kAcpiS5SleepType), aml::Integer(0),
                                             aml::Integer(0), aml::Integer(0)})));
  return dsdt.Finish();
}

Bytes BuildFadt(uint64_t dsdt_addr) {
  Sdt f("FACP", 6);
  f.PadTo(kFadtSize);
  f.PutU16(kFadtIapcBootArch, kIapc8042 | kIapcVgaNotPresent | kIapcMsiNotSupported |
                                  kIapcPcieAspmControls | kIapcCmosRtcNotPresent);
  f.PutU32(kFadtFlags, kFlagHwReduced | kFlagResetRegSup | kFlagPwrButton | kFlagSlpButton);
  f.PutRaw(kFadtResetReg, acpi::Gas(acpi::AddressSpace::kSystemIo, 8, kAcpiResetPort));
  f.PutU8(kFadtResetValue, kAcpiResetValue);
  f.PutU8(kFadtMinorVersion, 5);
  f.PutU64(kFadtXDsdt, dsdt_addr);
  f.PutRaw(kFadtSleepControl, acpi::Gas(acpi::AddressSpace::kSystemIo, 8, kAcpiSleepControlPort));
  f.PutRaw(kFadtSleepStatus, acpi::Gas(acpi::AddressSpace::kSystemIo, 8, kAcpiSleepStatusPort));
  f.PutRaw(kFadtHypervisorId, {'E', 'D', 'G', 'E', 'V', 'S', 'O', 'R'});
  return f.Finish();
}

Bytes BuildMadt(int vcpus) {
  Sdt m("APIC", 5);
  m.U32(kLapicAddr);
  m.U32(0);  // flags: no PC-AT dual 8259 setup (the hardware-reduced model has none)
  for (int i = 0; i < vcpus; ++i) {
    // Processor Local APIC: type 0, length 8, ACPI processor UID, APIC ID, flags (enabled).
    m.U8(0).U8(8).U8(static_cast<uint8_t>(i)).U8(static_cast<uint8_t>(i)).U32(1);
  }
  // I/O APIC: type 1, length 12, ID 0 (KVM's reset value), address, GSI base 0.
  m.U8(1).U8(12).U8(0).U8(0).U32(kIoapicAddr).U32(0);
  // Local APIC NMI: type 4, length 6, all processors, default polarity/trigger, LINT1.
  m.U8(4).U8(6).U8(0xff).U16(0).U8(1);
  return m.Finish();
}

}  // namespace

absl::StatusOr<std::vector<AcpiTable>> BuildAcpiTables(int vcpus,
                                                       absl::Span<const AcpiVirtioMmio> virtio) {
  if (vcpus < 1 || vcpus > 255) {
    return absl::InvalidArgumentError(absl::StrFormat("%d vCPUs do not fit the MADT", vcpus));
  }
  auto align = [](uint64_t a) { return (a + 15) & ~uint64_t{15}; };
  std::vector<AcpiTable> t;
  const uint64_t xsdt_addr = align(kAcpiBase + acpi::kRsdpSize);
  t.push_back({"RSD PTR ", kAcpiBase, acpi::Rsdp(xsdt_addr)});
  // XSDT: two 8-byte entries after the header.
  const uint64_t fadt_addr = align(xsdt_addr + acpi::kSdtHeaderSize + 2 * 8);
  const uint64_t madt_addr = align(fadt_addr + kFadtSize);
  Bytes madt = BuildMadt(vcpus);
  const uint64_t dsdt_addr = align(madt_addr + madt.size());
  Bytes dsdt = BuildDsdt(virtio);
  if (dsdt_addr + dsdt.size() > kAcpiEnd) {
    return absl::InvalidArgumentError(
        absl::StrFormat("the ACPI tables for %d devices do not fit below 1 MiB", virtio.size()));
  }
  Sdt xsdt("XSDT", 1);
  xsdt.U64(fadt_addr).U64(madt_addr);
  t.push_back({"XSDT", xsdt_addr, xsdt.Finish()});
  t.push_back({"FACP", fadt_addr, BuildFadt(dsdt_addr)});
  t.push_back({"APIC", madt_addr, std::move(madt)});
  t.push_back({"DSDT", dsdt_addr, std::move(dsdt)});
  return t;
}

absl::StatusOr<uint64_t> WriteAcpiTables(const GuestMemory& mem, int vcpus,
                                         absl::Span<const AcpiVirtioMmio> virtio) {
  auto tables = BuildAcpiTables(vcpus, virtio);
  if (!tables.ok()) return tables.status();
  for (const AcpiTable& t : *tables) {
    absl::Status s = mem.Write(t.addr, t.data);
    if (!s.ok()) return s;
  }
  return tables->front().addr;
}

}  // namespace edgevisor::x86
