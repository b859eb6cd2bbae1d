// The HTTP/1.1 requests a guest sends to the metadata service, and the responses it gets. The
// request bytes are the guest's: ParseRequest checks every part and never reads past them.
#pragma once

#include <map>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace edgevisor::mmds {

struct HttpRequest {
  std::string method;                          // "GET", "PUT", ...
  std::string path;                            // the target's path, query string cut off
  std::map<std::string, std::string> headers;  // names in lower case, values trimmed
  std::string body;
  size_t consumed = 0;  // bytes of the input this request took (a pipelined next one follows)

  // The value of header NAME (lower case), if present.
  std::optional<std::string> Header(const std::string& name) const {
    auto it = headers.find(name);
    if (it == headers.end()) return std::nullopt;
    return it->second;
  }
};

// Limits: a longer request is refused (413), so a guest cannot make the VMM buffer without end.
inline constexpr size_t kMaxRequestBytes = 8192;
inline constexpr size_t kMaxHeaders = 64;

// The first request in BYTES: nullopt while it is incomplete (more bytes may come), an error
// (its message says what is wrong) when it is malformed or over the limits.
absl::StatusOr<std::optional<HttpRequest>> ParseRequest(absl::string_view bytes);

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain";
  std::string body;
};

// The response as bytes, "Connection: close" included: the service answers one request per
// connection.
std::string Serialize(const HttpResponse& r);

}  // namespace edgevisor::mmds
