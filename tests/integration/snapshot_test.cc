// Snapshots end to end on /dev/kvm: a VM paused, snapshotted, its VMM killed, and the VM
// restored in a new edgevisor process through Firecracker's API. The payloads check their own
// work across the restore: block I/O in flight (blk_bench verify), the network (net_responder
// answers ping), timers and the clock (clock), and memory shared by clones (idle touch=).
// Bad snapshot files are refused, each with its reason, and leave the process able to load a
// good one.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <linux/kvm.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <iterator>
#include <memory>
#include <sstream>
#include <thread>

#include "nlohmann/json.hpp"
#include "src/vmm/snapshot/file.h"
#include "tests/integration/api_client.h"
#include "tests/integration/api_vm.h"
#include "tests/integration/vmm_process.h"

namespace edgevisor::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using Json = nlohmann::json;

std::string Temp(const std::string& name) { return ::testing::TempDir() + "/snap-" + name; }

std::string ReadAll(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}
void WriteAll(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

// Sums counter GROUP.NAME over every line of the metrics files.
uint64_t Sum(const std::vector<std::string>& files, const std::string& group,
             const std::string& name) {
  uint64_t total = 0;
  for (const std::string& f : files) {
    for (const Json& l : MetricsLines(f)) {
      if (l.contains(group)) total += l[group][name].get<uint64_t>();
    }
  }
  return total;
}

// Boots PAYLOAD with CMDLINE through the API, waits for MARKER on its console, pauses it and
// snapshots it to STATE and MEM. The VM stays paused in the returned process.
std::unique_ptr<ApiVm> BootAndSnapshot(const std::string& tag, const std::string& payload,
                                       const std::string& cmdline, const std::string& marker,
                                       const std::string& state, const std::string& mem,
                                       const std::vector<std::string>& setup = {}) {
  auto vm = std::make_unique<ApiVm>(tag);
  EXPECT_TRUE(vm->ready());
  EXPECT_EQ(vm->BootSource(Payload(payload), cmdline), 204);
  for (const std::string& s : setup) {
    const size_t sp = s.find(' ');
    EXPECT_EQ(vm->Put(s.substr(0, sp), s.substr(sp + 1)).status, 204) << s;
  }
  EXPECT_EQ(vm->Put("/machine-config", R"({"vcpu_count": 1, "mem_size_mib": 64})").status, 204);
  EXPECT_EQ(vm->Start(), 204);
  EXPECT_TRUE(vm->proc().WaitFor(marker, 60000)) << vm->proc().out() << vm->proc().err();
  EXPECT_EQ(vm->Pause(), 204);
  HttpReply r = vm->Snapshot(state, mem);
  EXPECT_EQ(r.status, 204) << r.body;
  return vm;
}

// Kills the VMM outright: nothing it would do on a clean stop may be needed by the restore.
void Kill(ApiVm& vm) {
  kill(vm.proc().pid(), SIGKILL);
  vm.proc().Finish(5000);
}

TEST(SnapshotTest, BlockIoInFlightSurvivesAKilledVmm) {
  const std::string img = MakeImage("snap_blk.img", 8 << 20);
  const std::string m1 = Temp("blk1.metrics"), m2 = Temp("blk2.metrics");
  const std::string state = Temp("blk.state"), mem = Temp("blk.mem");
  unlink(m1.c_str());
  unlink(m2.c_str());
  // 32 requests in flight from "randread-qd32 start" on; the snapshot lands among them.
  auto vm = BootAndSnapshot("snapblk", "blk_bench", "verify span=4 ops=3000 seed=7",
                            "bench: randread-qd32 start", state, mem,
                            {"/metrics {\"metrics_path\": \"" + m1 + "\"}",
                             "/drives/disk {\"drive_id\": \"disk\", \"path_on_host\": \"" + img +
                                 "\", \"is_root_device\": false}"});
  ASSERT_EQ(vm->FlushMetrics(), 204);  // the first process's counts up to the snapshot
  Kill(*vm);
  EXPECT_THAT(vm->proc().out(), Not(HasSubstr("blk_bench: done")));

  ApiVm restored("snapblk2");
  ASSERT_TRUE(restored.ready());
  ASSERT_EQ(restored.Put("/metrics", R"({"metrics_path": ")" + m2 + R"("})").status, 204);
  HttpReply r = restored.Load(state, mem, /*resume=*/true);
  ASSERT_EQ(r.status, 204) << r.body << restored.proc().err();
  EXPECT_EQ(restored.State(), "Running");
  auto done = restored.proc().Finish(180000);
  EXPECT_EQ(done.exit_code, 0) << done.out << done.err;
  EXPECT_THAT(done.out, HasSubstr("verify: checked="));
  EXPECT_THAT(done.out, HasSubstr("mismatches=0"));
  EXPECT_THAT(done.out, HasSubstr("blk_bench: done"));
  EXPECT_THAT(done.out, Not(HasSubstr("FAILED")));
  // Every request counted exactly once between the two processes: what the first completed
  // (its requests in flight included) and what the second did after the restore add up to an
  // uninterrupted run's counts.
  EXPECT_EQ(Sum({m1, m2}, "block_disk", "read_count"), 6000u);
  EXPECT_EQ(Sum({m1, m2}, "block_disk", "write_count"), 6000u + 1024u);
  EXPECT_GT(Sum({m2}, "block_disk", "read_count"), 0u) << "the restored VM did I/O of its own";
}

// A balloon the guest has inflated survives a restore: the size the guest reported comes back,
// the statistics buffer the first device held is taken again by the new one (the guest's figures
// keep coming every second), and at the next target the restored guest deflates and finds the
// pages it gave zeroed (they were released before the snapshot).
TEST(SnapshotTest, AnInflatedBalloonSurvivesARestore) {
  const std::string state = Temp("bal.state"), mem = Temp("bal.mem");
  ApiVm vm("snapbal");
  ASSERT_TRUE(vm.ready());
  ASSERT_EQ(vm.BootSource(Payload("balloon"), "region_mib=16"), 204);
  ASSERT_EQ(vm.Put("/machine-config", R"({"vcpu_count": 1, "mem_size_mib": 64})").status, 204);
  ASSERT_EQ(vm.Put("/balloon", R"({"amount_mib": 0, "deflate_on_oom": false,
                                   "stats_polling_interval_s": 1})")
                .status,
            204);
  ASSERT_EQ(vm.Start(), 204);
  ASSERT_TRUE(vm.proc().WaitFor("balloon: ready", 30000)) << vm.proc().out();
  ASSERT_EQ(vm.Patch("/balloon", R"({"amount_mib": 16})").status, 204);
  ASSERT_TRUE(vm.proc().WaitFor("balloon: inflated 4096 pages", 30000)) << vm.proc().out();
  ASSERT_EQ(vm.Pause(), 204);
  HttpReply snap = vm.Snapshot(state, mem);
  ASSERT_EQ(snap.status, 204) << snap.body;
  Kill(vm);

  ApiVm restored("snapbal2");
  ASSERT_TRUE(restored.ready());
  HttpReply r = restored.Load(state, mem, /*resume=*/true);
  ASSERT_EQ(r.status, 204) << r.body << restored.proc().err();
  auto stats = [&] {
    return Json::parse(restored.Get("/balloon/statistics").body, nullptr, false);
  };
  Json st = stats();
  EXPECT_EQ(st["actual_mib"], 16) << st;
  EXPECT_EQ(st["target_mib"], 16) << st;
  const uint64_t refreshes = st.value("minor_faults", uint64_t{0});
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  st = stats();
  EXPECT_GE(st.value("minor_faults", uint64_t{0}), refreshes + 1)
      << "the restored device asks for the guest's figures every second: " << st;
  ASSERT_EQ(restored.Patch("/balloon", R"({"amount_mib": 0})").status, 204);
  auto done = restored.proc().Finish(60000);
  EXPECT_THAT(done.out, HasSubstr("balloon: deflated 4096 pages")) << done.out << done.err;
  EXPECT_THAT(done.out, ::testing::ContainsRegex("balloon: [1-9][0-9]* passed, 0 failed"))
      << done.out << done.err;
}

TEST(SnapshotTest, TimerAndClockGoOnAfterRestore) {
  const std::string state = Temp("clock.state"), mem = Temp("clock.mem");
  auto vm = BootAndSnapshot("snapclk", "clock", "period=10 every=20 ticks=200", "clock: tick=60",
                            state, mem);
  Kill(*vm);
  // The VM is away for 1.5 s of host time, more than the longest gap the payload accepts below.
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  ApiVm restored("snapclk2", {"--no-seccomp"});
  ASSERT_TRUE(restored.ready());
  HttpReply r = restored.Load(state, mem, /*resume=*/false);
  ASSERT_EQ(r.status, 204) << r.body;
  EXPECT_EQ(restored.State(), "Paused");
  ASSERT_EQ(restored.Resume(), 204);
  auto done = restored.proc().Finish(60000);
  EXPECT_THAT(done.out, HasSubstr("clock: done ticks=200 backwards=0")) << done.out << done.err;
  EXPECT_THAT(done.out, HasSubstr("clock: tick=200"));
  const size_t at = done.out.find("max_gap_ms=");
  ASSERT_NE(at, std::string::npos) << done.out;
  const unsigned long max_gap = std::stoul(done.out.substr(at + 11));  // NOLINT(runtime/int)
  if (done.err.find("did not restore the guest's TSC") != std::string::npos) {
    // A KVM that cannot offset a guest's TSC keeps it on the host's: the edgevisor says so, and
    // only a software-virtualized host's KVM (PVM) is known to do that.
    EXPECT_EQ(access("/sys/module/kvm_pvm", F_OK), 0) << done.err;
    EXPECT_GE(max_gap, 1000u) << "the warning, yet no jump: " << done.out;
  } else {
    // 20 ticks of 10 ms: the guest's clock did not jump by the time the VM was away.
    EXPECT_LT(max_gap, 1000u) << done.out;
  }
}

// A restored VM snapshotted again to the very files it was restored from: it runs on from the
// old memory file (its inode stays), and the new files restore too.
TEST(SnapshotTest, ASnapshotOverTheFilesAVmRunsFrom) {
  const std::string state = Temp("same.state"), mem = Temp("same.mem");
  auto vm = BootAndSnapshot("snapsame", "clock", "period=10 every=20 ticks=300", "clock: tick=40",
                            state, mem);
  Kill(*vm);
  ApiVm second("snapsame2");
  ASSERT_TRUE(second.ready());
  ASSERT_EQ(second.Load(state, mem, /*resume=*/true).status, 204);
  ASSERT_TRUE(second.proc().WaitFor("clock: tick=100", 30000)) << second.proc().out();
  ASSERT_EQ(second.Pause(), 204);
  HttpReply r = second.Snapshot(state, mem);
  ASSERT_EQ(r.status, 204) << r.body;
  ASSERT_EQ(second.Resume(), 204);
  auto done = second.proc().Finish(60000);
  EXPECT_THAT(done.out, HasSubstr("clock: done ticks=300 backwards=0")) << done.out << done.err;
  ApiVm third("snapsame3");
  ASSERT_TRUE(third.ready());
  ASSERT_EQ(third.Load(state, mem, /*resume=*/true).status, 204);
  auto again = third.proc().Finish(60000);
  EXPECT_THAT(again.out, HasSubstr("clock: done ticks=300 backwards=0")) << again.out << again.err;
  EXPECT_THAT(again.out, Not(HasSubstr("clock: tick=100 "))) << "it went on from tick 100";
}

TEST(SnapshotTest, RestoredNetResponderAnswersPing) {
  ASSERT_EQ(geteuid(), 0u) << "network namespaces and TAPs need root";
  TapNamespace net("evsnap");
  ASSERT_TRUE(net.ok());
  const std::string& ns = net.name();
  auto in = [&](const std::string& cmd) { return net.In(cmd); };
  const std::string state = Temp("net.state"), mem = Temp("net.mem");
  const std::string sock1 = SockPath("snapnet"), sock2 = SockPath("snapnet2");
  unlink(sock1.c_str());
  unlink(sock2.c_str());
  // The VMMs run inside the namespace, where the TAP is.
  auto vm = std::make_unique<Spawned>(std::vector<std::string>{
      "/usr/bin/ip", "netns", "exec", ns, EdgevisorBin(), "--api-sock", sock1, "--id", "snapnet"});
  ASSERT_TRUE(WaitForSocket(sock1, 5000));
  auto put = [](const std::string& sock, const std::string& path, const std::string& body) {
    return Http(sock, "PUT", path, body).status;
  };
  ASSERT_EQ(put(sock1, "/boot-source",
                R"({"kernel_image_path": ")" + Payload("net_responder") +
                    R"(", "boot_args": "ip=10.0.2.15 port=7"})"),
            204);
  ASSERT_EQ(
      put(sock1, "/network-interfaces/eth0", R"({"iface_id": "eth0", "host_dev_name": "tap0"})"),
      204);
  ASSERT_EQ(put(sock1, "/actions", R"({"action_type": "InstanceStart"})"), 204);
  ASSERT_TRUE(vm->WaitFor("ready", 20000)) << vm->out() << vm->err();
  ASSERT_EQ(in("ping -c 3 -i 0.05 -W 2 10.0.2.15").first, 0);
  ASSERT_EQ(Http(sock1, "PATCH", "/vm", R"({"state": "Paused"})").status, 204);
  HttpReply s = Http(sock1, "PUT", "/snapshot/create",
                     R"({"snapshot_path": ")" + state + R"(", "mem_file_path": ")" + mem + "\"}");
  ASSERT_EQ(s.status, 204) << s.body;
  kill(vm->pid(), SIGKILL);
  vm->Finish(5000);

  auto restored = std::make_unique<Spawned>(std::vector<std::string>{
      "/usr/bin/ip", "netns", "exec", ns, EdgevisorBin(), "--api-sock", sock2, "--id", "snapnet2"});
  ASSERT_TRUE(WaitForSocket(sock2, 5000));
  HttpReply l = Http(sock2, "PUT", "/snapshot/load",
                     R"({"snapshot_path": ")" + state + R"(", "mem_file_path": ")" + mem +
                         R"(", "resume_vm": true})");
  ASSERT_EQ(l.status, 204) << l.body;
  auto [rc, out] = in("ping -c 20 -i 0.02 -W 2 10.0.2.15");
  EXPECT_EQ(rc, 0) << out << restored->err();
  EXPECT_THAT(out, HasSubstr(" 0% packet loss"));
  in("printf quit | socat -u - UDP:10.0.2.15:7");
  auto r = restored->Finish(20000);
  EXPECT_THAT(r.out, HasSubstr("net_responder: quit")) << r.out << r.err;
}

// PSS and RSS, in KiB, of a process's mappings of FILE (/proc/PID/smaps): the guest memory a
// restored VM maps from the snapshot's memory file, apart from the VMM's own memory (which a
// sanitizer build inflates).
std::pair<uint64_t, uint64_t> MappedPssRss(pid_t pid, const std::string& file) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/smaps");
  // The kernel names the file by its canonical path: compare the last component.
  const std::string name = file.substr(file.rfind('/'));
  uint64_t pss = 0, rss = 0;
  bool in_file = false;
  for (std::string line; std::getline(f, line);) {
    unsigned long long v = 0;  // NOLINT(runtime/int)
    if (line.find('-') < line.find(' ') && line.find(' ') != std::string::npos &&
        isxdigit(static_cast<unsigned char>(line[0]))) {
      // A mapping's header: "start-end perms offset dev inode   path"
      in_file = line.size() >= name.size() &&
                line.compare(line.size() - name.size(), name.size(), name) == 0;
    } else if (in_file && sscanf(line.c_str(), "Pss: %llu kB", &v) == 1) {
      pss += v;
    } else if (in_file && sscanf(line.c_str(), "Rss: %llu kB", &v) == 1) {
      rss += v;
    }
  }
  return {pss, rss};
}

TEST(SnapshotTest, TenClonesShareTheMemoryFile) {
  const std::string state = Temp("clone.state"), mem = Temp("clone.mem");
  constexpr uint64_t kTouchedMib = 24;
  // The guest writes 24 MiB, and reads all of it again before every tick line.
  const std::string cmdline = "touch=24 period=10 every=20 ticks=1000000";
  {
    auto vm = BootAndSnapshot("snapsrc", "clock", cmdline, "touched_ok=1", state, mem);
    Kill(*vm);
  }
  std::vector<std::unique_ptr<ApiVm>> clones;
  for (int i = 0; i < 10; ++i) {
    clones.push_back(std::make_unique<ApiVm>("clone" + std::to_string(i)));
    ASSERT_TRUE(clones.back()->ready());
    HttpReply r = clones.back()->Load(state, mem, /*resume=*/true);
    ASSERT_EQ(r.status, 204) << r.body;
  }
  // Each clone has read its whole 24 MiB since the restore (and found the pattern).
  for (auto& c : clones) {
    ASSERT_TRUE(c->proc().WaitFor("touched_ok=1", 20000)) << c->proc().out() << c->proc().err();
    EXPECT_THAT(c->proc().out(), Not(HasSubstr("touched_ok=0")));
  }
  uint64_t pss = 0, rss = 0;
  for (auto& c : clones) {
    EXPECT_EQ(c->State(), "Running") << c->proc().err().substr(0, 4000);
    auto [p, r] = MappedPssRss(c->proc().pid(), mem);
    pss += p;
    rss += r;
  }
  // Each clone maps the 24 MiB the guest touched, but the page cache holds them once: the
  // clones' RSS of the memory file counts them ten times, their PSS adds up to about one copy
  // (plus the few pages each guest wrote since, which are its own).
  std::printf("ten clones' mappings of the memory file: RSS %lu KiB, PSS %lu KiB\n",
              static_cast<unsigned long>(rss), static_cast<unsigned long>(pss));  // NOLINT
  EXPECT_GE(rss, 10 * kTouchedMib * 1024) << "pss " << pss << " KiB, rss " << rss << " KiB";
  EXPECT_LT(pss, 2 * kTouchedMib * 1024) << "pss " << pss << " KiB, rss " << rss << " KiB";
  for (auto& c : clones) Kill(*c);
}

// ---- bad snapshot files ----------------------------------------------------------------------

class BadSnapshotTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    good_state_ = new std::string(Temp("good.state"));
    good_mem_ = new std::string(Temp("good.mem"));
    auto vm = BootAndSnapshot("snapgood", "idle", "", "idle: ready", *good_state_, *good_mem_);
    Kill(*vm);
  }
  static void TearDownTestSuite() {
    delete good_state_;
    delete good_mem_;
  }
  // Loads BYTES as the state file: the answer must be 400 naming WHY, the process must stay up
  // with no VM, and the good snapshot must still load in it afterwards.
  void ExpectRefused(const std::string& bytes, const std::string& why,
                     const std::string& mem = "") {
    const std::string path = Temp("bad.state");
    WriteAll(path, bytes);
    ApiVm vm("snapbad");
    ASSERT_TRUE(vm.ready());
    HttpReply r = vm.Load(path, mem.empty() ? *good_mem_ : mem, true);
    EXPECT_EQ(r.status, 400) << r.body;
    EXPECT_THAT(r.body, HasSubstr(why));
    EXPECT_TRUE(vm.Alive());
    EXPECT_EQ(vm.State(), "Not started");
    HttpReply ok = vm.Load(*good_state_, *good_mem_, true);
    EXPECT_EQ(ok.status, 204) << ok.body;
    EXPECT_EQ(vm.State(), "Running");
  }
  static std::string Good() { return ReadAll(*good_state_); }
  // The good state with EDIT applied to its JSON, re-encoded with a valid checksum.
  static std::string Edited(const std::function<void(Json&)>& edit) {
    const std::string g = Good();
    auto d =
        snapshot::Decode(absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(g.data()), g.size()));
    EXPECT_TRUE(d.ok()) << d.status();
    edit(d->state);
    return snapshot::Encode(d->state, d->vmm_version);
  }
  static std::string* good_state_;
  static std::string* good_mem_;
};
std::string* BadSnapshotTest::good_state_ = nullptr;
std::string* BadSnapshotTest::good_mem_ = nullptr;

TEST_F(BadSnapshotTest, Truncated) {
  ExpectRefused(Good().substr(0, Good().size() - 100), "truncated");
}

TEST_F(BadSnapshotTest, ShorterThanTheHeader) { ExpectRefused(Good().substr(0, 20), "truncated"); }

TEST_F(BadSnapshotTest, WrongMagic) {
  std::string b = Good();
  b[0] = 'X';
  ExpectRefused(b, "bad magic");
}

TEST_F(BadSnapshotTest, WrongVersion) {
  std::string b = Good();
  b[8] = 9;
  ExpectRefused(b, "format version 9");
}

TEST_F(BadSnapshotTest, FlippedChecksum) {
  std::string b = Good();
  b[24] ^= 1;
  ExpectRefused(b, "checksum mismatch");
}

TEST_F(BadSnapshotTest, FlippedStateByte) {
  std::string b = Good();
  b[b.size() / 2] ^= 0x40;
  ExpectRefused(b, "checksum mismatch");
}

TEST_F(BadSnapshotTest, WrongArchitecture) {
  const std::string g = Good();
  auto d =
      snapshot::Decode(absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(g.data()), g.size()));
  ASSERT_TRUE(d.ok());
  ExpectRefused(snapshot::Encode(d->state, d->vmm_version, snapshot::Arch::kAarch64),
                "taken on aarch64");
}

TEST_F(BadSnapshotTest, VcpuCountMismatch) {
  ExpectRefused(Edited([](Json& j) { j["config"]["vcpus"] = 2; }),
                "vcpus: must be an array of 2 vCPU states");
}

TEST_F(BadSnapshotTest, MissingCpuFeature) {
  // A guest that saw AVX-512F (leaf 7 EBX bit 16) where this host's KVM may not offer it: the
  // check compares against what KVM supports, so set every bit of the word to be sure.
  ExpectRefused(Edited([](Json& j) {
                  auto& bin = j["vcpus"][0]["cpuid"].get_binary();
                  auto* e = reinterpret_cast<kvm_cpuid_entry2*>(bin.data());
                  for (size_t i = 0; i < bin.size() / sizeof(kvm_cpuid_entry2); ++i) {
                    if (e[i].function == 7 && e[i].index == 0) e[i].ebx = 0xffffffff;
                  }
                }),
                "CPU features this host's KVM cannot give: leaf 0x7.0 ebx");
}

TEST_F(BadSnapshotTest, MemoryFileTooShort) {
  const std::string small = Temp("small.mem");
  WriteAll(small, std::string(4096, '\0'));
  ExpectRefused(Good(), "but the snapshot's guest has", small);
}

TEST_F(BadSnapshotTest, RegisterBlobOfTheWrongSize) {
  ExpectRefused(Edited([](Json& j) {
                  j["vcpus"][0]["regs"] = Json::binary({1, 2, 3});
                }),
                "vcpus[0].regs: must be a");
}

}  // namespace
}  // namespace edgevisor::testing
