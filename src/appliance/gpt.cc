#include "src/appliance/gpt.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "absl/strings/str_format.h"
#include "src/base/errors.h"

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

namespace {

// The primary GPT, read and checked: the header (LBA 1) and the entry array.
struct Table {
  uint64_t sectors = 0;  // of the disk
  std::vector<uint8_t> hdr;
  uint32_t hsize = 0;
  uint64_t entries_lba = 0, esectors = 0, first_usable = 0, last_usable = 0;
  uint32_t count = 0, esize = 0;
  std::vector<uint8_t> entries;
};

absl::StatusOr<Table> ReadTable(const Disk& disk) {
  const uint64_t ss = disk.sector;
  if (ss < 512 || ss > 65536 || (ss & (ss - 1)) != 0) return Bad("odd sector size");
  Table t;
  t.sectors = disk.bytes / ss;
  if (t.sectors < 68) return Bad("the disk is too small for a GPT");
  t.hdr.resize(ss);
  if (absl::Status s = disk.read(ss, absl::MakeSpan(t.hdr)); !s.ok()) return s;
  if (std::memcmp(t.hdr.data(), kSignature, 8) != 0) return Bad("no primary header at LBA 1");
  t.hsize = Get<uint32_t>(t.hdr, kHdrSize);
  if (t.hsize < kMinHeader || t.hsize > ss) return Bad(absl::StrFormat("header size %d", t.hsize));
  if (HeaderCrc(t.hdr, t.hsize) != Get<uint32_t>(t.hdr, kHdrCrc)) {
    return Bad("header CRC mismatch");
  }
  if (Get<uint64_t>(t.hdr, kMyLba) != 1) return Bad("the primary header's own LBA is not 1");
  t.entries_lba = Get<uint64_t>(t.hdr, kEntriesLba);
  t.count = Get<uint32_t>(t.hdr, kNumEntries);
  t.esize = Get<uint32_t>(t.hdr, kEntrySize);
  if (t.esize < 128 || t.esize % 8 != 0 || t.count == 0 ||
      static_cast<uint64_t>(t.count) * t.esize > kMaxEntryBytes) {
    return Bad(absl::StrFormat("entry array of %d x %d bytes", t.count, t.esize));
  }
  const uint64_t ebytes = static_cast<uint64_t>(t.count) * t.esize;
  t.esectors = (ebytes + ss - 1) / ss;
  t.first_usable = Get<uint64_t>(t.hdr, kFirstUsable);
  t.last_usable = Get<uint64_t>(t.hdr, kLastUsable);
  if (t.entries_lba < 2 || t.entries_lba + t.esectors > t.first_usable ||
      t.first_usable > t.last_usable || t.last_usable >= t.sectors) {
    return Bad("the header's LBAs do not fit this disk");
  }
  t.entries.resize(ebytes);
  if (absl::Status s = disk.read(t.entries_lba * ss, absl::MakeSpan(t.entries)); !s.ok()) return s;
  if (Crc32(t.entries) != Get<uint32_t>(t.hdr, kEntriesCrc)) {
    return Bad("entry array CRC mismatch");
  }
  return t;
}

// The partition called `name`, which must be the last one on the disk; `at` is its entry's
// offset in the array.
absl::StatusOr<Growth> FindLastPartition(const Table& t, const std::string& name, size_t& at) {
  Growth g;
  at = SIZE_MAX;
  uint64_t highest = 0;
  for (uint32_t i = 0; i < t.count; ++i) {
    const size_t off = static_cast<size_t>(i) * t.esize;
    if (IsEmpty(t.entries, off)) continue;
    const uint64_t first = Get<uint64_t>(t.entries, off + kEntFirst);
    const uint64_t last = Get<uint64_t>(t.entries, off + kEntLast);
    if (first > last || first < t.first_usable || last > t.last_usable) {
      return Bad(absl::StrFormat("partition %d lies outside the usable sectors", i + 1));
    }
    highest = std::max(highest, last);
    if (NameIs(t.entries, off, name)) {
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
  return g;
}

// Writes the grown table: backup entries and header at the disk's end first, then the
// primary, so that a cut in between leaves a valid primary (the old layout). Then the
// protective MBR's one partition (type 0xee) is made to cover the whole disk.
absl::Status WriteGrownTable(const Disk& disk, Table& t, size_t at, uint64_t new_last,
                             uint64_t new_last_usable) {
  const uint64_t ss = disk.sector;
  const uint64_t alt = t.sectors - 1;
  const uint64_t backup_entries = alt - t.esectors;
  const uint64_t old_alt = Get<uint64_t>(t.hdr, kAltLba);
  Put<uint64_t>(t.entries, at + kEntLast, new_last);
  const uint32_t ecrc = Crc32(t.entries);
  Put<uint64_t>(t.hdr, kAltLba, alt);
  Put<uint64_t>(t.hdr, kLastUsable, new_last_usable);
  Put<uint32_t>(t.hdr, kEntriesCrc, ecrc);
  Put<uint32_t>(t.hdr, kHdrCrc, HeaderCrc(t.hdr, t.hsize));
  std::vector<uint8_t> backup = t.hdr;
  Put<uint64_t>(backup, kMyLba, alt);
  Put<uint64_t>(backup, kAltLba, 1);
  Put<uint64_t>(backup, kEntriesLba, backup_entries);
  Put<uint32_t>(backup, kHdrCrc, HeaderCrc(backup, t.hsize));

  EV_RETURN_IF_ERROR(disk.write(backup_entries * ss, t.entries));
  EV_RETURN_IF_ERROR(disk.write(alt * ss, backup));
  EV_RETURN_IF_ERROR(disk.write(t.entries_lba * ss, t.entries));
  EV_RETURN_IF_ERROR(disk.write(ss, t.hdr));
  if (old_alt != alt && old_alt > new_last && old_alt < t.sectors) {
    const std::vector<uint8_t> zero(ss, 0);  // the old backup header, now inside nothing
    EV_RETURN_IF_ERROR(disk.write(old_alt * ss, zero));
  }
  // The protective MBR covers up to 2^32-1 sectors.
  std::vector<uint8_t> mbr(512);
  EV_RETURN_IF_ERROR(disk.read(0, absl::MakeSpan(mbr)));
  if (mbr[510] == 0x55 && mbr[511] == 0xaa && mbr[446 + 4] == 0xee) {
    Put<uint32_t>(mbr, 446 + 12,
                  static_cast<uint32_t>(std::min<uint64_t>(t.sectors - 1, 0xffffffffu)));
    EV_RETURN_IF_ERROR(disk.write(0, mbr));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Growth> GrowPartitionToEnd(const Disk& disk, const std::string& name) {
  EV_ASSIGN_OR_RETURN(Table t, ReadTable(disk));
  size_t at = 0;
  EV_ASSIGN_OR_RETURN(Growth g, FindLastPartition(t, name, at));
  // The new end: backup entries and header at the disk's end; the partition up to a 1 MiB
  // boundary before them.
  const uint64_t alt = t.sectors - 1;
  const uint64_t new_last_usable = alt - t.esectors - 1;
  const uint64_t align = std::max<uint64_t>(1, (1 << 20) / disk.sector);
  uint64_t new_last = (new_last_usable + 1) / align * align - 1;
  if (new_last < g.old_last_lba) new_last = g.old_last_lba;
  g.new_last_lba = new_last;
  if (new_last == g.old_last_lba && Get<uint64_t>(t.hdr, kAltLba) == alt &&
      t.last_usable == new_last_usable) {
    return g;  // nothing to do
  }
  if (new_last_usable < t.last_usable) return Bad("the disk is smaller than its GPT says");
  g.changed = true;
  EV_RETURN_IF_ERROR(WriteGrownTable(disk, t, at, new_last, new_last_usable));
  return g;
}

}  // namespace edgevisor::appliance::gpt
