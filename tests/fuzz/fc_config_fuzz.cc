// libFuzzer target: Firecracker JSON config -> VmConfig. Any input gives a config or an error.
#include <cstddef>
#include <cstdint>
#include <string>

#include "src/vmm/config/fc_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto c =
      edgevisor::ParseFirecrackerConfig(std::string(reinterpret_cast<const char*>(data), size));
  if (c.ok()) (void)edgevisor::ValidateVmConfig(c->vm, edgevisor::HostLimits{1024, 8});
  return 0;
}
