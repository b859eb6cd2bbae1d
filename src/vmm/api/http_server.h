// HTTP/1.1 on a Unix socket, served by GNU libmicrohttpd from its own thread. We create, bind
// and listen on the AF_UNIX socket ourselves and hand it to the library
// (MHD_OPTION_LISTEN_SOCKET). The handler sees whole requests: method, path and body, with the
// body capped at `max_body` bytes (Firecracker's --http-api-max-payload-size, 51200 by default);
// larger bodies get a 400 without reaching the handler.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "src/base/thread_filter.h"

struct MHD_Daemon;

namespace edgevisor::api {

struct HttpRequest {
  std::string method;
  std::string path;
  std::string body;
};

struct HttpResponse {
  int status = 200;
  std::string body;  // JSON; empty means no body (204)
};

// Firecracker's error body: {"fault_message": "..."}. Invalid UTF-8 (a message may quote
// user input) becomes U+FFFD instead of an exception.
inline std::string FaultJson(const std::string& message) {
  return nlohmann::json{{"fault_message", message}}.dump(-1, ' ', false,
                                                         nlohmann::json::error_handler_t::replace);
}

class HttpServer {
 public:
  using Handler = std::function<HttpResponse(const HttpRequest&)>;
  static constexpr size_t kDefaultMaxBody = 51200;

  // Fails (naming the path) when the socket exists already or cannot be bound. With FILTER,
  // the server's thread (named "api") runs under that seccomp filter from its first
  // instruction: a short-lived thread installs it and starts the library's thread, which
  // inherits it.
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(
      const std::string& socket_path, size_t max_body, Handler handler,
      std::shared_ptr<const ThreadFilter> filter = nullptr);
  // Stops serving (waits for the request in progress) and removes the socket file.
  ~HttpServer();

  // Public for the C callbacks.
  struct Impl;

 private:
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace edgevisor::api
