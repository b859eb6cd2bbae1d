// libFuzzer target: appliance.json at both stages, and rendering what parses at the build stage
// (demo VMs become Firecracker configs that edgevisor's parser reads back). Any input gives a
// config or an error naming a field.
#include <cstddef>
#include <cstdint>
#include <string>

#include "src/appliance/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  (void)edgevisor::appliance::ParseApplianceConfig(text, edgevisor::appliance::Stage::kRuntime);
  auto c = edgevisor::appliance::ParseApplianceConfig(text, edgevisor::appliance::Stage::kBuild);
  if (c.ok()) (void)edgevisor::appliance::Render(*c, "/nonexistent");
  return 0;
}
