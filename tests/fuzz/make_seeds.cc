// Writes seed inputs for the fuzz targets: valid images and a few near-misses.
//   make_seeds ELF_DIR [VIRTIO_BLK_DIR] | --bzimage DIR | --arm64-image DIR | --snapshot DIR
#include <zlib.h>

#include <cstring>
#include <fstream>
#include <string>

#include "src/vmm/snapshot/file.h"
#include "src/vmm/snapshot/vm_state.h"
#include "tests/unit/arm64_image_builder.h"
#include "tests/unit/bzimage_builder.h"
#include "tests/unit/elf_builder.h"

namespace {

void Put(const std::string& dir, const std::string& name, const std::vector<uint8_t>& d) {
  std::ofstream(dir + "/" + name, std::ios::binary)
      .write(reinterpret_cast<const char*>(d.data()), static_cast<std::streamsize>(d.size()));
}

void PutString(const std::string& dir, const std::string& name, const std::string& d) {
  Put(dir, name, std::vector<uint8_t>(d.begin(), d.end()));
}

// A state file as snapshot/create writes it: one vCPU, 64 MiB, a drive and a network interface
// (DEVICES false: none), encoded for this host's architecture.
std::string SnapshotSeed(bool devices) {
  using namespace edgevisor;  // NOLINT(build/namespaces)
  snapshot::VmState s;
  s.config.machine.vcpus = 1;
  s.config.machine.mem_mib = 64;
  s.mem_bytes = uint64_t{64} << 20;
  if (devices) {
    s.config.drives.push_back({.path = "/rootfs.ext4", .id = "rootfs"});
    s.config.nets.push_back({.id = "eth0", .tap = "tap0", .mac = DefaultMac(0)});
    s.virtio = {snapshot::Json::object(), snapshot::Json::object()};
  }
#if defined(__x86_64__)
  VcpuState v;
  kvm_cpuid_entry2 leaf{};
  leaf.function = 1;
  leaf.ecx = 1u << 31;
  v.cpuid = {leaf};
  v.mp_state.mp_state = KVM_MP_STATE_RUNNABLE;
  v.regs.rip = 0x100000;
  v.xsave.resize(4096);
  v.msrs = {{0x10, 0, 1}};
  s.vcpus.push_back(v);
  s.irqchip.pic_master.chip_id = KVM_IRQCHIP_PIC_MASTER;
  s.irqchip.pic_slave.chip_id = KVM_IRQCHIP_PIC_SLAVE;
  s.irqchip.ioapic.chip_id = KVM_IRQCHIP_IOAPIC;
#endif
  s.uart = {{"rx", snapshot::Json::array()},
            {"ier", 1},
            {"lcr", 3},
            {"mcr", 0},
            {"scr", 0},
            {"dll", 1},
            {"dlm", 0},
            {"fifo_enabled", true},
            {"thre_pending", false}};
  s.i8042 = {{"out", snapshot::Json::array()},
             {"ctr", 5},
             {"out_port", 1},
             {"pending_cmd", 0},
             {"last_was_command", false}};
  return snapshot::Encode(snapshot::ToJson(s), "make_seeds");
}

// A near-miss: a valid header around CBOR maps nested 20000 deep ({"a": {"a": ... 0}}), which
// Decode must refuse at its depth limit. Without the limit the reader's recursion overflows the
// stack on this one seed (under ASan, 20000 levels are plenty; max_len allows 65544 bytes).
std::string DeepSnapshotSeed() {
  using edgevisor::snapshot::kHeaderSize;
  std::string state;
  for (int i = 0; i < 20000; ++i) state += "\xa1\x61\x61";
  state += '\0';
  std::string f = edgevisor::snapshot::Encode(edgevisor::snapshot::Json(0), "make_seeds")
                      .substr(0, kHeaderSize);
  const uint64_t length = state.size();
  std::memcpy(f.data() + 16, &length, 8);  // little endian, as file.h has it (x86_64, aarch64)
  std::memset(f.data() + 24, 0, 4);
  f += state;
  const uint32_t crc = static_cast<uint32_t>(
      crc32(crc32(0L, Z_NULL, 0), reinterpret_cast<const Bytef*>(f.data()), f.size()));
  std::memcpy(f.data() + 24, &crc, 4);
  return f;
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
  if (std::string(argv[1]) == "--snapshot" && argc == 3) {
    PutString(argv[2], "valid", SnapshotSeed(true));
    PutString(argv[2], "no_devices", SnapshotSeed(false));
    PutString(argv[2], "deep_maps", DeepSnapshotSeed());
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
