// Builds small ELF64 images in memory for loader tests and fuzz seeds.
#pragma once

#include <elf.h>

#include <cstdint>
#include <cstring>
#include <vector>

namespace edgevisor::testing {

struct TestSegment {
  uint64_t paddr;
  std::vector<uint8_t> data;
  uint64_t memsz;  // >= data.size()
};

struct TestNote {
  std::vector<uint8_t> name;  // including the NUL
  uint32_t type;
  std::vector<uint8_t> desc;
};

inline TestNote PvhNote(uint32_t entry) {
  TestNote n{{'X', 'e', 'n', 0}, 18, std::vector<uint8_t>(4)};
  std::memcpy(n.desc.data(), &entry, 4);
  return n;
}

// Layout: ehdr | phdrs | note data | segment data.
inline std::vector<uint8_t> BuildElf(const std::vector<TestSegment>& segs,
                                     const std::vector<TestNote>& notes,
                                     uint16_t machine = EM_X86_64, uint64_t entry = 0x100000) {
  auto pad4 = [](std::vector<uint8_t>& v) {
    while (v.size() % 4) v.push_back(0);
  };
  std::vector<uint8_t> note_blob;
  for (const TestNote& n : notes) {
    Elf64_Nhdr h{static_cast<Elf64_Word>(n.name.size()), static_cast<Elf64_Word>(n.desc.size()),
                 n.type};
    const auto* hp = reinterpret_cast<const uint8_t*>(&h);
    note_blob.insert(note_blob.end(), hp, hp + sizeof(h));
    note_blob.insert(note_blob.end(), n.name.begin(), n.name.end());
    pad4(note_blob);
    note_blob.insert(note_blob.end(), n.desc.begin(), n.desc.end());
    pad4(note_blob);
  }
  const size_t nph = segs.size() + (notes.empty() ? 0 : 1);
  const uint64_t ph_off = sizeof(Elf64_Ehdr);
  uint64_t data_off = ph_off + nph * sizeof(Elf64_Phdr);
  std::vector<uint8_t> out(data_off);
  Elf64_Ehdr eh{};
  std::memcpy(eh.e_ident, ELFMAG, SELFMAG);
  eh.e_ident[EI_CLASS] = ELFCLASS64;
  eh.e_ident[EI_DATA] = ELFDATA2LSB;
  eh.e_ident[EI_VERSION] = EV_CURRENT;
  eh.e_type = ET_EXEC;
  eh.e_machine = machine;
  eh.e_version = EV_CURRENT;
  eh.e_entry = entry;
  eh.e_phoff = ph_off;
  eh.e_ehsize = sizeof(Elf64_Ehdr);
  eh.e_phentsize = sizeof(Elf64_Phdr);
  eh.e_phnum = static_cast<Elf64_Half>(nph);
  std::memcpy(out.data(), &eh, sizeof(eh));
  size_t phi = 0;
  auto put_ph = [&](const Elf64_Phdr& ph) {
    std::memcpy(out.data() + ph_off + phi++ * sizeof(Elf64_Phdr), &ph, sizeof(ph));
  };
  if (!notes.empty()) {
    Elf64_Phdr ph{};
    ph.p_type = PT_NOTE;
    ph.p_offset = out.size();
    ph.p_filesz = note_blob.size();
    put_ph(ph);
    out.insert(out.end(), note_blob.begin(), note_blob.end());
  }
  for (const TestSegment& s : segs) {
    Elf64_Phdr ph{};
    ph.p_type = PT_LOAD;
    ph.p_offset = out.size();
    ph.p_paddr = ph.p_vaddr = s.paddr;
    ph.p_filesz = s.data.size();
    ph.p_memsz = s.memsz;
    ph.p_flags = PF_R | PF_X;
    put_ph(ph);
    out.insert(out.end(), s.data.begin(), s.data.end());
  }
  return out;
}

// Patches the i-th program header in place.
inline Elf64_Phdr* Phdr(std::vector<uint8_t>& elf, size_t i) {
  return reinterpret_cast<Elf64_Phdr*>(elf.data() + sizeof(Elf64_Ehdr) + i * sizeof(Elf64_Phdr));
}
inline Elf64_Ehdr* Ehdr(std::vector<uint8_t>& elf) {
  return reinterpret_cast<Elf64_Ehdr*>(elf.data());
}

}  // namespace edgevisor::testing
