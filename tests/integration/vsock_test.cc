// virtio-vsock on KVM with the vsock payload (a guest driver of its own): host processes reach
// the guest's echo service through uds_path ("CONNECT 5000\n"), the guest reaches the host's echo
// listener on "<uds_path>_6000", and the payload's hostile packets leave the VMM serving.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "nlohmann/json.hpp"
#include "tests/integration/api_vm.h"
#include "tests/integration/vmm_process.h"

namespace edgevisor::testing {
namespace {

using ::testing::ContainsRegex;
using ::testing::HasSubstr;
using Json = nlohmann::json;

int UnixSocket() { return socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0); }

sockaddr_un Address(const std::string& path) {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strncpy(a.sun_path, path.c_str(), sizeof(a.sun_path) - 1);
  return a;
}

// A pattern that differs per connection and per offset.
std::string Pattern(size_t n, uint8_t seed) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 131 + seed * 7 + (i >> 12)) & 0xff);
  return s;
}

// The host's echo service for the guest's connections: every accepted socket gets back what it
// sends, until it closes.
class EchoListener {
 public:
  explicit EchoListener(const std::string& path) : fd_(UnixSocket()) {
    sockaddr_un a = Address(path);
    ok_ = bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0 && listen(fd_, 16) == 0;
    thread_ = std::thread([this] { Serve(); });
  }
  ~EchoListener() {
    stop_ = true;
    shutdown(fd_, SHUT_RDWR);
    thread_.join();
    for (std::thread& t : conns_) t.join();
    close(fd_);
  }
  bool ok() const { return ok_; }

 private:
  void Serve() {
    while (!stop_) {
      pollfd p{.fd = fd_, .events = POLLIN, .revents = 0};
      if (poll(&p, 1, 100) != 1) continue;
      const int c = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      conns_.emplace_back([c] {
        char buf[65536];
        for (ssize_t n; (n = read(c, buf, sizeof(buf))) > 0;) {
          for (ssize_t done = 0; done < n;) {
            const ssize_t w = send(c, buf + done, static_cast<size_t>(n - done), MSG_NOSIGNAL);
            if (w <= 0) break;
            done += w;
          }
        }
        close(c);
      });
    }
  }
  int fd_;
  bool ok_ = false;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::vector<std::thread> conns_;
};

class VsockTest : public ::testing::Test {
 protected:
  void SetUp() override {
    signal(SIGPIPE, SIG_IGN);  // a socket the guest reset is an error to see, not a death
    char tmpl[] = "/tmp/evvsock.XXXXXX";  // short: socket paths hold 107 bytes
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    uds_ = dir_ + "/v.sock";
    metrics_ = dir_ + "/metrics.json";
  }
  void TearDown() override { (void)!system(("rm -rf " + dir_).c_str()); }

  std::unique_ptr<Spawned> Start(const std::string& args) {
    const std::string cfg = dir_ + "/vm.json";
    std::ofstream(cfg) << R"({"boot-source": {"kernel_image_path": ")" << Payload("vsock")
                       << R"(", "boot_args": ")" << args
                       << R"("}, "machine-config": {"vcpu_count": 1, "mem_size_mib": 64},
        "vsock": {"guest_cid": 3, "uds_path": ")"
                       << uds_ << R"("}, "metrics": {"metrics_path": ")" << metrics_ << R"("}})";
    return std::make_unique<Spawned>(
        std::vector<std::string>{EdgevisorBin(), "--config-file", cfg, "--no-api", "--id", "vs"});
  }

  // A host connection to guest PORT: the socket after "OK <port>\n", or -1 (and what came back
  // in REPLY) when the device closed it instead.
  int Connect(uint32_t port, std::string* reply = nullptr) {
    const int fd = UnixSocket();
    sockaddr_un a = Address(uds_);
    if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) return close(fd), -1;
    const std::string line = "CONNECT " + std::to_string(port) + "\n";
    if (write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) return -1;
    std::string got;
    char ch;
    while (got.empty() || got.back() != '\n') {
      pollfd p{.fd = fd, .events = POLLIN, .revents = 0};
      if (poll(&p, 1, 20000) != 1 || read(fd, &ch, 1) != 1) break;
      got.push_back(ch);
    }
    if (reply) *reply = got;
    if (got.rfind("OK ", 0) != 0) return close(fd), -1;
    return fd;
  }

  std::string dir_, uds_, metrics_;
};

// Sends each DATA[i] on FDS[i] and reads as much back, all at once: what each got back.
std::vector<std::string> EchoAll(const std::vector<int>& fds, const std::vector<std::string>& data,
                                 int timeout_ms = 120000) {
  std::vector<std::string> got(fds.size());
  std::vector<size_t> sent(fds.size(), 0);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    std::vector<pollfd> ps;
    for (size_t i = 0; i < fds.size(); ++i) {
      short ev = got[i].size() < data[i].size() ? POLLIN : 0;
      if (sent[i] < data[i].size()) ev |= POLLOUT;
      ps.push_back({.fd = ev ? fds[i] : -1, .events = ev, .revents = 0});
    }
    bool busy = false;
    for (const pollfd& p : ps) busy |= p.fd >= 0;
    if (!busy || std::chrono::steady_clock::now() > deadline) break;
    if (poll(ps.data(), ps.size(), 1000) <= 0) continue;
    for (size_t i = 0; i < fds.size(); ++i) {
      if (ps[i].revents & POLLOUT) {
        const size_t n = std::min<size_t>(16384, data[i].size() - sent[i]);
        const ssize_t w = send(fds[i], data[i].data() + sent[i], n, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (w > 0) sent[i] += static_cast<size_t>(w);
      }
      if (ps[i].revents & (POLLIN | POLLHUP)) {
        char buf[65536];
        const ssize_t r = recv(fds[i], buf, sizeof(buf), MSG_DONTWAIT);
        if (r > 0) got[i].append(buf, static_cast<size_t>(r));
        if (r == 0) sent[i] = data[i].size(), got[i] += "<eof>";
      }
    }
  }
  return got;
}

// Everything at once, in one boot: the guest's own checks (its client, the refused port, the
// hostile packets) and the host's connections into it, then the metrics.
TEST_F(VsockTest, StreamsBothWaysByteExactAndHostilePacketsLeaveItServing) {
  EchoListener echo(uds_ + "_6000");
  ASSERT_TRUE(echo.ok());
  auto vm = Start(
      "vsock.cid=3 vsock.connect=6000 vsock.bytes=262144 vsock.refused=6001 "
      "vsock.hostile=6000 vsock.port=5000");
  ASSERT_TRUE(vm->WaitFor("vsock: ready port 5000", 120000)) << vm->out() << vm->err();

  // Several sizes, one connection each, in turn.
  for (size_t size : {size_t{1}, size_t{4096}, size_t{65539}, size_t{1} << 20}) {
    const int fd = Connect(5000);
    ASSERT_GE(fd, 0) << size;
    const std::string data = Pattern(size, static_cast<uint8_t>(size));
    const std::vector<std::string> got = EchoAll({fd}, {data});
    EXPECT_EQ(got[0].size(), size);
    EXPECT_TRUE(got[0] == data) << size << " bytes came back different";
    close(fd);
  }
  // 32 connections at once.
  std::vector<int> fds;
  std::vector<std::string> data;
  for (int i = 0; i < 32; ++i) {
    fds.push_back(Connect(5000));
    ASSERT_GE(fds.back(), 0) << i;
    data.push_back(Pattern(16384 + 100 * i, static_cast<uint8_t>(i)));
  }
  const std::vector<std::string> got = EchoAll(fds, data);
  for (int i = 0; i < 32; ++i) {
    EXPECT_TRUE(got[i] == data[i])
        << "connection " << i << ": " << got[i].size() << " of " << data[i].size() << " bytes";
    close(fds[i]);
  }
  // A host peer that goes away mid-stream, unread echo and all.
  const int gone = Connect(5000);
  ASSERT_GE(gone, 0);
  const std::string big = Pattern(200000, 99);
  (void)!send(gone, big.data(), big.size() / 2, MSG_NOSIGNAL);
  close(gone);
  // A guest port nobody listens on: the socket closes without OK.
  std::string reply = "?";
  EXPECT_EQ(Connect(5001, &reply), -1);
  EXPECT_EQ(reply, "") << "closed, no OK";
  // Still serving.
  const int after = Connect(5000);
  ASSERT_GE(after, 0);
  EXPECT_EQ(EchoAll({after}, {"still here"})[0], "still here");
  close(after);

  std::string quit;
  Connect(5999, &quit);  // the payload's signal to finish
  auto r = vm->Finish(60000);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("client port 6000: sent 262144, received 262144, mismatches 0"))
      << r.out;
  EXPECT_THAT(r.out, ContainsRegex("vsock: [1-9][0-9]* passed, 0 failed")) << r.out << r.err;
  uint64_t added = 0, killed = 0, bad = 0, rx = 0, tx = 0;
  for (const Json& l : MetricsLines(metrics_)) {
    if (!l.contains("vsock")) continue;
    added += l["vsock"]["conns_added"].get<uint64_t>();
    killed += l["vsock"]["conns_killed"].get<uint64_t>();
    bad += l["vsock"]["tx_bad_packets"].get<uint64_t>();
    rx += l["vsock"]["rx_bytes_count"].get<uint64_t>();
    tx += l["vsock"]["tx_bytes_count"].get<uint64_t>();
  }
  EXPECT_GE(added, 38u) << "4 + 32 + 1 + 1 host connections, the guest's own";
  EXPECT_GE(killed, 3u) << "the hostile packets' connections";
  EXPECT_GE(bad, 5u);
  EXPECT_GE(rx, (1u << 20) + 262144u);
  EXPECT_GE(tx, (1u << 20) + 262144u);
}

// Snapshots: a paused-and-resumed VM keeps its connections (the quiesce stops the device, not the
// streams); a VM restored in a new process has none, and its guest hears so (TRANSPORT_RESET)
// and serves new ones. Memory, credit counters and all are the snapshot's.
TEST_F(VsockTest, AConnectionSurvivesASnapshotAndARestoredGuestIsToldToReset) {
  const std::string state = dir_ + "/vm.state", mem = dir_ + "/vm.mem";
  auto vm = std::make_unique<ApiVm>("vsnap");
  ASSERT_TRUE(vm->ready());
  ASSERT_EQ(vm->BootSource(Payload("vsock"), "vsock.port=5000"), 204);
  ASSERT_EQ(vm->Put("/machine-config", R"({"vcpu_count": 1, "mem_size_mib": 64})").status, 204);
  ASSERT_EQ(vm->Put("/vsock", R"({"guest_cid": 3, "uds_path": ")" + uds_ + R"("})").status, 204);
  ASSERT_EQ(vm->Start(), 204);
  ASSERT_TRUE(vm->proc().WaitFor("vsock: ready port 5000", 120000)) << vm->proc().out();
  const int kept = Connect(5000);
  ASSERT_GE(kept, 0);
  EXPECT_EQ(EchoAll({kept}, {"before"})[0], "before");
  ASSERT_EQ(vm->Pause(), 204);
  HttpReply snap = vm->Snapshot(state, mem);
  ASSERT_EQ(snap.status, 204) << snap.body;
  ASSERT_EQ(vm->Resume(), 204);
  EXPECT_EQ(EchoAll({kept}, {"after the snapshot"})[0], "after the snapshot");
  kill(vm->proc().pid(), SIGKILL);
  vm->proc().Finish(5000);
  EXPECT_EQ(EchoAll({kept}, {"x"})[0], "<eof>") << "its VMM is gone";
  close(kept);

  // A killed VMM leaves its socket behind, and a new one refuses to take it over.
  ApiVm refused("vsnap2");
  ASSERT_TRUE(refused.ready());
  HttpReply r = refused.Load(state, mem, /*resume=*/true);
  EXPECT_EQ(r.status, 400);
  EXPECT_THAT(r.body, HasSubstr("already exists")) << r.body;
  unlink(uds_.c_str());
  ApiVm restored("vsnap3");
  ASSERT_TRUE(restored.ready());
  r = restored.Load(state, mem, /*resume=*/true);
  ASSERT_EQ(r.status, 204) << r.body << restored.proc().err();
  ASSERT_TRUE(restored.proc().WaitFor("vsock: transport reset", 60000)) << restored.proc().out();
  const int fresh = Connect(5000);
  ASSERT_GE(fresh, 0);
  const std::string data = Pattern(100000, 5);
  EXPECT_TRUE(EchoAll({fresh}, {data})[0] == data);
  close(fresh);
  Connect(5999);
  auto done = restored.proc().Finish(60000);
  EXPECT_EQ(done.exit_code, 0) << done.out << done.err;
  EXPECT_THAT(done.out, ContainsRegex("vsock: [1-9][0-9]* passed, 0 failed")) << done.out;
}

}  // namespace
}  // namespace edgevisor::testing
