// A minimal HTTP/1.1 client over a Unix socket, for the API tests: one request per connection
// (Connection: close), so the reply is whatever arrives until EOF.
#pragma once

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <string>
#include <thread>

namespace edgevisor::testing {

struct HttpReply {
  int status = 0;  // 0: no reply (connect failed or connection dropped)
  std::string body;
  std::string raw;
};

inline int ConnectUnix(const std::string& path) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// Sends `bytes` as they are and parses the reply.
inline HttpReply RawHttp(const std::string& sock, const std::string& bytes) {
  HttpReply r;
  int fd = ConnectUnix(sock);
  if (fd < 0) return r;
  timeval tv{30, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  size_t done = 0;
  while (done < bytes.size()) {  // the server may answer and close early (huge bodies)
    ssize_t n = send(fd, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof(buf))) > 0) r.raw.append(buf, static_cast<size_t>(n));
  close(fd);
  if (r.raw.rfind("HTTP/1.", 0) == 0 && r.raw.size() > 12) r.status = std::stoi(r.raw.substr(9, 3));
  if (auto at = r.raw.find("\r\n\r\n"); at != std::string::npos) r.body = r.raw.substr(at + 4);
  return r;
}

inline HttpReply Http(const std::string& sock, const std::string& method, const std::string& path,
                      const std::string& body = "") {
  std::string req = method + " " + path +
                    " HTTP/1.1\r\nHost: localhost\r\nAccept: application/json\r\n"
                    "Content-Type: application/json\r\nConnection: close\r\n";
  if (!body.empty() || method == "PUT" || method == "PATCH") {
    req += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  }
  return RawHttp(sock, req + "\r\n" + body);
}

// Waits until SOCK accepts a connection, trying every POLL_US microseconds.
inline bool WaitForSocket(const std::string& sock, int timeout_ms, int poll_us = 10000) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    int fd = ConnectUnix(sock);
    if (fd >= 0) {
      close(fd);
      return true;
    }
    std::this_thread::sleep_for(std::chrono::microseconds(poll_us));
  }
  return false;
}

}  // namespace edgevisor::testing
