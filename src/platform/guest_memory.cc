#include "src/platform/guest_memory.h"

#include <sys/mman.h>
#include <unistd.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "src/base/errors.h"

namespace edgevisor {

absl::StatusOr<GuestMemory> GuestMemory::Create(const std::vector<GuestRange>& layout,
                                                int backing_fd) {
  const uint64_t page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  GuestMemory mem;
  uint64_t prev_end = 0;
  uint64_t file_offset = 0;  // the regions lie back to back in a backing file
  for (size_t i = 0; i < layout.size(); ++i) {
    const GuestRange& r = layout[i];
    if (r.size == 0 || r.start % page != 0 || r.size % page != 0) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "guest memory range %d (0x%x+0x%x) is empty or not page aligned", i, r.start, r.size));
    }
    if (r.start + r.size < r.start || (i > 0 && r.start < prev_end)) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "guest memory range %d (0x%x+0x%x) overlaps or wraps", i, r.start, r.size));
    }
    prev_end = r.start + r.size;
    // MAP_NORESERVE: a 4 GiB guest that touches 64 MiB costs 64 MiB, and no swap is reserved.
    // From a file: MAP_PRIVATE, so every VM restored from one memory file shares its page cache
    // until it writes a page (copy-on-write), and none writes to the file.
    void* p = backing_fd < 0
                  ? mmap(nullptr, r.size, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
                  : mmap(nullptr, r.size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_NORESERVE,
                         backing_fd, static_cast<off_t>(file_offset));
    if (p == MAP_FAILED) {
      return ErrnoError(absl::StrFormat("mmap of %d MiB guest RAM", r.size >> 20));
    }
    file_offset += r.size;
    mem.regions_.push_back({r.start, r.size, static_cast<uint8_t*>(p)});
    // Guest RAM is never inherited by a child (nothing we fork needs it), and the distinct VMA
    // flag keeps the kernel from merging it with neighbouring anonymous mappings, so tools see
    // exactly one mapping of the guest's size in /proc/PID/smaps.
    if (madvise(p, r.size, MADV_DONTFORK) != 0) {
      return ErrnoError(absl::StrFormat("madvise(MADV_DONTFORK) of guest RAM at 0x%x", r.start));
    }
  }
  return mem;
}

GuestMemory::~GuestMemory() { Unmap(); }

GuestMemory::GuestMemory(GuestMemory&& o) noexcept
    : regions_(std::exchange(o.regions_, {})), dirty_(std::exchange(o.dirty_, {})) {}

GuestMemory& GuestMemory::operator=(GuestMemory&& o) noexcept {
  if (this != &o) {
    Unmap();
    regions_ = std::exchange(o.regions_, {});
    dirty_ = std::exchange(o.dirty_, {});
  }
  return *this;
}

void GuestMemory::TrackDirty() {
  if (tracking_dirty()) return;
  for (const GuestRegion& r : regions_) {
    const size_t words = DirtyBitmapWords(r.size);
    auto bits = std::make_unique<std::atomic<uint64_t>[]>(words);
    for (size_t i = 0; i < words; ++i) bits[i].store(0, std::memory_order_relaxed);
    dirty_.push_back(std::move(bits));
  }
}

void GuestMemory::MarkDirty(size_t region, uint64_t offset, uint64_t len) const {
  if (len == 0) return;
  std::atomic<uint64_t>* bits = dirty_[region].get();
  const uint64_t last = (offset + len - 1) / kDirtyPageSize;
  for (uint64_t page = offset / kDirtyPageSize; page <= last; ++page) {
    bits[page / 64].fetch_or(uint64_t{1} << (page % 64), std::memory_order_relaxed);
  }
}

std::vector<uint64_t> GuestMemory::TakeDirty(size_t region) const {
  if (region >= dirty_.size()) return {};
  const size_t words = DirtyBitmapWords(regions_[region].size);
  std::vector<uint64_t> out(words);
  for (size_t i = 0; i < words; ++i) {
    out[i] = dirty_[region][i].exchange(0, std::memory_order_relaxed);
  }
  return out;
}

void GuestMemory::Unmap() {
  for (const GuestRegion& r : regions_) munmap(r.hva, r.size);
  regions_.clear();
  dirty_.clear();
}

uint64_t GuestMemory::total_size() const {
  uint64_t total = 0;
  for (const GuestRegion& r : regions_) total += r.size;
  return total;
}

bool GuestMemory::Contains(uint64_t gpa, uint64_t len) const { return Translate(gpa, len).ok(); }

absl::StatusOr<absl::Span<uint8_t>> GuestMemory::Translate(uint64_t gpa, uint64_t len) const {
  for (size_t i = 0; i < regions_.size(); ++i) {
    const GuestRegion& r = regions_[i];
    if (gpa < r.gpa) continue;
    const uint64_t off = gpa - r.gpa;
    // Written so that no sum can wrap: off <= size and len <= size - off.
    if (off > r.size || len > r.size - off) continue;
    if (!dirty_.empty()) MarkDirty(i, off, len);
    return absl::Span<uint8_t>(r.hva + off, len);
  }
  return absl::OutOfRangeError(
      absl::StrFormat("guest range 0x%x+0x%x is outside guest RAM", gpa, len));
}

absl::Status GuestMemory::Discard(uint64_t gpa, uint64_t len) const {
  EV_ASSIGN_OR_RETURN(absl::Span<uint8_t> span, Translate(gpa, len));
  const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const uintptr_t start = (reinterpret_cast<uintptr_t>(span.data()) + page - 1) & ~(page - 1);
  const uintptr_t end = (reinterpret_cast<uintptr_t>(span.data()) + span.size()) & ~(page - 1);
  if (end <= start) return absl::OkStatus();
  if (madvise(reinterpret_cast<void*>(start), end - start, MADV_DONTNEED) != 0) {
    return ErrnoError(absl::StrFormat("madvise(MADV_DONTNEED) of guest 0x%x+0x%x", gpa, len));
  }
  return absl::OkStatus();
}

absl::Status GuestMemory::Write(uint64_t gpa, absl::Span<const uint8_t> data) const {
  auto dst = Translate(gpa, data.size());
  if (!dst.ok()) return dst.status();
  if (!data.empty()) std::memcpy(dst->data(), data.data(), data.size());
  return absl::OkStatus();
}

absl::Status GuestMemory::Read(uint64_t gpa, absl::Span<uint8_t> out) const {
  auto src = Translate(gpa, out.size());
  if (!src.ok()) return src.status();
  if (!out.empty()) std::memcpy(out.data(), src->data(), out.size());
  return absl::OkStatus();
}

}  // namespace edgevisor
