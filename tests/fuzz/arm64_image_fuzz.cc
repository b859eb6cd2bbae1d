// libFuzzer target: the arm64 Image header parser. Any input must parse to an error or to a
// header whose offsets and sizes the loader can trust: a page-aligned text_offset below 2 MiB
// and an image_size that covers the file.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "src/vmm/loader/arm64_image.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto img = edgevisor::ParseArm64Image(absl::Span<const uint8_t>(data, size));
  if (img.ok()) {
    if (img->text_offset >= edgevisor::kArm64ImageAlign || img->text_offset % 4096 != 0 ||
        img->image_size < size || img->file.size() != size) {
      std::abort();
    }
  }
  return 0;
}
