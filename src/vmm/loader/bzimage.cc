#include "src/vmm/loader/bzimage.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "src/vmm/loader/read.h"

namespace edgevisor {
namespace {

absl::Status Bad(const std::string& why) {
  return absl::InvalidArgumentError(absl::StrCat("bzImage: ", why));
}

}  // namespace

bool LooksLikeBzImage(absl::Span<const uint8_t> image) {
  return image.size() >= 0x206 && ReadField<uint16_t>(image, 0x1fe) == kBootFlag &&
         ReadField<uint32_t>(image, 0x202) == kHdrSMagic;
}

absl::StatusOr<BzImage> ParseBzImage(absl::Span<const uint8_t> image) {
  if (!LooksLikeBzImage(image)) {
    return Bad("no boot flag 0xaa55 at 0x1fe and \"HdrS\" at 0x202: not a bzImage");
  }
  // The header's length: the byte at 0x201 (the jump's displacement) ends it at 0x202 + that.
  const size_t header_end = 0x202 + image[0x201];
  if (header_end < 0x268 || header_end > image.size()) {
    return Bad(
        absl::StrFormat("setup header ends at 0x%x: too short for protocol 2.12 or past "
                        "the end of the file (%d bytes)",
                        header_end, image.size()));
  }
  BzImage bz;
  bz.protocol = ReadField<uint16_t>(image, 0x206);
  if (bz.protocol < kMinBootProtocol) {
    return Bad(absl::StrFormat("boot protocol %d.%02d is older than 2.12 (no 64-bit entry)",
                               bz.protocol >> 8, bz.protocol & 0xff));
  }
  uint32_t setup_sects = image[0x1f1];
  if (setup_sects == 0) setup_sects = 4;  // the protocol's rule for old images
  bz.setup_bytes = (setup_sects + 1) * 512;
  if (bz.setup_bytes < header_end || bz.setup_bytes >= image.size()) {
    return Bad(absl::StrFormat("setup_sects %d puts the kernel at 0x%x, outside the %d-byte file",
                               setup_sects, bz.setup_bytes, image.size()));
  }
  const uint8_t loadflags = image[0x211];
  if (!(loadflags & kLoadedHigh)) return Bad("not a loaded-high (bzImage) kernel");
  bz.xloadflags = ReadField<uint16_t>(image, 0x236);
  if (!(bz.xloadflags & kXlfKernel64)) return Bad("no 64-bit entry point (XLF_KERNEL_64)");
  // syssize: the protected-mode code in 16-byte paragraphs (rounded up). It must fit the file.
  // Like other loaders we load everything after the setup code: signed distribution kernels
  // carry their signature there, which is harmless above the kernel.
  const uint64_t syssize = uint64_t{ReadField<uint32_t>(image, 0x1f4)} * 16;
  const uint64_t rest = image.size() - bz.setup_bytes;
  if (syssize == 0 || syssize > rest + 16) {
    return Bad(absl::StrFormat("syssize says %d bytes of kernel, the file has %d after setup",
                               syssize, rest));
  }
  bz.kernel = image.subspan(bz.setup_bytes);
  bz.initrd_addr_max = ReadField<uint32_t>(image, 0x22c);
  bz.kernel_alignment = ReadField<uint32_t>(image, 0x230);
  bz.relocatable = image[0x234] != 0;
  bz.cmdline_size = ReadField<uint32_t>(image, 0x238);
  bz.pref_address = ReadField<uint64_t>(image, 0x258);
  bz.init_size = ReadField<uint32_t>(image, 0x260);
  if (bz.kernel_alignment == 0 || (bz.kernel_alignment & (bz.kernel_alignment - 1)) != 0 ||
      bz.kernel_alignment > (1u << 30)) {
    return Bad(absl::StrFormat("kernel_alignment 0x%x is not a power of two up to 1 GiB",
                               bz.kernel_alignment));
  }
  if (bz.init_size < syssize) {
    return Bad(
        absl::StrFormat("init_size 0x%x is smaller than the kernel (0x%x)", bz.init_size, syssize));
  }
  bz.header.assign(image.begin() + kSetupHeaderOffset, image.begin() + header_end);
  return bz;
}

}  // namespace edgevisor
