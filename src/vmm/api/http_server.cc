#include "src/vmm/api/http_server.h"

#include <microhttpd.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdarg>
#include <cstring>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "src/base/errors.h"
#include "src/base/fd.h"
#include "src/base/log.h"

namespace edgevisor::api {

struct HttpServer::Impl {
  std::string socket_path;
  size_t max_body = kDefaultMaxBody;
  Handler handler;
  UniqueFd listen_fd;
  MHD_Daemon* daemon = nullptr;
};

namespace {

// Per-request state, from the first callback (headers) to the completion notice.
struct RequestState {
  std::string body;
  bool too_big = false;
};

MHD_Result Reply(MHD_Connection* c, const HttpResponse& r) {
  MHD_Response* resp = MHD_create_response_from_buffer(
      r.body.size(), const_cast<char*>(r.body.data()), MHD_RESPMEM_MUST_COPY);
  if (resp == nullptr) return MHD_NO;
  if (!r.body.empty()) MHD_add_response_header(resp, "Content-Type", "application/json");
  const MHD_Result ret = MHD_queue_response(c, static_cast<unsigned>(r.status), resp);
  MHD_destroy_response(resp);
  return ret;
}

MHD_Result OnRequest(void* cls, MHD_Connection* c, const char* url, const char* method,
                     const char* /*version*/, const char* upload_data, size_t* upload_data_size,
                     void** req_cls) {
  auto* impl = static_cast<HttpServer::Impl*>(cls);
  auto* st = static_cast<RequestState*>(*req_cls);
  if (st == nullptr) {  // headers only
    st = new RequestState();
    *req_cls = st;
    const char* len = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
    uint64_t n = 0;
    if (len != nullptr && absl::SimpleAtoi(len, &n) && n > impl->max_body) {
      // Refuse before reading the body (no "100 Continue"); MHD then closes the connection.
      st->too_big = true;
      return Reply(c, {400, FaultJson(absl::StrFormat(
                                "Request payload with size %d is larger than the limit of %d "
                                "allowed by server.",
                                n, impl->max_body))});
    }
    return MHD_YES;
  }
  if (*upload_data_size != 0) {
    if (st->body.size() + *upload_data_size > impl->max_body) {
      st->too_big = true;  // chunked uploads have no Content-Length: count as they come
    } else if (!st->too_big) {
      st->body.append(upload_data, *upload_data_size);
    }
    *upload_data_size = 0;
    return MHD_YES;
  }
  if (st->too_big) {
    return Reply(c, {400, FaultJson(absl::StrFormat(
                              "Request payload is larger than the limit of %d allowed by server.",
                              impl->max_body))});
  }
  HttpRequest req{method, url, std::move(st->body)};
  HttpResponse resp;
  try {
    resp = impl->handler(req);
  } catch (const std::exception& e) {  // never lose the VM over one request
    resp = {500, FaultJson(absl::StrFormat("internal error: %s", e.what()))};
  }
  return Reply(c, resp);
}

void OnCompleted(void*, MHD_Connection*, void** req_cls, MHD_RequestTerminationCode) {
  delete static_cast<RequestState*>(*req_cls);
  *req_cls = nullptr;
}

void OnLog(void*, const char* fmt, va_list ap) {
  char buf[512];
  vsnprintf(buf, sizeof(buf), fmt, ap);
  std::string msg(buf);
  while (!msg.empty() && msg.back() == '\n') msg.pop_back();
  spdlog::debug("api: {}", msg);
}

}  // namespace

namespace {

MHD_Daemon* StartDaemon(HttpServer::Impl* impl) {
  return MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, nullptr, nullptr,
                          &OnRequest, impl, MHD_OPTION_LISTEN_SOCKET,
                          static_cast<MHD_socket>(impl->listen_fd.get()),
                          MHD_OPTION_NOTIFY_COMPLETED, &OnCompleted, nullptr,
                          MHD_OPTION_EXTERNAL_LOGGER, &OnLog, nullptr, MHD_OPTION_CONNECTION_LIMIT,
                          32u, MHD_OPTION_CONNECTION_TIMEOUT, 30u, MHD_OPTION_END);
}

}  // namespace

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpServer::~HttpServer() {
  if (impl_->daemon != nullptr) MHD_stop_daemon(impl_->daemon);
  unlink(impl_->socket_path.c_str());
}

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(
    const std::string& socket_path, size_t max_body, Handler handler,
    std::shared_ptr<const ThreadFilter> filter) {
  auto impl = std::make_unique<Impl>();
  impl->socket_path = socket_path;
  impl->max_body = max_body;
  impl->handler = std::move(handler);

  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket_path.empty() || socket_path.size() >= sizeof(addr.sun_path)) {
    return UsageError(absl::StrFormat("--api-sock %s: the path must be 1 to %d bytes", socket_path,
                                      sizeof(addr.sun_path) - 1));
  }
  std::memcpy(addr.sun_path, socket_path.data(), socket_path.size());
  impl->listen_fd.Reset(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!impl->listen_fd.valid()) return ErrnoError("socket(AF_UNIX)");
  if (bind(impl->listen_fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    const int err = errno;
    return UsageError(absl::StrFormat("--api-sock %s: cannot bind: %s%s", socket_path,
                                      strerror(err),
                                      err == EADDRINUSE ? " (remove the stale socket first)" : ""));
  }
  if (listen(impl->listen_fd.get(), 16) != 0) {
    unlink(socket_path.c_str());
    return ErrnoError(absl::StrFormat("listen on %s", socket_path));
  }
  absl::Status filtered = absl::OkStatus();
  std::thread spawner([&impl, &filtered, &filter] {
    pthread_setname_np(pthread_self(), "api");  // the library's thread inherits the name
    filtered = InstallThreadFilter(filter.get());
    if (filtered.ok()) impl->daemon = StartDaemon(impl.get());
  });
  spawner.join();
  if (!filtered.ok()) {
    unlink(socket_path.c_str());
    return filtered;
  }
  if (impl->daemon == nullptr) {
    unlink(socket_path.c_str());
    return absl::InternalError(absl::StrFormat("cannot start the API server on %s", socket_path));
  }
  impl->listen_fd.Release();  // the daemon owns and closes it now
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

}  // namespace edgevisor::api
