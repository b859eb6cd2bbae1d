// Guest RAM: the mmap'd regions and the one bounds-checked GPA -> HVA translation.
//
// Every device reaches guest memory through Translate() (or the Read/Write helpers built on it).
// A range is valid only if it lies entirely inside one region, so no guest-supplied address or
// length can make the VMM touch host memory outside guest RAM.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstring>
#include <memory>
#include <type_traits>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace edgevisor {

// A guest-physical range [start, start + size).
struct GuestRange {
  uint64_t start = 0;
  uint64_t size = 0;
  // end() may be 2^64 only for a range that ends exactly there; callers check overflow first.
  uint64_t end() const { return start + size; }
};

struct GuestRegion {
  uint64_t gpa = 0;
  uint64_t size = 0;
  uint8_t* hva = nullptr;
};

class GuestMemory {
 public:
  // Maps one anonymous MAP_NORESERVE region per range. Ranges must be page aligned, non-empty,
  // sorted and non-overlapping. With BACKING_FD (a snapshot's memory file, at least as long as
  // the ranges together), the regions map that file privately instead, back to back from
  // offset 0.
  static absl::StatusOr<GuestMemory> Create(const std::vector<GuestRange>& layout,
                                            int backing_fd = -1);

  GuestMemory() = default;
  ~GuestMemory();
  GuestMemory(GuestMemory&& o) noexcept;
  GuestMemory& operator=(GuestMemory&& o) noexcept;
  GuestMemory(const GuestMemory&) = delete;
  GuestMemory& operator=(const GuestMemory&) = delete;

  // True iff [gpa, gpa + len) lies inside one region. len == 0 is valid for any gpa in a region.
  bool Contains(uint64_t gpa, uint64_t len) const;

  // The one translation. Fails with OutOfRange unless the whole range is inside one region.
  absl::StatusOr<absl::Span<uint8_t>> Translate(uint64_t gpa, uint64_t len) const;

  absl::Status Write(uint64_t gpa, absl::Span<const uint8_t> data) const;
  absl::Status Read(uint64_t gpa, absl::Span<uint8_t> out) const;

  template <typename T>
  absl::StatusOr<T> ReadObj(uint64_t gpa) const {
    static_assert(std::is_trivially_copyable_v<T>);
    T v;
    absl::Status s = Read(gpa, absl::Span<uint8_t>(reinterpret_cast<uint8_t*>(&v), sizeof(T)));
    if (!s.ok()) return s;
    return v;
  }
  template <typename T>
  absl::Status WriteObj(uint64_t gpa, const T& v) const {
    static_assert(std::is_trivially_copyable_v<T>);
    return Write(gpa, absl::Span<const uint8_t>(reinterpret_cast<const uint8_t*>(&v), sizeof(T)));
  }

  // Gives the host pages behind [gpa, gpa + len) back to the host kernel (madvise
  // MADV_DONTNEED: the guest reads zeros there next, or the snapshot file's bytes where RAM maps
  // one). Only whole host pages inside the range are released; the range must lie in one region.
  absl::Status Discard(uint64_t gpa, uint64_t len) const;

  const std::vector<GuestRegion>& regions() const { return regions_; }
  uint64_t total_size() const;

  // Dirty-page tracking of the VMM's own writes, for Diff snapshots: KVM's dirty log sees only
  // what the vCPUs write, not what device threads write through Translate (DMA). Once on, every
  // page a Translate covers is marked (reads too: a Diff snapshot may hold a page more, never
  // one less). Off until TrackDirty(), which must come before any device runs.
  static constexpr uint64_t kDirtyPageSize = 4096;
  // The 64-bit words of a dirty bitmap for SIZE bytes (KVM_GET_DIRTY_LOG's layout too).
  static constexpr size_t DirtyBitmapWords(uint64_t size) {
    return static_cast<size_t>((size / kDirtyPageSize + 63) / 64);
  }
  void TrackDirty();
  bool tracking_dirty() const { return !dirty_.empty(); }
  // Region REGION's marked pages, one bit per page (bit i of word w: page 64 * w + i), cleared.
  std::vector<uint64_t> TakeDirty(size_t region) const;

 private:
  void Unmap();
  void MarkDirty(size_t region, uint64_t offset, uint64_t len) const;
  std::vector<GuestRegion> regions_;
  std::vector<std::unique_ptr<std::atomic<uint64_t>[]>> dirty_;  // one bitmap per region
};

}  // namespace edgevisor
