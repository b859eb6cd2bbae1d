// libFuzzer target: the bzImage setup-header parser and the Linux 64-bit boot-protocol loader
// (zero page, e820, command line, initrd placement) against a small guest memory. Any input
// must parse to an error or load inside guest RAM; ASan catches anything else.
#include <cstddef>
#include <cstdint>

#include "src/vmm/arch/arch.h"
#include "src/vmm/arch/x86_64/linux_boot.h"
#include "src/vmm/loader/bzimage.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static edgevisor::GuestMemory* mem = [] {
    auto m = edgevisor::GuestMemory::Create(edgevisor::arch::RamLayout(32 << 20));
    return new edgevisor::GuestMemory(std::move(*m));
  }();
  static const uint8_t initrd[4096 + 1] = {0x42};
  absl::Span<const uint8_t> file(data, size);
  auto bz = edgevisor::ParseBzImage(file);
  if (bz.ok()) (void)edgevisor::x86::LoadBzImage(*bz, "console=ttyS0", initrd, *mem);
  (void)edgevisor::arch::LoadKernel(file, "console=ttyS0", {}, *mem);
  return 0;
}
