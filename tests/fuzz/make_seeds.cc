// Writes seed inputs for elf_fuzz: a valid PVH image and a few near-misses.
#include <fstream>
#include <string>

#include "tests/unit/elf_builder.h"

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  using edgevisor::testing::BuildElf;
  using edgevisor::testing::PvhNote;
  const std::string dir = argv[1];
  auto put = [&](const std::string& name, const std::vector<uint8_t>& d) {
    std::ofstream(dir + "/" + name, std::ios::binary)
        .write(reinterpret_cast<const char*>(d.data()), static_cast<std::streamsize>(d.size()));
  };
  std::vector<uint8_t> code(64, 0x90);
  put("valid", BuildElf({{0x100000, code, 0x1000}}, {PvhNote(0x100000)}));
  put("two_segments",
      BuildElf({{0x100000, code, 64}, {0x200000, code, 0x3000}}, {PvhNote(0x100000)}));
  put("no_note", BuildElf({{0x100000, code, 64}}, {}));
  put("overlap", BuildElf({{0x100000, code, 0x2000}, {0x101000, code, 64}}, {PvhNote(0x100000)}));
  return 0;
}
