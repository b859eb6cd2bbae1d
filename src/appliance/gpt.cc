#include "src/appliance/gpt.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "absl/strings/str_format.h"

namespace edgevisor::appliance::gpt {
namespace {

constexpr uint64_t kMaxEntryBytes = 1 << 20;  // 4096 entries of 256 bytes: far beyond real ones
constexpr char kSignature[8] = {'E', 'F', 'I', ' ', 'P', 'A', 'R', 'T'};

// Header fields (UEFI 2.10, 5.3.2).
constexpr size_t kHdrSize = 12;
constexpr size_t kHdrCrc = 16;
constexpr size_t kMyLba = 24;
constexpr size_t kAltLba = 32;
constexpr size_t kFirstUsable = 40;
constexpr size_t kLastUsable = 48;
constexpr size_t kEntriesLba = 72;
constexpr size_t kNumEntries = 80;
constexpr size_t kEntrySize = 84;
constexpr size_t kEntriesCrc = 88;
constexpr size_t kMinHeader = 92;
// Entry fields.
constexpr size_t kEntFirst = 32;
constexpr size_t kEntLast = 40;
constexpr size_t kEntName = 56;
constexpr size_t kEntNameChars = 36;

template <typename T>
T Get(const std::vector<uint8_t>& b, size_t off) {
  T v = 0;
  for (size_t i = 0; i < sizeof(T); ++i) v |= static_cast<T>(b[off + i]) << (8 * i);
  return v;
}

template <typename T>
void Put(std::vector<uint8_t>& b, size_t off, T v) {
  for (size_t i = 0; i < sizeof(T); ++i) b[off + i] = static_cast<uint8_t>(v >> (8 * i));
}

absl::Status Bad(const std::string& what) { return absl::FailedPreconditionError("GPT: " + what); }

uint32_t HeaderCrc(std::vector<uint8_t> hdr, uint32_t size) {
  Put<uint32_t>(hdr, kHdrCrc, 0);
  return Crc32(absl::MakeConstSpan(hdr.data(), size));
}

bool IsEmpty(const std::vector<uint8_t>& entries, size_t off) {
  for (size_t i = 0; i < 16; ++i) {
    if (entries[off + i] != 0) return false;
  }
  return true;
}

bool NameIs(const std::vector<uint8_t>& entries, size_t off, const std::string& name) {
  if (name.size() > kEntNameChars) return false;
  for (size_t i = 0; i < kEntNameChars; ++i) {
    const uint16_t c = Get<uint16_t>(entries, off + kEntName + 2 * i);
    const uint16_t want = i < name.size() ? static_cast<uint8_t>(name[i]) : 0;
    if (c != want) return false;
    if (c == 0) return true;
  }
  return true;
}

}  // namespace

uint32_t Crc32(absl::Span<const uint8_t> data) {
  uint32_t crc = 0xffffffffu;
  for (uint8_t byte : data) {
    crc ^= byte;
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

absl::StatusOr<Growth> GrowPartitionToEnd(const Disk& disk, const std::string& name) {
  const uint64_t ss = disk.sector;
  if (ss < 512 || ss > 65536 || (ss & (ss - 1)) != 0) return Bad("odd sector size");
  const uint64_t sectors = disk.bytes / ss;
  if (sectors < 68) return Bad("the disk is too small for a GPT");

  // The primary header (LBA 1).
  std::vector<uint8_t> hdr(ss);
  if (absl::Status s = disk.read(ss, absl::MakeSpan(hdr)); !s.ok()) return s;
  if (std::memcmp(hdr.data(), kSignature, 8) != 0) return Bad("no primary header at LBA 1");
  const uint32_t hsize = Get<uint32_t>(hdr, kHdrSize);
  if (hsize < kMinHeader || hsize > ss) return Bad(absl::StrFormat("header size %d", hsize));
  if (HeaderCrc(hdr, hsize) != Get<uint32_t>(hdr, kHdrCrc)) return Bad("header CRC mismatch");
  if (Get<uint64_t>(hdr, kMyLba) != 1) return Bad("the primary header's own LBA is not 1");
  const uint64_t entries_lba = Get<uint64_t>(hdr, kEntriesLba);
  const uint32_t count = Get<uint32_t>(hdr, kNumEntries);
  const uint32_t esize = Get<uint32_t>(hdr, kEntrySize);
  if (esize < 128 || esize % 8 != 0 || count == 0 ||
      static_cast<uint64_t>(count) * esize > kMaxEntryBytes) {
    return Bad(absl::StrFormat("entry array of %d x %d bytes", count, esize));
  }
  const uint64_t ebytes = static_cast<uint64_t>(count) * esize;
  const uint64_t esectors = (ebytes + ss - 1) / ss;
  const uint64_t first_usable = Get<uint64_t>(hdr, kFirstUsable);
  const uint64_t last_usable = Get<uint64_t>(hdr, kLastUsable);
  if (entries_lba < 2 || entries_lba + esectors > first_usable || first_usable > last_usable ||
      last_usable >= sectors) {
    return Bad("the header's LBAs do not fit this disk");
  }
  std::vector<uint8_t> entries(ebytes);
  if (absl::Status s = disk.read(entries_lba * ss, absl::MakeSpan(entries)); !s.ok()) return s;
  if (Crc32(entries) != Get<uint32_t>(hdr, kEntriesCrc)) return Bad("entry array CRC mismatch");

  // The partition, which must be the last one on the disk.
  Growth g;
  size_t at = SIZE_MAX;
  uint64_t highest = 0;
  for (uint32_t i = 0; i < count; ++i) {
    const size_t off = static_cast<size_t>(i) * esize;
    if (IsEmpty(entries, off)) continue;
    const uint64_t first = Get<uint64_t>(entries, off + kEntFirst);
    const uint64_t last = Get<uint64_t>(entries, off + kEntLast);
    if (first > last || first < first_usable || last > last_usable) {
      return Bad(absl::StrFormat("partition %d lies outside the usable sectors", i + 1));
    }
    highest = std::max(highest, last);
    if (NameIs(entries, off, name)) {
      if (at != SIZE_MAX) return Bad(absl::StrFormat("two partitions are named '%s'", name));
      at = off;
      g.number = static_cast<int>(i) + 1;
      g.first_lba = first;
      g.old_last_lba = last;
    }
  }
  if (at == SIZE_MAX) return Bad(absl::StrFormat("no partition named '%s'", name));
  if (g.old_last_lba != highest) {
    return Bad(absl::StrFormat("partition '%s' is not the last on the disk", name));
  }

  // The new end: backup entries and header at the disk's end; the partition up to a 1 MiB
  // boundary before them.
  const uint64_t alt = sectors - 1;
  const uint64_t backup_entries = alt - esectors;
  const uint64_t new_last_usable = backup_entries - 1;
  const uint64_t align = std::max<uint64_t>(1, (1 << 20) / ss);
  uint64_t new_last = (new_last_usable + 1) / align * align - 1;
  if (new_last < g.old_last_lba) new_last = g.old_last_lba;
  g.new_last_lba = new_last;
  const uint64_t old_alt = Get<uint64_t>(hdr, kAltLba);
  if (new_last == g.old_last_lba && old_alt == alt && last_usable == new_last_usable) {
    return g;  // nothing to do
  }
  if (new_last_usable < last_usable) return Bad("the disk is smaller than its GPT says");
  g.changed = true;

  Put<uint64_t>(entries, at + kEntLast, new_last);
  const uint32_t ecrc = Crc32(entries);
  Put<uint64_t>(hdr, kAltLba, alt);
  Put<uint64_t>(hdr, kLastUsable, new_last_usable);
  Put<uint32_t>(hdr, kEntriesCrc, ecrc);
  Put<uint32_t>(hdr, kHdrCrc, HeaderCrc(hdr, hsize));
  std::vector<uint8_t> backup = hdr;
  Put<uint64_t>(backup, kMyLba, alt);
  Put<uint64_t>(backup, kAltLba, 1);
  Put<uint64_t>(backup, kEntriesLba, backup_entries);
  Put<uint32_t>(backup, kHdrCrc, HeaderCrc(backup, hsize));

  // Backup first, then the primary: a cut in between leaves a valid primary (the old layout).
  if (absl::Status s = disk.write(backup_entries * ss, entries); !s.ok()) return s;
  if (absl::Status s = disk.write(alt * ss, backup); !s.ok()) return s;
  if (absl::Status s = disk.write(entries_lba * ss, entries); !s.ok()) return s;
  if (absl::Status s = disk.write(ss, hdr); !s.ok()) return s;
  if (old_alt != alt && old_alt > new_last && old_alt < sectors) {
    const std::vector<uint8_t> zero(ss, 0);  // the old backup header, now inside nothing
    if (absl::Status s = disk.write(old_alt * ss, zero); !s.ok()) return s;
  }
  // The protective MBR's one partition (type 0xee) covers the whole disk, up to 2^32-1 sectors.
  std::vector<uint8_t> mbr(512);
  if (absl::Status s = disk.read(0, absl::MakeSpan(mbr)); !s.ok()) return s;
  if (mbr[510] == 0x55 && mbr[511] == 0xaa && mbr[446 + 4] == 0xee) {
    Put<uint32_t>(mbr, 446 + 12,
                  static_cast<uint32_t>(std::min<uint64_t>(sectors - 1, 0xffffffffu)));
    if (absl::Status s = disk.write(0, mbr); !s.ok()) return s;
  }
  return g;
}

}  // namespace edgevisor::appliance::gpt
