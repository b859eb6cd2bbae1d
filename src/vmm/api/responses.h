// The API's response shapes, shared by its handlers (api.cc, api_balloon.cc): Firecracker's 204
// with no body, 200 with JSON, 400 with {"fault_message": ...}.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "nlohmann/json.hpp"
#include "src/vmm/api/http_server.h"

namespace edgevisor::api {

inline constexpr char kAfterBoot[] = "is not supported after starting the microVM";
inline constexpr char kBeforeBoot[] = "is not supported before starting the microVM";

inline HttpResponse NoContent() { return {204, ""}; }
inline HttpResponse Fault(const std::string& message) { return {400, FaultJson(message)}; }
inline HttpResponse Fault(const absl::Status& s) { return Fault(std::string(s.message())); }
inline HttpResponse JsonOk(const nlohmann::json& j) { return {200, j.dump()}; }

}  // namespace edgevisor::api
