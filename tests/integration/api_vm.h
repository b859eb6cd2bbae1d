// An edgevisor serving Firecracker's API on a Unix socket, for the integration tests: the
// process, its socket and the usual requests.
#pragma once

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "nlohmann/json.hpp"
#include "tests/integration/api_client.h"
#include "tests/integration/vmm_process.h"

namespace edgevisor::testing {

inline std::string SockPath(const std::string& tag) {
  return "/tmp/ev-api-" + tag + "-" + std::to_string(getpid()) + ".sock";
}

inline std::string MakeImage(const std::string& name, size_t bytes) {
  const std::string path = ::testing::TempDir() + "/" + name;
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.seekp(static_cast<std::streamoff>(bytes - 1));
  f.put('\0');
  return path;
}

// A network namespace holding TAP tap0 at 10.0.2.1/24 (the payloads' guest is 10.0.2.15), deleted
// at the end of the scope. The VMM runs in it: `ip netns exec NAME edgevisor ...`.
class TapNamespace {
 public:
  explicit TapNamespace(const std::string& tag) : name_(tag + std::to_string(getpid())) {
    Sh("ip netns del " + name_);
    ok_ = Sh("ip netns add " + name_).first == 0 &&
          In("ip tuntap add dev tap0 mode tap && ip addr add 10.0.2.1/24 dev tap0 && "
             "ip link set tap0 up && ip link set lo up")
                  .first == 0;
  }
  ~TapNamespace() { Sh("ip netns del " + name_); }
  TapNamespace(const TapNamespace&) = delete;
  TapNamespace& operator=(const TapNamespace&) = delete;
  bool ok() const { return ok_; }
  const std::string& name() const { return name_; }
  // Runs CMD (sh) inside the namespace.
  std::pair<int, std::string> In(const std::string& cmd) const {
    return Sh("ip netns exec " + name_ + " sh -c '" + cmd + "'");
  }

 private:
  std::string name_;
  bool ok_ = false;
};

// The metrics file's lines, parsed (one JSON object per flush).
inline std::vector<nlohmann::json> MetricsLines(const std::string& path) {
  std::ifstream f(path);
  std::vector<nlohmann::json> lines;
  for (std::string line; std::getline(f, line);) {
    nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_discarded()) lines.push_back(j);
  }
  return lines;
}

// What the metrics count of GROUP.COUNTER (per second of host time) over one second: FlushMetrics
// on the API socket SOCK, wait, FlushMetrics; the second line holds what happened in between.
// -1 when that line has no GROUP.
inline double CounterPerSecond(const std::string& sock, const std::string& metrics,
                               const std::string& group, const std::string& counter) {
  const std::string flush = R"({"action_type": "FlushMetrics"})";
  EXPECT_EQ(Http(sock, "PUT", "/actions", flush).status, 204);
  const auto t0 = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(std::chrono::seconds(1));
  EXPECT_EQ(Http(sock, "PUT", "/actions", flush).status, 204);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  auto lines = MetricsLines(metrics);
  if (lines.empty() || !lines.back().contains(group)) return -1;
  return static_cast<double>(lines.back()[group][counter].get<uint64_t>()) / secs;
}

// One edgevisor serving the API.
class ApiVm {
 public:
  explicit ApiVm(const std::string& tag, std::vector<std::string> extra = {})
      : sock_(SockPath(tag)) {
    unlink(sock_.c_str());
    std::vector<std::string> argv = {EdgevisorBin(), "--api-sock", sock_, "--id", tag};
    argv.insert(argv.end(), extra.begin(), extra.end());
    proc_ = std::make_unique<Spawned>(argv);
    ready_ = WaitForSocket(sock_, 5000);
  }
  bool ready() const { return ready_; }
  HttpReply Put(const std::string& path, const std::string& body) {
    return Http(sock_, "PUT", path, body);
  }
  HttpReply Patch(const std::string& path, const std::string& body) {
    return Http(sock_, "PATCH", path, body);
  }
  HttpReply Get(const std::string& path) { return Http(sock_, "GET", path); }
  // The usual pre-boot requests; each returns the HTTP status.
  int BootSource(const std::string& kernel, const std::string& boot_args) {
    return Put("/boot-source",
               R"({"kernel_image_path": ")" + kernel + R"(", "boot_args": ")" + boot_args + "\"}")
        .status;
  }
  int Drive(const std::string& id, const std::string& path, bool root = false) {
    return Put("/drives/" + id, R"({"drive_id": ")" + id + R"(", "path_on_host": ")" + path +
                                    R"(", "is_root_device": )" + (root ? "true" : "false") + "}")
        .status;
  }
  int Start() { return Put("/actions", R"({"action_type": "InstanceStart"})").status; }
  int Pause() { return Patch("/vm", R"({"state": "Paused"})").status; }
  int Resume() { return Patch("/vm", R"({"state": "Resumed"})").status; }
  int FlushMetrics() { return Put("/actions", R"({"action_type": "FlushMetrics"})").status; }
  HttpReply Snapshot(const std::string& state, const std::string& mem) {
    return Put("/snapshot/create", R"({"snapshot_type": "Full", "snapshot_path": ")" + state +
                                       R"(", "mem_file_path": ")" + mem + "\"}");
  }
  HttpReply Load(const std::string& state, const std::string& mem, bool resume) {
    return Put("/snapshot/load",
               R"({"snapshot_path": ")" + state +
                   R"(", "mem_backend": {"backend_type": "File", "backend_path": ")" + mem +
                   R"("}, "resume_vm": )" + (resume ? "true" : "false") + "}");
  }
  std::string State() {
    HttpReply r = Get("/");
    if (r.status != 200) return "<no reply>";
    return nlohmann::json::parse(r.body, nullptr, false).value("state", "<none>");
  }
  bool Alive() const { return kill(proc_->pid(), 0) == 0; }
  Spawned& proc() { return *proc_; }
  const std::string& sock() const { return sock_; }

 private:
  std::string sock_;
  std::unique_ptr<Spawned> proc_;
  bool ready_ = false;
};

}  // namespace edgevisor::testing
