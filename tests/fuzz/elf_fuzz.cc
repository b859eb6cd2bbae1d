// libFuzzer target: the ELF/PVH kernel parser and loader against a small guest memory.
// Any input must parse to an error or load inside guest RAM; ASan catches anything else.
#include <cstddef>
#include <cstdint>

#include "src/vmm/arch/arch.h"
#include "src/vmm/loader/elf.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static edgevisor::GuestMemory* mem = [] {
    auto m = edgevisor::GuestMemory::Create(edgevisor::arch::RamLayout(4 << 20));
    return new edgevisor::GuestMemory(std::move(*m));
  }();
  absl::Span<const uint8_t> file(data, size);
  auto img = edgevisor::ParseElf64(file, 62 /* EM_X86_64 */);
  if (img.ok()) (void)edgevisor::LoadElfSegments(*img, file, *mem);
  static const uint8_t initrd[100] = {1};
  (void)edgevisor::arch::LoadKernel(file, "console=ttyS0", initrd, *mem);
  return 0;
}
