#include "src/vmm/loader/elf.h"

#include <elf.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/str_format.h"
#include "src/vmm/loader/read.h"

namespace edgevisor {
namespace {

uint64_t AlignUp4(uint64_t v) { return (v + 3) & ~uint64_t{3}; }

absl::Status ParseNotes(absl::Span<const uint8_t> file, const Elf64_Phdr& ph, ElfImage& img) {
  if (ph.p_offset > file.size() || ph.p_filesz > file.size() - ph.p_offset) {
    return absl::InvalidArgumentError(
        absl::StrFormat("PT_NOTE at offset 0x%x size 0x%x is outside the file (size 0x%x)",
                        ph.p_offset, ph.p_filesz, file.size()));
  }
  absl::Span<const uint8_t> notes = file.subspan(ph.p_offset, ph.p_filesz);
  uint64_t off = 0;
  while (off < notes.size()) {
    auto nh = ReadAt<Elf64_Nhdr>(notes, off);
    if (!nh) return absl::InvalidArgumentError("truncated ELF note header");
    const uint64_t name_off = off + sizeof(Elf64_Nhdr);
    const uint64_t desc_off = name_off + AlignUp4(nh->n_namesz);
    const uint64_t next = desc_off + AlignUp4(nh->n_descsz);
    // n_namesz/n_descsz are 32-bit, so these sums cannot wrap a uint64_t.
    if (desc_off > notes.size() || next > notes.size() + 3 ||
        desc_off + nh->n_descsz > notes.size()) {
      return absl::InvalidArgumentError(
          absl::StrFormat("ELF note at offset 0x%x (namesz %d, descsz %d) runs past its segment",
                          ph.p_offset + off, nh->n_namesz, nh->n_descsz));
    }
    const bool is_xen = nh->n_namesz == 4 && std::memcmp(notes.data() + name_off, "Xen", 4) == 0;
    if (is_xen && nh->n_type == kXenElfNotePhys32Entry) {
      if (nh->n_descsz == 4) {
        img.pvh_entry = *ReadAt<uint32_t>(notes, desc_off);
      } else if (nh->n_descsz == 8) {
        img.pvh_entry = *ReadAt<uint64_t>(notes, desc_off);
      } else {
        return absl::InvalidArgumentError(absl::StrFormat(
            "Xen PHYS32_ENTRY note has descriptor size %d (expected 4 or 8)", nh->n_descsz));
      }
      if (*img.pvh_entry > 0xffffffffull) {
        return absl::InvalidArgumentError(
            absl::StrFormat("Xen PHYS32_ENTRY 0x%x is not a 32-bit address", *img.pvh_entry));
      }
    }
    off = std::min<uint64_t>(next, notes.size());
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ElfImage> ParseElf64(absl::Span<const uint8_t> file, uint16_t expected_machine) {
  auto eh = ReadAt<Elf64_Ehdr>(file, 0);
  if (file.size() < SELFMAG || std::memcmp(file.data(), ELFMAG, SELFMAG) != 0) {
    return absl::InvalidArgumentError("not an ELF file (bad magic)");
  }
  if (!eh) return absl::InvalidArgumentError("truncated ELF header");
  if (eh->e_ident[EI_CLASS] != ELFCLASS64) {
    return absl::InvalidArgumentError("not a 64-bit ELF (EI_CLASS is not ELFCLASS64)");
  }
  if (eh->e_ident[EI_DATA] != ELFDATA2LSB) {
    return absl::InvalidArgumentError("not a little-endian ELF");
  }
  if (eh->e_machine != expected_machine) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "ELF is for machine %d, this VMM boots machine %d", eh->e_machine, expected_machine));
  }
  if (eh->e_type != ET_EXEC) {
    return absl::InvalidArgumentError("ELF is not an executable (e_type is not ET_EXEC)");
  }
  if (eh->e_phentsize != sizeof(Elf64_Phdr)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("ELF e_phentsize is %d, expected %d", eh->e_phentsize, sizeof(Elf64_Phdr)));
  }
  if (eh->e_phnum == 0) return absl::InvalidArgumentError("ELF has no program headers");
  const uint64_t ph_bytes = uint64_t{eh->e_phnum} * sizeof(Elf64_Phdr);
  if (eh->e_phoff > file.size() || ph_bytes > file.size() - eh->e_phoff) {
    return absl::InvalidArgumentError(
        absl::StrFormat("ELF program headers (offset 0x%x, %d entries) run past the end of file",
                        eh->e_phoff, eh->e_phnum));
  }

  ElfImage img;
  img.machine = eh->e_machine;
  img.entry = eh->e_entry;
  for (uint16_t i = 0; i < eh->e_phnum; ++i) {
    const Elf64_Phdr ph = *ReadAt<Elf64_Phdr>(file, eh->e_phoff + uint64_t{i} * sizeof(Elf64_Phdr));
    if (ph.p_type == PT_NOTE) {
      absl::Status s = ParseNotes(file, ph, img);
      if (!s.ok()) return s;
      continue;
    }
    if (ph.p_type != PT_LOAD || ph.p_memsz == 0) continue;
    if (ph.p_filesz > ph.p_memsz) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "segment %d: p_filesz 0x%x is larger than p_memsz 0x%x", i, ph.p_filesz, ph.p_memsz));
    }
    if (ph.p_offset > file.size() || ph.p_filesz > file.size() - ph.p_offset) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "segment %d: file data at offset 0x%x size 0x%x is outside the file (size 0x%x); "
          "truncated?",
          i, ph.p_offset, ph.p_filesz, file.size()));
    }
    if (ph.p_paddr + ph.p_memsz < ph.p_paddr) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "segment %d: physical range 0x%x+0x%x wraps around", i, ph.p_paddr, ph.p_memsz));
    }
    img.loads.push_back({ph.p_paddr, ph.p_offset, ph.p_filesz, ph.p_memsz});
  }
  if (img.loads.empty()) return absl::InvalidArgumentError("ELF has no loadable segments");

  std::vector<ElfSegment> sorted = img.loads;
  std::sort(sorted.begin(), sorted.end(),
            [](const ElfSegment& a, const ElfSegment& b) { return a.paddr < b.paddr; });
  for (size_t i = 1; i < sorted.size(); ++i) {
    if (sorted[i].paddr < sorted[i - 1].paddr + sorted[i - 1].memsz) {
      return absl::InvalidArgumentError(absl::StrFormat("segments overlap: 0x%x+0x%x and 0x%x+0x%x",
                                                        sorted[i - 1].paddr, sorted[i - 1].memsz,
                                                        sorted[i].paddr, sorted[i].memsz));
    }
  }
  return img;
}

namespace {

// Zeroes `dst` without touching what already reads as zero. Guest RAM starts as untouched
// anonymous memory, which reads as zeros and costs the host nothing until it is written; a plain
// memset of a payload's .bss (its boot stack, say) would make the host allocate every page of it.
void ZeroUntouched(absl::Span<uint8_t> dst) {
  constexpr size_t kChunk = 4096;
  size_t i = 0;
  while (i < dst.size()) {
    const size_t n =
        std::min(kChunk - reinterpret_cast<uintptr_t>(dst.data() + i) % kChunk, dst.size() - i);
    uint8_t* p = dst.data() + i;
    if (std::any_of(p, p + n, [](uint8_t b) { return b != 0; })) std::memset(p, 0, n);
    i += n;
  }
}

}  // namespace

absl::Status LoadElfSegments(const ElfImage& image, absl::Span<const uint8_t> file,
                             const GuestMemory& mem) {
  // Check every segment first so that a bad image leaves guest memory untouched.
  for (const ElfSegment& seg : image.loads) {
    if (!mem.Contains(seg.paddr, seg.memsz)) {
      return absl::InvalidArgumentError(
          absl::StrFormat("segment at physical 0x%x size 0x%x does not fit in guest RAM (%d MiB)",
                          seg.paddr, seg.memsz, mem.total_size() >> 20));
    }
  }
  for (const ElfSegment& seg : image.loads) {
    absl::Span<uint8_t> dst = *mem.Translate(seg.paddr, seg.memsz);
    std::memcpy(dst.data(), file.data() + seg.file_offset, seg.filesz);
    ZeroUntouched(dst.subspan(seg.filesz));
  }
  return absl::OkStatus();
}

}  // namespace edgevisor
