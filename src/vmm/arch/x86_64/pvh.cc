#include "src/vmm/arch/x86_64/pvh.h"

#include <vector>

#include "absl/strings/str_format.h"
#include "src/vmm/arch/x86_64/layout.h"

namespace edgevisor::x86 {

absl::Status WritePvhStartInfo(const GuestMemory& mem, const std::string& cmdline,
                               PvhModule initrd) {
  if (cmdline.size() + 1 > kCmdlineMax) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "kernel command line is %d bytes; the limit is %d", cmdline.size(), kCmdlineMax - 1));
  }
  std::vector<uint8_t> cl(cmdline.begin(), cmdline.end());
  cl.push_back(0);
  absl::Status s = mem.Write(kCmdlineAddr, cl);
  if (!s.ok()) return s;

  std::vector<HvmMemmapEntry> map;
  for (const GuestRegion& r : mem.regions()) {
    if (r.gpa == 0) {
      // Low RAM stops at the EBDA; the legacy hole [EBDA, 1 MiB) is not RAM.
      map.push_back({0, std::min(r.size, kEbdaStart), kE820Ram, 0});
      if (r.size > kHighMemStart)
        map.push_back({kHighMemStart, r.size - kHighMemStart, kE820Ram, 0});
    } else {
      map.push_back({r.gpa, r.size, kE820Ram, 0});
    }
  }
  if (map.size() > kMemmapMaxEntries) return absl::InternalError("too many memory map entries");
  for (size_t i = 0; i < map.size(); ++i) {
    s = mem.WriteObj(kMemmapAddr + i * sizeof(HvmMemmapEntry), map[i]);
    if (!s.ok()) return s;
  }

  HvmStartInfo si{};
  si.magic = kHvmStartMagic;
  si.version = 1;
  si.cmdline_paddr = kCmdlineAddr;
  si.memmap_paddr = kMemmapAddr;
  si.memmap_entries = static_cast<uint32_t>(map.size());
  if (initrd.size != 0) {
    s = mem.WriteObj(kModlistAddr, HvmModlistEntry{initrd.paddr, initrd.size, 0, 0});
    if (!s.ok()) return s;
    si.nr_modules = 1;
    si.modlist_paddr = kModlistAddr;
  }
  return mem.WriteObj(kStartInfoAddr, si);
}

}  // namespace edgevisor::x86
