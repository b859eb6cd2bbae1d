// libFuzzer target: what the update agent reads from a bundle and from the disk before it trusts
// anything: the header, the manifest (JSON), the trusted-keys file, a signature check, and GRUB's
// environment block. Any input gives a value or an error.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "src/appliance/bundle.h"
#include "src/appliance/grubenv.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace edgevisor::appliance;
  const absl::Span<const uint8_t> in(data, size);
  auto len = bundle::ParseHeader(in);
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  if (len.ok() && size >= bundle::kHeaderSize + *len) {
    const std::string_view manifest = text.substr(bundle::kHeaderSize, *len);
    auto m = bundle::ParseManifest(manifest);
    if (m.ok()) {
      auto running = bundle::ParseVersion("1.2.3");
      (void)bundle::CheckApplicable(*m, "x86_64", *running);
    }
    const size_t signed_len = bundle::kHeaderSize + *len;
    bundle::PublicKey key{};
    (void)bundle::VerifySignature(in.subspan(0, signed_len), in.subspan(signed_len), {key});
  } else {
    (void)bundle::ParseManifest(text);
  }
  (void)bundle::ParseKeys(text);
  (void)bundle::ParseVersion(text.substr(0, 32));
  std::string block(text.substr(0, grubenv::kBlockSize));
  block.resize(grubenv::kBlockSize, '#');
  auto env = grubenv::Parse(block);
  if (env.ok()) {
    auto again = grubenv::Render(grubenv::WithAb(*env, grubenv::ReadAb(*env)));
    if (again.ok() && !grubenv::Parse(*again).ok()) __builtin_trap();  // must read its own output
  }
  return 0;
}
