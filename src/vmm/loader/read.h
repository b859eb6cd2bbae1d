// Reading fixed-size fields out of a kernel image file. The formats we load (ELF64, bzImage,
// arm64 Image) are little-endian, as are the hosts edgevisor runs on, so a field is a memcpy.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <optional>

#include "absl/types/span.h"

namespace edgevisor {

static_assert(std::endian::native == std::endian::little,
              "the image loaders read little-endian fields in host byte order");

// The T at `off`; the caller has checked that it lies inside `file`.
template <typename T>
T ReadField(absl::Span<const uint8_t> file, size_t off) {
  T v;
  std::memcpy(&v, file.data() + off, sizeof(T));
  return v;
}

// The T at `off` if it lies inside `file`.
template <typename T>
std::optional<T> ReadAt(absl::Span<const uint8_t> file, uint64_t off) {
  if (off > file.size() || sizeof(T) > file.size() - off) return std::nullopt;
  return ReadField<T>(file, off);
}

}  // namespace edgevisor
