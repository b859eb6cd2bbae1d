// libFuzzer target: one REST API request (method, path, JSON body) into ApiController, which
// parses the body and converts it into the VM model. The input is "METHOD PATH\n" + body; the
// controller keeps its state across inputs, so sequences (configure, start, pause, ...) are
// explored too. Every request must get an answer: 2xx, or 400 with a JSON fault_message.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>

#include "nlohmann/json.hpp"
#include "spdlog/spdlog.h"
#include "src/vmm/api/api.h"
#include "tests/unit/vmm/api/fake_vm.h"

namespace {

using edgevisor::Json;
using namespace edgevisor::api;

using edgevisor::api::testing::FakeVm;

ApiController* Controller() {
  static FakeVm* vm = new FakeVm();
  static ApiController* api = [] {
    spdlog::set_level(spdlog::level::off);
    ApiHooks hooks;
    hooks.start = [](const edgevisor::VmConfig&,
                     std::shared_ptr<edgevisor::MetricsWriter>) -> absl::StatusOr<RunningVm*> {
      return vm;
    };
    hooks.check_drive = [](const edgevisor::FcDrive&) { return absl::OkStatus(); };
    hooks.check_net = [](const edgevisor::FcNet&) { return absl::OkStatus(); };
    hooks.apply_logger = [](const edgevisor::LoggerConfig&) { return absl::OkStatus(); };
    // Never create files where the fuzzer says.
    hooks.open_metrics = [](const edgevisor::MetricsConfig& c, const std::string& id) {
      edgevisor::MetricsConfig safe = c;
      safe.metrics_path = "/dev/null";
      return edgevisor::MetricsWriter::Open(safe, id);
    };
    return new ApiController("fuzz", "0", edgevisor::HostLimits{1024, 8}, std::move(hooks));
  }();
  return api;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string in(reinterpret_cast<const char*>(data), size);
  const size_t nl = in.find('\n');
  const std::string head = in.substr(0, nl);
  const size_t sp = head.find(' ');
  HttpRequest req;
  req.method = head.substr(0, sp);
  req.path = sp == std::string::npos ? "/" : head.substr(sp + 1);
  req.body = nl == std::string::npos ? "" : in.substr(nl + 1);
  const HttpResponse r = Controller()->Handle(req);
  if (r.status >= 400) {
    Json j = Json::parse(r.body, nullptr, false);
    if (!j.is_object() || !j.contains("fault_message") || !j["fault_message"].is_string()) abort();
  } else if (r.status != 200 && r.status != 204) {
    abort();
  }
  return 0;
}
