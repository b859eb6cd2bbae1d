// Writes seed inputs for the fuzz targets: valid images and a few near-misses.
//   make_seeds ELF_DIR [VIRTIO_BLK_DIR] | --bzimage DIR | --arm64-image DIR
#include <cstring>
#include <fstream>
#include <string>

#include "tests/unit/arm64_image_builder.h"
#include "tests/unit/bzimage_builder.h"
#include "tests/unit/elf_builder.h"

namespace {

void Put(const std::string& dir, const std::string& name, const std::vector<uint8_t>& d) {
  std::ofstream(dir + "/" + name, std::ios::binary)
      .write(reinterpret_cast<const char*>(d.data()), static_cast<std::streamsize>(d.size()));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  if (std::string(argv[1]) == "--arm64-image" && argc == 3) {
    using edgevisor::testing::BuildArm64Image;
    const std::string dir = argv[2];
    Put(dir, "valid", BuildArm64Image({}));
    Put(dir, "legacy", BuildArm64Image({.text_offset = 0, .image_size = 0}));
    return 0;
  }
  if (std::string(argv[1]) == "--bzimage" && argc == 3) {
    using edgevisor::testing::BuildBzImage;
    const std::string dir = argv[2];
    Put(dir, "valid", BuildBzImage({}));
    edgevisor::testing::BzParams p;
    p.setup_sects = 0;
    p.kernel_bytes = 1024;
    Put(dir, "old_setup_sects", BuildBzImage(p));
    return 0;
  }
  using edgevisor::testing::BuildElf;
  using edgevisor::testing::PvhNote;
  const std::string dir = argv[1];
  std::vector<uint8_t> code(64, 0x90);
  Put(dir, "valid", BuildElf({{0x100000, code, 0x1000}}, {PvhNote(0x100000)}));
  Put(dir, "two_segments",
      BuildElf({{0x100000, code, 64}, {0x200000, code, 0x3000}}, {PvhNote(0x100000)}));
  Put(dir, "no_note", BuildElf({{0x100000, code, 64}}, {}));
  Put(dir, "overlap",
      BuildElf({{0x100000, code, 0x2000}, {0x101000, code, 64}}, {PvhNote(0x100000)}));
  if (argc < 3) return 0;
  // virtio-blk seed: header (head 0, queue size 8, indirect, capacity 1024), then RAM with a
  // 3-descriptor read request: desc table at 0, request header at 0x100, data 0x200, status 0x400.
  const std::string vdir = argv[2];
  std::vector<uint8_t> in(8 + 0x500, 0);
  auto put16 = [&](size_t off, uint16_t v) { std::memcpy(&in[off], &v, 2); };
  auto put32 = [&](size_t off, uint32_t v) { std::memcpy(&in[off], &v, 4); };
  auto put64 = [&](size_t off, uint64_t v) { std::memcpy(&in[off], &v, 8); };
  put16(2, 8);
  in[4] = 1;
  in[6] = 4;  // capacity 1024
  auto desc = [&](int i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next) {
    put64(8 + 16 * i, addr);
    put32(8 + 16 * i + 8, len);
    put16(8 + 16 * i + 12, flags);
    put16(8 + 16 * i + 14, next);
  };
  desc(0, 0x100, 16, 1, 1);
  desc(1, 0x200, 512, 3, 2);
  desc(2, 0x400, 1, 2, 0);
  put32(8 + 0x100, 0);  // VIRTIO_BLK_T_IN, sector 0
  std::ofstream(vdir + "/read", std::ios::binary)
      .write(reinterpret_cast<const char*>(in.data()), static_cast<std::streamsize>(in.size()));
  return 0;
}
