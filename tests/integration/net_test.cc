// virtio-net on /dev/kvm, against real host tools in a network namespace: ping, socat and the
// kernel's UDP stack talk to the net_responder payload through a TAP.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <signal.h>

#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <future>
#include <sstream>
#include <thread>

#include "nlohmann/json.hpp"
#include "tests/integration/api_client.h"
#include "tests/integration/api_vm.h"
#include "tests/integration/vmm_process.h"

namespace edgevisor::testing {
namespace {

using ::testing::ContainsRegex;
using ::testing::HasSubstr;
using ::testing::Not;

class NetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(access("/dev/kvm", R_OK | W_OK), 0);
    ASSERT_EQ(geteuid(), 0u) << "network namespaces and TAPs need root";
    ns_ = "evnet" + std::to_string(getpid());
    Sh("ip netns del " + ns_);
    ASSERT_EQ(Sh("ip netns add " + ns_).first, 0);
  }
  void TearDown() override { Sh("ip netns del " + ns_); }

  void MakeTap(bool multi_queue) {
    auto [rc, out] =
        In("ip tuntap add dev tap0 mode tap" + std::string(multi_queue ? " multi_queue" : "") +
           " && ip addr add 10.0.2.1/24 dev tap0 && ip link set tap0 up &&"
           " ip link set lo up");
    ASSERT_EQ(rc, 0) << out;
  }
  std::pair<int, std::string> In(const std::string& cmd) {
    return Sh("ip netns exec " + ns_ + " sh -c '" + cmd + "'");
  }
  std::unique_ptr<Spawned> Boot(const std::string& payload, const std::string& cmdline,
                                const std::string& net) {
    auto vm = std::make_unique<Spawned>(std::vector<std::string>{
        "/usr/bin/ip", "netns", "exec", ns_, EdgevisorBin(), "run", "--kernel", Payload(payload),
        "--cmdline", cmdline, "--mem", "64", "--debug-exit", "--net", net});
    return vm;
  }
  // Ends the responder with its "quit" datagram and checks it exited cleanly.
  void Quit(Spawned& vm) {
    In("printf quit | socat -u - UDP:10.0.2.15:7");
    auto r = vm.Finish(20000);
    EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
    EXPECT_THAT(r.out, HasSubstr("net_responder: quit"));
  }
  std::string ns_;
};

TEST_F(NetTest, PingFromHostHasNoLoss) {
  MakeTap(false);
  auto vm = Boot("net_responder", "ip=10.0.2.15 port=7", "tap=tap0");
  ASSERT_TRUE(vm->WaitFor("ready", 20000)) << vm->out() << vm->err();
  auto [rc, out] = In("ping -c 50 -i 0.01 -W 2 10.0.2.15");
  EXPECT_EQ(rc, 0) << out;
  EXPECT_THAT(out, HasSubstr("50 received, 0% packet loss"));
  Quit(*vm);
}

TEST_F(NetTest, UdpEchoThroughSocatIsByteExact) {
  MakeTap(false);
  auto vm = Boot("net_responder", "ip=10.0.2.15 port=7", "tap=tap0");
  ASSERT_TRUE(vm->WaitFor("ready", 20000)) << vm->out() << vm->err();
  for (int size : {1, 2, 64, 512, 1000, 1471, 1472}) {
    auto [rc, out] =
        In("head -c " + std::to_string(size) +
           " /dev/urandom > /tmp/evin.$$ && socat -t 1 - UDP:10.0.2.15:7 < /tmp/evin.$$"
           " > /tmp/evout.$$ && cmp /tmp/evin.$$ /tmp/evout.$$; r=$?; "
           "rm -f /tmp/evin.$$ /tmp/evout.$$; exit $r");
    EXPECT_EQ(rc, 0) << "size " << size << ": " << out;
  }
  Quit(*vm);
}

// Every size from 1 to 1472 bytes (a full 1500-byte MTU datagram) through the kernel's UDP.
TEST_F(NetTest, UdpEchoEverySizeByteExact) {
  MakeTap(false);
  auto vm = Boot("net_responder", "ip=10.0.2.15 port=7", "tap=tap0");
  ASSERT_TRUE(vm->WaitFor("ready", 20000)) << vm->out() << vm->err();
  const char* py =
      "import os,socket,sys\n"
      "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.settimeout(2)\n"
      "for n in range(1,1473):\n"
      "  d=os.urandom(n)\n"
      "  for attempt in range(3):\n"
      "    s.sendto(d,(\"10.0.2.15\",7))\n"
      "    try:\n"
      "      r,_=s.recvfrom(4096); break\n"
      "    except socket.timeout: r=None\n"
      "  if r!=d: print(\"mismatch at\",n); sys.exit(1)\n"
      "print(\"all sizes ok\")\n";
  FILE* f = fopen("/tmp/ev_udp_sweep.py", "w");
  fputs(py, f);
  fclose(f);
  auto [rc, out] = In("python3 /tmp/ev_udp_sweep.py");
  EXPECT_EQ(rc, 0) << out;
  EXPECT_THAT(out, HasSubstr("all sizes ok"));
  Quit(*vm);
}

TEST_F(NetTest, MultiQueueWithControlQueue) {
  MakeTap(true);
  auto vm = Boot("net_responder", "ip=10.0.2.15 port=7 mq", "tap=tap0,queues=2");
  ASSERT_TRUE(vm->WaitFor("ready", 20000)) << vm->out() << vm->err();
  auto [rc, out] = In("ping -c 20 -i 0.01 -W 2 10.0.2.15");
  EXPECT_THAT(out, HasSubstr("20 received, 0% packet loss"));
  Quit(*vm);
}

TEST_F(NetTest, ChecksumOffloadNegotiated) {
  MakeTap(false);
  auto vm = Boot("net_responder", "ip=10.0.2.15 port=7 csum", "tap=tap0");
  ASSERT_TRUE(vm->WaitFor("ready", 20000)) << vm->out() << vm->err();
  auto [rc, out] =
      In("ping -c 10 -i 0.01 -W 2 10.0.2.15 && printf hello | socat -t 1 - "
         "UDP:10.0.2.15:7");
  EXPECT_EQ(rc, 0) << out;
  EXPECT_THAT(out, HasSubstr("hello"));
  Quit(*vm);
}

// The guest stops taking frames while 400 datagrams arrive: the device must stop reading the
// TAP (no busy loop: the net0 thread stays idle) and lose nothing (every datagram is echoed
// once the guest resumes). The TAP's own queue (txqueuelen 1000) holds the backlog.
TEST_F(NetTest, RxBackpressureHoldsFramesWithoutSpinning) {
  MakeTap(false);
  auto vm = Boot("net_responder", "ip=10.0.2.15 port=7 rxpause=3000", "tap=tap0");
  ASSERT_TRUE(vm->WaitFor("rx paused", 20000)) << vm->out() << vm->err();
  const std::string py =
      "import os,socket,sys,time,glob\n"
      "pid=" +
      std::to_string(vm->pid()) +
      "\n"
      "def net0_cpu():\n"
      "  for t in glob.glob('/proc/%d/task/*' % pid):\n"
      "    if open(t+'/comm').read().strip()=='net0':\n"
      "      f=open(t+'/stat').read().rsplit(')',1)[1].split()\n"
      "      return (int(f[11])+int(f[12]))/os.sysconf('SC_CLK_TCK')\n"
      "  return 0.0\n"
      "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.settimeout(20)\n"
      "s.setsockopt(socket.SOL_SOCKET,33,1<<22)\n"
      "c0=net0_cpu()\n"
      "for i in range(400): s.sendto(b'%05d' % i + b'x'*95,('10.0.2.15',7))\n"
      "time.sleep(1.0)\n"
      "spent=net0_cpu()-c0\n"
      "got=set()\n"
      "while len(got)<400:\n"
      "  try: d,_=s.recvfrom(4096)\n"
      "  except socket.timeout: break\n"
      "  got.add(int(d[:5]))\n"
      "print('echoed', len(got), 'net0_cpu_during_pause %.3f' % spent)\n"
      "sys.exit(0 if len(got)==400 and spent<0.2 else 1)\n";
  FILE* f = fopen("/tmp/ev_backpressure.py", "w");
  fputs(py.c_str(), f);
  fclose(f);
  // A static neighbour entry: with the guest paused, ARP could not resolve, and the host would
  // drop what queues behind an unresolved neighbour before it ever reached the TAP.
  auto [rc, out] =
      In("ip neigh replace 10.0.2.15 lladdr 06:ed:9e:00:00:00 dev tap0 nud permanent &&"
         " python3 /tmp/ev_backpressure.py");
  EXPECT_EQ(rc, 0) << out;
  EXPECT_THAT(out, HasSubstr("echoed 400"));
  Quit(*vm);
}

// ---- Rate limiters -----------------------------------------------------------------------------

// An API VM in the test's namespace, with metrics; BOOT_ARGS for PAYLOAD, and the interface's
// JSON (its rate limiters) as given.
std::unique_ptr<Spawned> ApiVmInNamespace(const std::string& ns, const std::string& sock,
                                          const std::string& metrics, const std::string& payload,
                                          const std::string& boot_args, const std::string& iface) {
  unlink(sock.c_str());
  unlink(metrics.c_str());
  auto vm = std::make_unique<Spawned>(std::vector<std::string>{
      "/usr/bin/ip", "netns", "exec", ns, EdgevisorBin(), "--api-sock", sock, "--id", "netrl"});
  EXPECT_TRUE(WaitForSocket(sock, 5000));
  EXPECT_EQ(Http(sock, "PUT", "/metrics", R"({"metrics_path": ")" + metrics + R"("})").status, 204);
  EXPECT_EQ(Http(sock, "PUT", "/boot-source",
                 R"({"kernel_image_path": ")" + Payload(payload) + R"(", "boot_args": ")" +
                     boot_args + R"("})")
                .status,
            204);
  HttpReply n = Http(sock, "PUT", "/network-interfaces/eth0", iface);
  EXPECT_EQ(n.status, 204) << n.body;
  EXPECT_EQ(Http(sock, "PUT", "/machine-config", R"({"vcpu_count": 1, "mem_size_mib": 64})").status,
            204);
  EXPECT_EQ(Http(sock, "PUT", "/actions", R"({"action_type": "InstanceStart"})").status, 204);
  return vm;
}

// net_bench sends 1000-byte UDP datagrams (1042-byte frames) as fast as the device takes them.
// A TX limit of 200 frames/s holds it within 10 %; a PATCH to 400/s, then to 104200 bytes/s
// (100 frames), changes the running guest's rate within 10 % each time.
TEST_F(NetTest, TxRateLimiterHoldsTheGuestAndAPatchChangesIt) {
  MakeTap(false);
  const std::string sock = SockPath("netrl"), metrics = ::testing::TempDir() + "/net_rl.metrics";
  auto vm = ApiVmInNamespace(ns_, sock, metrics, "net_bench",
                             "ip=10.0.2.15 dst=10.0.2.1 size=1000 seconds=30",
                             R"({"iface_id": "eth0", "host_dev_name": "tap0",
        "tx_rate_limiter": {"ops": {"size": 20, "refill_time": 100}}})");
  ASSERT_TRUE(vm->WaitFor("bench: tx start", 20000)) << vm->out() << vm->err();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const double f200 = CounterPerSecond(sock, metrics, "net", "tx_packets_count");
  EXPECT_GT(f200, 180);
  EXPECT_LT(f200, 220);
  HttpReply p = Http(sock, "PATCH", "/network-interfaces/eth0", R"({"iface_id": "eth0",
      "tx_rate_limiter": {"ops": {"size": 40, "refill_time": 100}}})");
  ASSERT_EQ(p.status, 204) << p.body;
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const double f400 = CounterPerSecond(sock, metrics, "net", "tx_packets_count");
  EXPECT_GT(f400, 360);
  EXPECT_LT(f400, 440);
  p = Http(sock, "PATCH", "/network-interfaces/eth0", R"({"iface_id": "eth0",
      "tx_rate_limiter": {"bandwidth": {"size": 52100, "refill_time": 500}}})");
  ASSERT_EQ(p.status, 204) << p.body;
  std::this_thread::sleep_for(std::chrono::milliseconds(800));
  const double bytes = CounterPerSecond(sock, metrics, "net", "tx_bytes_count");
  // tx_bytes_count leaves out the 12-byte virtio header too: it counts what the limiter counts.
  EXPECT_GT(bytes, 0.9 * 104200);
  EXPECT_LT(bytes, 1.1 * 104200);
  HttpReply bad = Http(sock, "PATCH", "/network-interfaces/eth0",
                       R"({"iface_id": "eth0", "rx_rate_limiter": {"ops": []}})");
  EXPECT_EQ(bad.status, 400);
  EXPECT_THAT(bad.body, HasSubstr("rx_rate_limiter.ops"));
  std::printf("tx limiter: %.0f, %.0f frames/s (200, 400 set); %.0f bytes/s (104200 set)\n", f200,
              f400, bytes);  // NOLINT
  kill(vm->pid(), SIGKILL);
  vm->Finish(5000);
}

// The RX side: the host floods the net_responder with pings; a limit of 100 frames/s holds what
// reaches the guest (the TAP keeps the rest, and drops what overflows its queue).
TEST_F(NetTest, RxRateLimiterHoldsWhatReachesTheGuest) {
  MakeTap(false);
  const std::string sock = SockPath("netrx"), metrics = ::testing::TempDir() + "/net_rx.metrics";
  auto vm = ApiVmInNamespace(ns_, sock, metrics, "net_responder", "ip=10.0.2.15 port=7",
                             R"({"iface_id": "eth0", "host_dev_name": "tap0",
        "rx_rate_limiter": {"ops": {"size": 10, "refill_time": 100}}})");
  ASSERT_TRUE(vm->WaitFor("ready", 20000)) << vm->out() << vm->err();
  // 2.4 s of 500 pings/s from the host, in the background (ping exits 1 for the lost ones).
  auto flood = std::async(std::launch::async, [&] {
    return In(
        "ip neigh replace 10.0.2.15 lladdr 06:ed:9e:00:00:00 dev tap0 nud permanent &&"
        " ping -q -i 0.002 -c 1200 -W 1 10.0.2.15");
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  const double rx = CounterPerSecond(sock, metrics, "net", "rx_packets_count");
  EXPECT_GT(rx, 90);
  EXPECT_LT(rx, 110);
  const auto [flood_rc, flood_out] = flood.get();
  EXPECT_LE(flood_rc, 1) << flood_out;
  EXPECT_THAT(flood_out, HasSubstr("1200 packets transmitted"));
  uint64_t throttled = 0;
  for (const auto& l : MetricsLines(metrics)) {
    if (l.contains("net")) throttled += l["net"]["rx_rate_limiter_throttled"].get<uint64_t>();
  }
  EXPECT_GT(throttled, 50u);
  std::printf("rx limiter: %.0f frames/s (100 set)\n", rx);  // NOLINT
  // No limit any more: what the TAP held drains at once, then the quit datagram arrives.
  HttpReply p = Http(sock, "PATCH", "/network-interfaces/eth0",
                     R"({"iface_id": "eth0", "rx_rate_limiter": {}})");
  EXPECT_EQ(p.status, 204) << p.body;
  In("printf quit | socat -u - UDP:10.0.2.15:7");
  auto r = vm->Finish(30000);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("net_responder: quit"));
}

// net_hostile builds malformed TX chains by hand: buffers outside RAM, a loop, indexes out of
// range, a device-writable frame buffer, frames too short or too long, a header cut short, and
// header flags, checksum offload or GSO that were never negotiated. Then it sends one good UDP
// datagram. The VMM must stay up, and the TAP must get that one frame and nothing else: a
// "HOSTILE" datagram here means that a frame the device should have dropped reached the host.
TEST_F(NetTest, HostileTxChainsAreDroppedAndOnlyTheGoodFrameLeaves) {
  MakeTap(false);
  auto [mrc, mac] = In("cat /sys/class/net/tap0/address");
  ASSERT_EQ(mrc, 0) << mac;
  while (!mac.empty() && std::isspace(static_cast<unsigned char>(mac.back()))) mac.pop_back();
  auto rx_packets = [&] {
    return std::strtoull(In("cat /sys/class/net/tap0/statistics/rx_packets").second.c_str(),
                         nullptr, 10);
  };
  const std::string recv = ::testing::TempDir() + "/net_hostile.recv";
  unlink(recv.c_str());
  In("timeout 60 socat -u UDP-RECV:9999,bind=10.0.2.1 - > " + recv + " 2>/dev/null &");
  const uint64_t rx0 = rx_packets();
  auto vm = Boot("net_hostile", "host_mac=" + mac, "tap=tap0");
  auto r = vm->Finish(60000);
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_THAT(r.out, ContainsRegex("net_hostile: [1-9][0-9]* passed, 0 failed")) << r.out;
  EXPECT_THAT(r.out, HasSubstr("ok - hostile TX (r) a frame of 65554 bytes")) << r.out;
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(rx_packets() - rx0, 1u) << "frames on the TAP besides the good datagram";
  In("pkill -f UDP-RECV:9999");
  std::ifstream f(recv);
  std::stringstream got;
  got << f.rdbuf();
  EXPECT_THAT(got.str(), ContainsRegex("ALIVE [0-9]+")) << got.str();
  EXPECT_THAT(got.str(), Not(HasSubstr("HOSTILE"))) << got.str();
}

TEST_F(NetTest, BadTapNamesExitTwo) {
  auto run = [&](const std::string& net) {
    return RunProcess({"/usr/bin/ip", "netns", "exec", ns_, EdgevisorBin(), "run", "--kernel",
                       Payload("hello"), "--net", net});
  };
  auto too_long = run("tap=abcdefghijklmnopqrstuvwxyz");
  EXPECT_EQ(too_long.exit_code, 2);
  EXPECT_THAT(too_long.err, HasSubstr("--net tap=abcdefghijklmnopqrstuvwxyz"));
  auto taken = run("tap=lo");  // not a TAP: the name is taken
  EXPECT_EQ(taken.exit_code, 2);
  EXPECT_THAT(taken.err, HasSubstr("the name is taken"));
  MakeTap(false);
  auto mq = run("tap=tap0,queues=2");  // a single-queue TAP cannot take two queues
  EXPECT_EQ(mq.exit_code, 2);
  EXPECT_THAT(mq.err, HasSubstr("--net tap=tap0"));
}

}  // namespace
}  // namespace edgevisor::testing
