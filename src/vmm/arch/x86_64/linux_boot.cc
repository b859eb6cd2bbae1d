#include "src/vmm/arch/x86_64/linux_boot.h"

#include <cstring>
#include <vector>

#include "absl/strings/str_format.h"
#include "src/base/errors.h"
#include "src/vmm/arch/x86_64/layout.h"
#include "src/vmm/arch/x86_64/pvh.h"

namespace edgevisor::x86 {
namespace {

#pragma pack(push, 1)
struct E820Entry {
  uint64_t addr;
  uint64_t size;
  uint32_t type;
};
#pragma pack(pop)
static_assert(sizeof(E820Entry) == 20);

// The end of the RAM region that starts at 0 (the kernel, zero page and initrd live there).
uint64_t LowRamEnd(const GuestMemory& mem) {
  for (const GuestRegion& r : mem.regions()) {
    if (r.gpa == 0) return r.size;
  }
  return 0;
}

template <typename T>
void Put(std::vector<uint8_t>& page, uint64_t off, T v) {
  std::memcpy(page.data() + off, &v, sizeof(T));
}

template <typename T>
T Get(const std::vector<uint8_t>& page, uint64_t off) {
  T v;
  std::memcpy(&v, page.data() + off, sizeof(T));
  return v;
}

// Fills in what every 64-bit boot needs: loader type, command line, e820, initrd; writes the
// page. `page` already holds the setup header.
absl::Status FinishZeroPage(std::vector<uint8_t>& page, const std::string& cmdline,
                            uint32_t cmdline_limit, absl::Span<const uint8_t> initrd,
                            uint64_t kernel_end, uint64_t initrd_addr_max, const GuestMemory& mem,
                            LinuxBoot& out) {
  const uint64_t limit = std::min<uint64_t>(cmdline_limit, kCmdlineMax - 1);
  if (cmdline.size() > limit) {
    return UsageError(absl::StrFormat("--cmdline: %d bytes; this kernel takes at most %d",
                                      cmdline.size(), limit));
  }
  std::vector<uint8_t> cl(cmdline.begin(), cmdline.end());
  cl.push_back(0);
  EV_RETURN_IF_ERROR(mem.Write(kCmdlineAddr, cl));
  Put<uint8_t>(page, kBpTypeOfLoader, kLoaderTypeUndefined);
  Put<uint32_t>(page, kBpCmdLinePtr, static_cast<uint32_t>(kCmdlineAddr));
  Put<uint32_t>(page, kBpExtCmdLinePtr, 0);

  if (!initrd.empty()) {
    EV_ASSIGN_OR_RETURN(uint64_t at, PlaceInitrd(mem, initrd.size(), kernel_end, initrd_addr_max));
    EV_RETURN_IF_ERROR(mem.Write(at, initrd));
    Put<uint32_t>(page, kBpRamdiskImage, static_cast<uint32_t>(at));
    Put<uint32_t>(page, kBpRamdiskSize, static_cast<uint32_t>(initrd.size()));
    Put<uint32_t>(page, kBpExtRamdiskImage, static_cast<uint32_t>(at >> 32));
    Put<uint32_t>(page, kBpExtRamdiskSize, static_cast<uint32_t>(initrd.size() >> 32));
    out.initrd_addr = at;
  }

  // e820: low RAM up to the EBDA, the legacy hole reserved, then the rest of RAM.
  std::vector<E820Entry> map;
  for (const GuestRegion& r : mem.regions()) {
    if (r.gpa == 0) {
      map.push_back({0, std::min(r.size, kEbdaStart), kE820Ram});
      map.push_back({kEbdaStart, kHighMemStart - kEbdaStart, kE820Reserved});
      if (r.size > kHighMemStart) map.push_back({kHighMemStart, r.size - kHighMemStart, kE820Ram});
    } else {
      map.push_back({r.gpa, r.size, kE820Ram});
    }
  }
  if (map.size() > kE820MaxEntries) return absl::InternalError("too many e820 entries");
  Put<uint8_t>(page, kBpE820Entries, static_cast<uint8_t>(map.size()));
  for (size_t i = 0; i < map.size(); ++i) Put(page, kBpE820Table + i * sizeof(E820Entry), map[i]);
  return mem.Write(kZeroPageAddr, page);
}

}  // namespace

absl::StatusOr<uint64_t> PlaceInitrd(const GuestMemory& mem, uint64_t size, uint64_t kernel_end,
                                     uint64_t addr_max) {
  const uint64_t top = std::min(LowRamEnd(mem), addr_max + 1);  // addr_max is inclusive
  const uint64_t aligned_size = (size + 0xfff) & ~uint64_t{0xfff};
  if (size == 0 || aligned_size > top || ((top - aligned_size) & ~uint64_t{0xfff}) < kernel_end) {
    return UsageError(absl::StrFormat(
        "--initrd: %d bytes do not fit between the kernel's end (0x%x) and 0x%x; give the VM "
        "more memory",
        size, kernel_end, top));
  }
  return (top - aligned_size) & ~uint64_t{0xfff};
}

absl::Status WriteIdentityPageTables(const GuestMemory& mem) {
  const uint64_t pdpt = kPml4Addr + 0x1000, pd = kPml4Addr + 0x2000;
  EV_RETURN_IF_ERROR(mem.WriteObj(kPml4Addr, pdpt | 0x3));  // present | writable
  for (uint64_t i = 0; i < 4; ++i) {
    EV_RETURN_IF_ERROR(mem.WriteObj(pdpt + i * 8, (pd + i * 0x1000) | 0x3));
    std::vector<uint64_t> dir(512);
    for (uint64_t j = 0; j < 512; ++j) dir[j] = ((i << 30) | (j << 21)) | 0x83;  // 2 MiB page
    EV_RETURN_IF_ERROR(mem.Write(
        pd + i * 0x1000,
        absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(dir.data()), dir.size() * 8)));
  }
  return absl::OkStatus();
}

absl::StatusOr<LinuxBoot> LoadBzImage(const BzImage& bz, const std::string& cmdline,
                                      absl::Span<const uint8_t> initrd, const GuestMemory& mem) {
  // Load where the kernel prefers to run; it needs init_size bytes from there.
  const uint64_t load = bz.pref_address;
  if (load < kHighMemStart || load % bz.kernel_alignment != 0) {
    return UsageError(absl::StrFormat("pref_address 0x%x is below 1 MiB or not aligned to 0x%x",
                                      load, bz.kernel_alignment));
  }
  const uint64_t kernel_end = load + std::max<uint64_t>(bz.init_size, bz.kernel.size());
  if (kernel_end > LowRamEnd(mem)) {
    return UsageError(absl::StrFormat(
        "--mem: the kernel needs RAM up to 0x%x (%d MiB) to decompress; give the VM more memory",
        kernel_end, (kernel_end + (1 << 20) - 1) >> 20));
  }
  EV_RETURN_IF_ERROR(mem.Write(load, bz.kernel));

  std::vector<uint8_t> page(4096, 0);
  std::memcpy(page.data() + kSetupHeaderOffset, bz.header.data(),
              std::min<size_t>(bz.header.size(), 4096 - kSetupHeaderOffset));
  Put<uint8_t>(page, kBpLoadflags, Get<uint8_t>(page, kBpLoadflags) | kLoadedHigh);
  LinuxBoot out;
  out.entry = load + 0x200;  // startup_64: the 64-bit entry, 0x200 into the kernel
  out.kernel_end = kernel_end;
  EV_RETURN_IF_ERROR(FinishZeroPage(page, cmdline, bz.cmdline_size, initrd, kernel_end,
                                    bz.initrd_addr_max, mem, out));
  EV_RETURN_IF_ERROR(WriteIdentityPageTables(mem));
  return out;
}

absl::StatusOr<LinuxBoot> LoadVmlinux(const ElfImage& elf, absl::Span<const uint8_t> file,
                                      const std::string& cmdline, absl::Span<const uint8_t> initrd,
                                      const GuestMemory& mem) {
  uint64_t kernel_end = 0;
  for (const ElfSegment& seg : elf.loads) {
    if (seg.paddr < kHighMemStart) {
      return UsageError(absl::StrFormat(
          "segment at physical 0x%x is below 1 MiB, where the boot data lives", seg.paddr));
    }
    kernel_end = std::max(kernel_end, seg.paddr + seg.memsz);
  }
  EV_RETURN_IF_ERROR(LoadElfSegments(elf, file, mem));
  // The entry must lie inside what was loaded (vmlinux's e_entry is phys_startup_64).
  bool inside = false;
  for (const ElfSegment& seg : elf.loads) {
    inside |= elf.entry >= seg.paddr && elf.entry < seg.paddr + seg.memsz;
  }
  if (!inside) {
    return UsageError(absl::StrFormat(
        "entry point 0x%x is outside the loaded segments (a vmlinux's e_entry is the "
        "physical address of startup_64)",
        elf.entry));
  }

  // No setup code, so no header to copy: synthesize the fields the kernel reads.
  std::vector<uint8_t> page(4096, 0);
  Put<uint16_t>(page, kBpBootFlag, kBootFlag);
  Put<uint32_t>(page, kBpHeader, kHdrSMagic);
  Put<uint16_t>(page, kBpVersion, 0x020f);
  Put<uint8_t>(page, kBpLoadflags, kLoadedHigh);
  Put<uint32_t>(page, kBpKernelAlignment, 0x1000000);
  Put<uint32_t>(page, kBpCmdlineSize, static_cast<uint32_t>(kCmdlineMax - 1));
  LinuxBoot out;
  out.entry = elf.entry;
  out.kernel_end = kernel_end;
  EV_RETURN_IF_ERROR(
      FinishZeroPage(page, cmdline, kCmdlineMax - 1, initrd, kernel_end, 0x7fffffff, mem, out));
  EV_RETURN_IF_ERROR(WriteIdentityPageTables(mem));
  return out;
}

}  // namespace edgevisor::x86
