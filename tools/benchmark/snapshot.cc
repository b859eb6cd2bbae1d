// edgevisor-bench snapshot: how fast a snapshotted guest runs again, side by side.
//
//   edgevisor-bench snapshot [--runs N] [--mem MiB] [--clones 1,10,100] [--edgevisor PATH]
//                            [--qemu PATH] [--payload clock.elf] [--dir DIR] [--markdown FILE]
//                            [--json FILE]
//
// The guest is the clock payload printing a line every millisecond, so "the guest executes" is
// the arrival of its next console line. Measured, alternating edgevisor and QEMU microvm:
//  - cold boot: exec -> first tick line;
//  - restore: exec -> first tick line after the restore (edgevisor: --api-sock, PUT
//    /snapshot/load with resume_vm; QEMU: -incoming "exec:cat FILE" of a `migrate` to a file);
//  - snapshot creation: edgevisor's PATCH /vm Paused + PUT /snapshot/create; QEMU's HMP
//    `migrate "exec:cat > FILE"`; and the files' sizes (edgevisor's memory file is sparse);
//  - memory per clone: N edgevisor processes restored from one snapshot whose guest wrote 16 MiB
//    and reads it all again every 200 ms: the PSS of each (smaps_rollup), against its RSS.
#include "tools/benchmark/snapshot.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/api_client.h"
#include "tools/benchmark/qemu_microvm.h"
#include "tools/benchmark/util.h"

namespace edgevisor::bench {
namespace {

using edgevisor::testing::Http;
using edgevisor::testing::HttpReply;

using edgevisor::testing::WaitForSocket;

// A VMM child with its console on a pipe (stderr to LOG), killed when it goes out of scope.
class Child {
 public:
  Child(const std::vector<std::string>& argv, const std::string& log) {
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) return;
    pid_ = fork();
    if (pid_ == 0) {
      const int devnull = open("/dev/null", O_RDWR);
      const int err = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      dup2(devnull, 0);
      dup2(p[1], 1);
      dup2(err >= 0 ? err : devnull, 2);
      std::vector<char*> a;
      for (const auto& x : argv) a.push_back(const_cast<char*>(x.c_str()));
      a.push_back(nullptr);
      execv(a[0], a.data());
      _exit(127);
    }
    close(p[1]);
    fd_ = p[0];
  }
  ~Child() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (fd_ >= 0) close(fd_);
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  // The time (Now()) the first console line containing TEXT arrived; -1 after TIMEOUT seconds or
  // when the child closed its console first.
  double WaitLine(const std::string& text, double timeout) {
    const double end = Now() + timeout;
    for (;;) {
      size_t nl;
      while ((nl = buf_.find('\n')) != std::string::npos) {
        const bool hit =
            buf_.compare(0, nl, text) == 0 || buf_.substr(0, nl).find(text) != std::string::npos;
        buf_.erase(0, nl + 1);
        if (hit) return Now();
      }
      const double left = end - Now();
      if (left <= 0 || fd_ < 0) return -1;
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(left * 1000) + 1) <= 0) continue;
      char chunk[4096];
      const ssize_t n = read(fd_, chunk, sizeof(chunk));
      if (n <= 0) return -1;
      buf_.append(chunk, static_cast<size_t>(n));
    }
  }
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  int fd_ = -1;
  std::string buf_;
};

struct Setup {
  std::string ev, qemu, payload, dir, mem;
  // The API and monitor sockets: a private directory under $TMPDIR, not DIR, whose path may be
  // longer than a socket address holds (108 bytes) or on a file system without sockets (9p).
  std::string sock_dir;
  // One tick line per millisecond, for ever.
  std::string cmdline = "period=1 every=1 ticks=4000000000";
};

std::vector<std::string> QemuArgs(const Setup& s, const std::vector<std::string>& extra = {}) {
  return QemuMicrovm(s.qemu, s.payload, s.cmdline, s.mem, extra);
}

double ColdEdgevisor(const Setup& s) {
  const double t0 = Now();
  Child c({s.ev, "run", "--kernel", s.payload, "--cmdline", s.cmdline, "--mem", s.mem,
           "--log-level", "warn"},
          s.dir + "/cold.log");
  const double t = c.WaitLine("clock: tick=", 20);
  return t < 0 ? -1 : (t - t0) * 1e3;
}

double ColdQemu(const Setup& s) {
  const double t0 = Now();
  Child c(QemuArgs(s), s.dir + "/qemu-cold.log");
  const double t = c.WaitLine("clock: tick=", 20);
  return t < 0 ? -1 : (t - t0) * 1e3;
}

// An edgevisor serving the API on SOCK_DIR/NAME.sock.
struct ApiChild {
  ApiChild(const Setup& s, const std::string& name)
      : sock(s.sock_dir + "/" + name + ".sock"),
        child((unlink(sock.c_str()), std::vector<std::string>{s.ev, "--api-sock", sock, "--id",
                                                              name, "--level", "Warning"}),
              s.dir + "/" + name + ".log") {
    // Every 0.2 ms: the restore latency includes this wait, which must not be coarser.
    ready = WaitForSocket(sock, 5000, 200);
  }
  int Put(const std::string& path, const std::string& body) {
    return Http(sock, "PUT", path, body).status;
  }
  std::string sock;
  Child child;
  bool ready = false;
};

struct Created {
  double ms = -1;            // pause + create
  uint64_t state_bytes = 0;  // the state file
  uint64_t mem_bytes = 0;    // the memory file's apparent size
  uint64_t mem_alloc = 0;    // what it occupies (sparse)
};

// Boots the payload with CMDLINE through the API, waits for WAIT_FOR, and snapshots it to
// DIR/TAG.state and DIR/TAG.mem.
Created SnapshotEdgevisor(const Setup& s, const std::string& tag, const std::string& cmdline,
                          const std::string& wait_for) {
  Created out;
  ApiChild vm(s, tag + "-src");
  if (!vm.ready) return out;
  vm.Put("/boot-source",
         "{\"kernel_image_path\": \"" + s.payload + "\", \"boot_args\": \"" + cmdline + "\"}");
  vm.Put("/machine-config", "{\"vcpu_count\": 1, \"mem_size_mib\": " + s.mem + "}");
  if (vm.Put("/actions", R"({"action_type": "InstanceStart"})") != 204) return out;
  if (vm.child.WaitLine(wait_for, 30) < 0) return out;
  const std::string state = s.dir + "/" + tag + ".state", mem = s.dir + "/" + tag + ".mem";
  const double t0 = Now();
  if (Http(vm.sock, "PATCH", "/vm", R"({"state": "Paused"})").status != 204) return out;
  HttpReply r = Http(vm.sock, "PUT", "/snapshot/create",
                     "{\"snapshot_path\": \"" + state + "\", \"mem_file_path\": \"" + mem + "\"}");
  if (r.status != 204) {
    std::fprintf(stderr, "PUT /snapshot/create: %d %s\n", r.status, r.body.c_str());
    return out;
  }
  out.ms = (Now() - t0) * 1e3;
  struct stat st {};
  if (stat(state.c_str(), &st) == 0) out.state_bytes = static_cast<uint64_t>(st.st_size);
  if (stat(mem.c_str(), &st) == 0) {
    out.mem_bytes = static_cast<uint64_t>(st.st_size);
    out.mem_alloc = static_cast<uint64_t>(st.st_blocks) * 512;
  }
  return out;
}

std::string LoadBody(const Setup& s, const std::string& tag) {
  return "{\"snapshot_path\": \"" + s.dir + "/" + tag +
         ".state\", \"mem_backend\": " + "{\"backend_type\": \"File\", \"backend_path\": \"" +
         s.dir + "/" + tag + ".mem\"}, \"resume_vm\": true}";
}

// exec -> first tick line after the restore, and exec -> the load's 204.
std::pair<double, double> RestoreEdgevisor(const Setup& s) {
  const double t0 = Now();
  ApiChild vm(s, "restore");
  if (!vm.ready || vm.Put("/snapshot/load", LoadBody(s, "lat")) != 204) return {-1, -1};
  const double loaded = Now();
  const double t = vm.child.WaitLine("clock: tick=", 20);
  return {t < 0 ? -1 : (t - t0) * 1e3, (loaded - t0) * 1e3};
}

// HMP over a Unix socket: sends CMD and reads until the next prompt.
bool Hmp(const std::string& sock, const std::string& cmd) {
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::snprintf(a.sun_path, sizeof(a.sun_path), "%s", sock.c_str());
  bool ok = connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
  std::string got;
  auto prompt = [&] {
    char b[4096];
    while (got.find("(qemu) ") == std::string::npos) {
      const ssize_t n = read(fd, b, sizeof(b));
      if (n <= 0) return false;
      got.append(b, static_cast<size_t>(n));
    }
    got.clear();
    return true;
  };
  ok = ok && prompt() && write(fd, (cmd + "\n").data(), cmd.size() + 1) > 0 && prompt();
  close(fd);
  return ok;
}

// QEMU's save: a running guest migrated to DIR/qemu.state; its duration and the file's size.
Created SnapshotQemu(const Setup& s) {
  Created out;
  const std::string mon = s.sock_dir + "/qemu-mon.sock", file = s.dir + "/qemu.state";
  unlink(mon.c_str());
  Child c(QemuArgs(s, {"-monitor", "unix:" + mon + ",server,nowait"}), s.dir + "/qemu-src.log");
  if (c.WaitLine("clock: tick=", 20) < 0) return out;
  const double t0 = Now();
  if (!Hmp(mon, "migrate \"exec:cat > " + file + "\"")) return out;
  out.ms = (Now() - t0) * 1e3;
  struct stat st {};
  if (stat(file.c_str(), &st) == 0) {
    out.state_bytes = out.mem_bytes = static_cast<uint64_t>(st.st_size);
    out.mem_alloc = static_cast<uint64_t>(st.st_blocks) * 512;
  }
  return out;
}

double RestoreQemu(const Setup& s) {
  const double t0 = Now();
  Child c(QemuArgs(s, {"-incoming", "exec:cat " + s.dir + "/qemu.state"}),
          s.dir + "/qemu-restore.log");
  const double t = c.WaitLine("clock: tick=", 20);
  return t < 0 ? -1 : (t - t0) * 1e3;
}

// PSS and RSS of a process, KiB.
std::pair<uint64_t, uint64_t> PssRss(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/smaps_rollup");
  uint64_t pss = 0, rss = 0;
  for (std::string line; std::getline(f, line);) {
    unsigned long long v = 0;  // NOLINT(runtime/int)
    if (std::sscanf(line.c_str(), "Pss: %llu kB", &v) == 1) pss = v;
    if (std::sscanf(line.c_str(), "Rss: %llu kB", &v) == 1) rss = v;
  }
  return {pss, rss};
}

struct CloneRow {
  int n = 0;
  double pss_mib = -1, rss_mib = -1;  // per clone
};

// N clones of the "clone" snapshot, each having read its 16 MiB since the restore.
CloneRow Clones(const Setup& s, int n) {
  CloneRow row;
  row.n = n;
  std::vector<std::unique_ptr<ApiChild>> vms;
  for (int i = 0; i < n; ++i) {
    vms.push_back(std::make_unique<ApiChild>(s, "clone" + std::to_string(i)));
    if (!vms.back()->ready || vms.back()->Put("/snapshot/load", LoadBody(s, "clone")) != 204) {
      std::fprintf(stderr, "clone %d of %d did not restore (log: %s/clone%d.log)\n", i, n,
                   s.dir.c_str(), i);
      return row;
    }
  }
  for (auto& vm : vms) {
    if (vm->child.WaitLine("touched_ok=1", 60) < 0) {
      std::fprintf(stderr, "a clone never read its memory back\n");
      return row;
    }
  }
  uint64_t pss = 0, rss = 0;
  for (auto& vm : vms) {
    auto [p, r] = PssRss(vm->child.pid());
    pss += p;
    rss += r;
  }
  row.pss_mib = pss / 1024.0 / n;
  row.rss_mib = rss / 1024.0 / n;
  return row;
}

std::string Cell(const std::vector<double>& v, const char* unit) {
  const Stats st = Summarize(v);
  char b[128];
  std::snprintf(b, sizeof(b), "%.1f %s (%.1f–%.1f)", st.median, unit, st.min, st.max);
  return b;
}

bool AllGood(const std::vector<double>& v) {
  for (double x : v) {
    if (x < 0) return false;
  }
  return !v.empty();
}

}  // namespace

int Snapshot(std::map<std::string, std::string> opts) {
  Setup s;
  const int runs = std::stoi(Arg(opts, "--runs", "10"));
  s.mem = Arg(opts, "--mem", "64");
  s.ev = Arg(opts, "--edgevisor", "build/src/edgevisor");
  s.qemu = Arg(opts, "--qemu", "/usr/bin/qemu-system-x86_64");
  s.payload = Arg(opts, "--payload", "build/firmware/clock.elf");
  s.dir = Arg(opts, "--dir", "/tmp/edgevisor-bench-snapshot");
  std::vector<int> clone_counts;
  std::stringstream cl(Arg(opts, "--clones", "1,10,100"));
  for (std::string x; std::getline(cl, x, ',');) clone_counts.push_back(std::stoi(x));
  std::system(("rm -rf " + s.dir + " && mkdir -p " + s.dir).c_str());
  const char* tmp = std::getenv("TMPDIR");
  std::string sock_template = std::string(tmp && *tmp ? tmp : "/tmp") + "/ev-bench-XXXXXX";
  if (mkdtemp(sock_template.data()) == nullptr) {
    std::fprintf(stderr, "cannot make a socket directory %s: %s\n", sock_template.c_str(),
                 std::strerror(errno));
    return 1;
  }
  s.sock_dir = sock_template;
  struct RemoveSockDir {
    ~RemoveSockDir() {
      std::error_code ec;
      std::filesystem::remove_all(dir, ec);
    }
    std::string dir;
  } remove_sock_dir{s.sock_dir};

  const Created ev_snap = SnapshotEdgevisor(s, "lat", s.cmdline, "clock: tick=");
  const Created q_snap = SnapshotQemu(s);
  if (ev_snap.ms < 0 || q_snap.ms < 0) {
    std::fprintf(stderr, "%s snapshot failed (logs in %s)\n", ev_snap.ms < 0 ? "edgevisor" : "QEMU",
                 s.dir.c_str());
    return 1;
  }
  std::vector<double> ev_cold, q_cold, ev_restore, ev_loaded, q_restore;
  for (int i = 0; i < runs; ++i) {
    const bool ev_first = i % 2 == 0;  // alternate who goes first
    for (int k = 0; k < 2; ++k) {
      if ((k == 0) == ev_first) {
        ev_cold.push_back(ColdEdgevisor(s));
        auto [restore, loaded] = RestoreEdgevisor(s);
        ev_restore.push_back(restore);
        ev_loaded.push_back(loaded);
      } else {
        q_cold.push_back(ColdQemu(s));
        q_restore.push_back(RestoreQemu(s));
      }
    }
  }
  for (const auto* v : {&ev_cold, &q_cold, &ev_restore, &q_restore}) {
    if (!AllGood(*v)) {
      std::fprintf(stderr, "a run never showed the guest's tick line (logs in %s)\n",
                   s.dir.c_str());
      return 1;
    }
  }
  // The clones' snapshot: the guest owns 16 MiB and reads it back every 200 ms.
  if (SnapshotEdgevisor(s, "clone", "touch=16 period=20 every=10 ticks=4000000000", "touched_ok=1")
          .ms < 0) {
    std::fprintf(stderr, "the clones' snapshot failed (logs in %s)\n", s.dir.c_str());
    return 1;
  }
  std::vector<CloneRow> clones;
  for (int n : clone_counts) {
    clones.push_back(Clones(s, n));
    if (clones.back().pss_mib < 0) return 1;
  }

  char date[32];
  const time_t now = time(nullptr);
  strftime(date, sizeof(date), "%Y-%m-%d", gmtime(&now));
  const long ncpu = sysconf(_SC_NPROCESSORS_ONLN);  // NOLINT(runtime/int)
  const double ratio_ev = Summarize(ev_restore).median / Summarize(ev_cold).median;
  const double ratio_q = Summarize(q_restore).median / Summarize(q_cold).median;
  std::ostringstream md;
  md << "Snapshot and restore, " << date << ", " << ncpu << "-core host, " << runs
     << " runs each, alternating; payload `" << s.payload << "` (a tick line every ms), " << s.mem
     << " MiB guest\n\n"
     << "| metric | edgevisor median (min–max) | QEMU microvm median (min–max) | ratio |\n"
     << "|---|---|---|---|\n";
  char row[512];
  std::snprintf(row, sizeof(row), "| cold boot: exec → first tick | %s | %s | %.2fx |\n",
                Cell(ev_cold, "ms").c_str(), Cell(q_cold, "ms").c_str(),
                Summarize(ev_cold).median / Summarize(q_cold).median);
  md << row;
  std::snprintf(row, sizeof(row), "| restore: exec → first tick | %s | %s | %.2fx |\n",
                Cell(ev_restore, "ms").c_str(), Cell(q_restore, "ms").c_str(),
                Summarize(ev_restore).median / Summarize(q_restore).median);
  md << row;
  std::snprintf(row, sizeof(row), "| restore ÷ cold boot | %.2f | %.2f | |\n", ratio_ev, ratio_q);
  md << row;
  std::snprintf(row, sizeof(row), "| edgevisor: exec → PUT /snapshot/load answered | %s | | |\n",
                Cell(ev_loaded, "ms").c_str());
  md << row;
  std::snprintf(row, sizeof(row),
                "| snapshot creation (pause + create; QEMU: migrate to a file) | %.1f ms | %.1f ms "
                "| %.2fx |\n",
                ev_snap.ms, q_snap.ms, ev_snap.ms / q_snap.ms);
  md << row;
  std::snprintf(row, sizeof(row),
                "| files: state + memory, apparent (on disk) | %.1f KiB + %.1f MiB (%.2f MiB) | "
                "%.2f MiB (%.2f MiB) | |\n",
                ev_snap.state_bytes / 1024.0, ev_snap.mem_bytes / 1048576.0,
                ev_snap.mem_alloc / 1048576.0, q_snap.mem_bytes / 1048576.0,
                q_snap.mem_alloc / 1048576.0);
  md << row;
  md << "\nClones restored from one snapshot (edgevisor; the guest wrote 16 MiB and reads it "
        "all back every 200 ms)\n\n| clones | PSS per clone | RSS per clone |\n|---|---|---|\n";
  for (const CloneRow& c : clones) {
    std::snprintf(row, sizeof(row), "| %d | %.2f MiB | %.2f MiB |\n", c.n, c.pss_mib, c.rss_mib);
    md << row;
  }
  std::ostringstream js;
  js << "{\"benchmark\":\"snapshot\",\"date\":\"" << date << "\",\"runs\":" << runs
     << ",\"guest_mem_mib\":" << s.mem
     << ",\"edgevisor\":{\"cold_ms\":" << Summarize(ev_cold).median
     << ",\"restore_ms\":" << Summarize(ev_restore).median
     << ",\"load_answered_ms\":" << Summarize(ev_loaded).median << ",\"create_ms\":" << ev_snap.ms
     << ",\"state_bytes\":" << ev_snap.state_bytes << ",\"mem_bytes\":" << ev_snap.mem_bytes
     << ",\"mem_allocated_bytes\":" << ev_snap.mem_alloc
     << "},\"qemu\":{\"cold_ms\":" << Summarize(q_cold).median
     << ",\"restore_ms\":" << Summarize(q_restore).median << ",\"create_ms\":" << q_snap.ms
     << ",\"file_bytes\":" << q_snap.mem_bytes << "},\"clones\":[";
  for (size_t i = 0; i < clones.size(); ++i) {
    js << (i ? "," : "") << "{\"n\":" << clones[i].n << ",\"pss_mib\":" << clones[i].pss_mib
       << ",\"rss_mib\":" << clones[i].rss_mib << "}";
  }
  js << "]}\n";
  std::fputs(md.str().c_str(), stdout);
  std::fputs(js.str().c_str(), stdout);
  if (opts.count("--json")) std::ofstream(opts["--json"]) << js.str();
  if (opts.count("--markdown")) std::ofstream(opts["--markdown"]) << md.str();
  return 0;
}

}  // namespace edgevisor::bench
