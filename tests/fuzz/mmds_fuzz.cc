// libFuzzer target: the metadata service's guest side. The input is a run of Ethernet frames as
// a guest sends them to the MMDS address (each: a 2-byte length, then the frame), into one
// network stack whose service holds a small store; every frame it answers with is checked to be
// whole. The first frame's bytes also go to the HTTP parser alone. Nothing may crash, leak, or
// hold more than its bounds.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "src/devices/net/mmds_http.h"
#include "src/devices/net/mmds_service.h"
#include "src/devices/net/mmds_stack.h"

using namespace edgevisor::mmds;  // NOLINT(build/namespaces)

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  (void)ParseRequest(std::string(reinterpret_cast<const char*>(data), size));
  auto service = std::make_shared<Service>();
  (void)service->Put(nlohmann::json::parse(R"({"latest": {"meta-data": {"id": "i-1"}}})"));
  if (size > 0 && (data[0] & 1)) service->Configure(edgevisor::MmdsConfig::Version::kV2, false);
  StackCounters counters;
  Stack stack(service, {169, 254, 169, 254}, &counters);
  absl::Time now = absl::UnixEpoch() + absl::Hours(1);
  for (size_t off = 0; off + 2 <= size;) {
    const size_t len = std::min<size_t>(data[off] | (data[off + 1] << 8), size - off - 2);
    const absl::Span<const uint8_t> frame(data + off + 2, len);
    off += 2 + len;
    if (stack.Claims(frame.first(std::min(frame.size(), Stack::kClaimBytes)))) {
      stack.OnGuestFrame(frame, now);
    }
    now += absl::Seconds(1);
    while (stack.has_frames()) {
      const std::vector<uint8_t> f = stack.PopFrame();
      if (f.size() < 42 || f.size() > 14 + 20 + 24 + Stack::kMaxMss) abort();
    }
    if (stack.connections() > Stack::kMaxConnections) abort();
  }
  return 0;
}
