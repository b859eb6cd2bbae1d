// edgevisor-bench: side-by-side benchmarks of edgevisor against a peer VMM on the same machine.
//
//   edgevisor-bench startup [--runs N] [--mem MiB] [--edgevisor PATH] [--qemu PATH]
//                           [--payload PATH] [--json FILE] [--markdown FILE] [--isolation JAILER]
//
// Each run is exec -> exit of one VMM booting the same PVH payload, alternating the VMMs so that
// machine noise hits both. It reports wall time, CPU time (wait4 rusage), and the VMM's own
// memory: RSS from /proc/PID/smaps at exit, minus the guest-RAM mapping. The child is ptraced
// only to stop it at PTRACE_EVENT_EXIT, when its address space is still intact.
#include <dirent.h>
#include <fcntl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "tools/benchmark/qemu_microvm.h"
#include "tools/benchmark/snapshot.h"
#include "tools/benchmark/util.h"

using edgevisor::QemuMicrovm;
using edgevisor::QemuVirtioBlk;
using edgevisor::bench::Arg;
using edgevisor::bench::Now;
using edgevisor::bench::Stats;
using edgevisor::bench::Summarize;

namespace {

struct Sample {
  double wall_ms = 0;
  double cpu_ms = 0;
  // Non-guest RSS at exit. edgevisor has already unmapped guest RAM by then; QEMU still has it,
  // and its guest-RAM mapping is subtracted.
  double rss_mib = 0;
  int exit_code = -1;
};

struct Smaps {
  uint64_t total_rss_kb = 0;
  uint64_t guest_rss_kb = 0;
};

// Sums Rss over all mappings; the guest-RAM mapping is the one whose Size equals the guest's RAM
// (both VMMs map guest RAM as one anonymous region of exactly that size).
Smaps ReadSmaps(pid_t pid, uint64_t guest_kb) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/smaps");
  Smaps s;
  std::string line;
  uint64_t size_kb = 0;
  while (std::getline(f, line)) {
    unsigned long long v = 0;  // NOLINT(runtime/int)
    if (std::sscanf(line.c_str(), "Size: %llu kB", &v) == 1) {
      size_kb = v;
    } else if (std::sscanf(line.c_str(), "Rss: %llu kB", &v) == 1) {
      s.total_rss_kb += v;
      if (size_kb == guest_kb) s.guest_rss_kb += v;
    }
  }
  return s;
}

Sample RunOnce(const std::vector<std::string>& argv, uint64_t guest_mib) {
  Sample s;
  auto t0 = std::chrono::steady_clock::now();
  pid_t pid = fork();
  if (pid == 0) {
    int devnull = open("/dev/null", O_RDWR);
    dup2(devnull, 0);
    dup2(devnull, 1);
    dup2(devnull, 2);
    ptrace(PTRACE_TRACEME, 0, nullptr, nullptr);
    std::vector<char*> a;
    for (const auto& x : argv) a.push_back(const_cast<char*>(x.c_str()));
    a.push_back(nullptr);
    execv(a[0], a.data());
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);  // the exec SIGTRAP
  ptrace(PTRACE_SETOPTIONS, pid, nullptr, PTRACE_O_TRACEEXIT | PTRACE_O_EXITKILL);
  ptrace(PTRACE_CONT, pid, nullptr, nullptr);
  rusage ru{};
  for (;;) {
    if (wait4(pid, &status, 0, &ru) < 0) break;
    if (WIFEXITED(status) || WIFSIGNALED(status)) break;
    if (WIFSTOPPED(status)) {
      int sig = WSTOPSIG(status);
      if (sig == SIGTRAP && (status >> 16) == PTRACE_EVENT_EXIT) {
        Smaps m = ReadSmaps(pid, guest_mib * 1024);
        s.rss_mib = (m.total_rss_kb - m.guest_rss_kb) / 1024.0;
        sig = 0;
      } else if (sig == SIGTRAP) {
        sig = 0;
      }
      ptrace(PTRACE_CONT, pid, nullptr, sig);
    }
  }
  s.wall_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  s.cpu_ms = (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
             (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
  s.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return s;
}

struct Peer {
  std::string name;
  std::vector<std::string> argv;
  int want_exit;  // 1: the debug-exit port's (v << 1) | 1; 0: halted (no debug-exit device)
  std::vector<Sample> samples;
};

// For --jailer: a jail at BASE/edgevisor/bench/root with the payload and a Firecracker config
// that boots it, as a fleet manager prepares one. Returns the jailer's command line.
std::vector<std::string> JailedPeer(const std::string& jailer, const std::string& ev,
                                    const std::string& payload, const std::string& cmdline,
                                    const std::string& mem_s) {
  const std::string base = "/tmp/edgevisor-bench-jail";
  const std::string root = base + "/edgevisor/bench/root";
  std::system(("rm -rf " + base + " && mkdir -p " + root).c_str());
  std::system(("cp " + payload + " " + root + "/payload.elf && chmod 0644 " + root + "/payload.elf")
                  .c_str());
  std::ofstream(root + "/config.json")
      << "{\"boot-source\": {\"kernel_image_path\": \"/payload.elf\", \"boot_args\": \"" << cmdline
      << "\"}, \"machine-config\": {\"vcpu_count\": 1, \"mem_size_mib\": " << mem_s
      << "}, \"logger\": {\"level\": \"Warning\"}}\n";
  return {jailer,  "--id",  "bench",         "--exec-file",  ev,
          "--uid", "65534", "--gid",         "65534",        "--chroot-base-dir",
          base,    "--",    "--config-file", "/config.json", "--no-api"};
}

// The isolation table: what seccomp adds to a plain run, and what the jailer adds to a
// config-file run, per metric (medians).
void IsolationTable(const std::vector<Peer>& peers, std::ostringstream& md) {
  auto median = [&](const std::string& name, double Sample::*f) {
    for (const Peer& p : peers) {
      if (p.name != name) continue;
      std::vector<double> v;
      for (const Sample& s : p.samples) v.push_back(s.*f);
      return Summarize(v).median;
    }
    return -1.0;
  };
  md << "\n| metric | --no-seccomp | seccomp (default) | seccomp cost | --config-file | "
        "jailer + --config-file | jailer cost |\n|---|---|---|---|---|---|---|\n";
  const std::pair<const char*, double Sample::*> rows[] = {
      {"wall ms", &Sample::wall_ms}, {"CPU ms", &Sample::cpu_ms}, {"RSS MiB", &Sample::rss_mib}};
  for (const auto& [label, f] : rows) {
    const double off = median("edgevisor --no-seccomp", f), on = median("edgevisor", f);
    const double cf = median("edgevisor --config-file", f), j = median("jailer", f);
    char row[256];
    std::snprintf(row, sizeof(row), "| %s | %.2f | %.2f | %+.2f | %.2f | %.2f | %+.2f |\n", label,
                  off, on, on - off, cf, j, j - cf);
    md << row;
  }
}

// The tables (markdown) and the JSON of a startup run: edgevisor against QEMU, and with
// --isolation the cost of seccomp and of the jailer.
int StartupReport(std::map<std::string, std::string>& opts, const std::vector<Peer>& peers,
                  int runs, uint64_t mem, const std::string& payload) {
  char host[256] = {};
  gethostname(host, sizeof(host) - 1);
  char date[32];
  time_t now = time(nullptr);
  strftime(date, sizeof(date), "%Y-%m-%d", gmtime(&now));
  const long ncpu = sysconf(_SC_NPROCESSORS_ONLN);  // NOLINT(runtime/int)

  std::ostringstream md, js;
  md << "Startup, " << date << ", " << ncpu << "-core host, " << runs
     << " runs each, alternating; payload `" << payload << "`, " << mem << " MiB guest\n\n"
     << "| metric | edgevisor median (min–max) | QEMU microvm median (min–max) | ratio |\n"
     << "|---|---|---|---|\n";
  js << "{\"benchmark\":\"startup\",\"date\":\"" << date << "\",\"runs\":" << runs
     << ",\"guest_mem_mib\":" << mem << ",\"results\":{";
  struct Metric {
    const char* name;
    const char* unit;
    double Sample::*field;
  };
  const Metric metrics[] = {{"wall time exec→exit", "ms", &Sample::wall_ms},
                            {"CPU time (user+sys)", "ms", &Sample::cpu_ms},
                            {"non-guest RSS at exit", "MiB", &Sample::rss_mib}};
  bool first_peer = true;
  for (const Peer& p : peers) {
    js << (first_peer ? "" : ",") << "\"" << p.name << "\":{";
    first_peer = false;
    bool first = true;
    for (const Metric& m : metrics) {
      std::vector<double> v;
      for (const Sample& s : p.samples) v.push_back(s.*m.field);
      Stats st = Summarize(v);
      js << (first ? "" : ",") << "\"" << m.name << "\":{\"unit\":\"" << m.unit
         << "\",\"median\":" << st.median << ",\"min\":" << st.min << ",\"max\":" << st.max << "}";
      first = false;
    }
    js << "}";
  }
  js << "}}\n";
  for (const Metric& m : metrics) {
    std::vector<double> a, b;
    for (const Sample& s : peers[0].samples) a.push_back(s.*m.field);
    for (const Sample& s : peers[1].samples) b.push_back(s.*m.field);
    Stats sa = Summarize(a), sb = Summarize(b);
    char row[256];
    std::snprintf(row, sizeof(row), "| %s | %.2f %s (%.2f–%.2f) | %.2f %s (%.2f–%.2f) | %.2fx |\n",
                  m.name, sa.median, m.unit, sa.min, sa.max, sb.median, m.unit, sb.min, sb.max,
                  sb.median > 0 ? sa.median / sb.median : 0.0);
    md << row;
  }
  if (peers.size() > 2) IsolationTable(peers, md);
  std::fputs(md.str().c_str(), stdout);
  std::fputs(js.str().c_str(), stdout);
  if (opts.count("--json")) std::ofstream(opts["--json"]) << js.str();
  if (opts.count("--markdown")) std::ofstream(opts["--markdown"]) << md.str();
  return 0;
}

int Startup(std::map<std::string, std::string> opts) {
  const int runs = std::stoi(Arg(opts, "--runs", "20"));
  const uint64_t mem = std::stoull(Arg(opts, "--mem", "64"));
  const std::string ev = Arg(opts, "--edgevisor", "build/src/edgevisor");
  const std::string qemu = Arg(opts, "--qemu", "/usr/bin/qemu-system-x86_64");
  const std::string payload = Arg(opts, "--payload", "build/firmware/hello.elf");
  const std::string cmdline = "bench";
  const std::string mem_s = std::to_string(mem);
  const std::vector<std::string> run = {ev,      "run",   "--kernel", payload,        "--cmdline",
                                        cmdline, "--mem", mem_s,      "--debug-exit", "--log-level",
                                        "warn"};
  std::vector<Peer> peers = {{"edgevisor", run, 1, {}},
                             {"qemu-microvm", QemuMicrovm(qemu, payload, cmdline, mem_s), 1, {}}};
  if (opts.count("--isolation")) {
    // What seccomp and the jailer cost (docs/isolation.md): the same run without the filters,
    // and a --config-file run directly and through the jailer.
    std::vector<std::string> off = run;
    off.push_back("--no-seccomp");
    peers.push_back({"edgevisor --no-seccomp", off, 1, {}});
    const std::string cfg = "/tmp/edgevisor-bench-config.json";
    std::ofstream(cfg) << "{\"boot-source\": {\"kernel_image_path\": \"" << payload
                       << "\", \"boot_args\": \"" << cmdline
                       << "\"}, \"machine-config\": {\"vcpu_count\": 1, \"mem_size_mib\": " << mem_s
                       << "}, \"logger\": {\"level\": \"Warning\"}}\n";
    peers.push_back({"edgevisor --config-file", {ev, "--config-file", cfg, "--no-api"}, 0, {}});
    peers.push_back(
        {"jailer", JailedPeer(opts["--isolation"], ev, payload, cmdline, mem_s), 0, {}});
  }
  for (Peer& p : peers) RunOnce(p.argv, mem);  // warm the page cache; not counted
  for (int i = 0; i < runs; ++i) {
    for (size_t k = 0; k < peers.size(); ++k) {
      Peer& p = peers[(i + k) % peers.size()];  // alternate who goes first
      Sample s = RunOnce(p.argv, mem);
      if (s.exit_code != p.want_exit) {
        std::fprintf(stderr, "%s exited with %d (expected %d)\n", p.name.c_str(), s.exit_code,
                     p.want_exit);
        return 1;
      }
      p.samples.push_back(s);
    }
  }
  return StartupReport(opts, peers, runs, mem, payload);
}

// ---- blk: the blk_bench payload on edgevisor and QEMU, plus host fio ---------------------------

struct PhaseResult {
  double iops = 0;
  double cpu_pct = 0;
  double dev_us_per_op = 0;  // CPU µs per request on the device thread(s) alone
};
using PhaseMap = std::map<std::string, PhaseResult>;

// utime + stime, in seconds, from a /proc/.../stat file (a process's or a thread's).
double StatCpuSeconds(const std::string& stat_path) {
  std::ifstream f(stat_path);
  std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  const size_t rp = s.rfind(')');
  if (rp == std::string::npos) return 0;
  std::istringstream in(s.substr(rp + 2));
  std::string field;
  unsigned long long ut = 0, st = 0;  // NOLINT(runtime/int)
  for (int i = 3; i <= 15 && in >> field; ++i) {
    if (i == 14) ut = std::stoull(field);
    if (i == 15) st = std::stoull(field);
  }
  return static_cast<double>(ut + st) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// utime + stime of the whole process, in seconds.
double ProcCpu(pid_t pid) { return StatCpuSeconds("/proc/" + std::to_string(pid) + "/stat"); }

// Which threads of a VMM do its device work: edgevisor's device threads ("blk0", "net0"),
// QEMU's iothread ("IO io0", named with -name debug-threads=on) or its main loop (tid == pid,
// where QEMU's TAP backend runs).
using ThreadPick = std::function<bool(pid_t pid, pid_t tid, const std::string& comm)>;
ThreadPick NamePrefix(const std::string& prefix) {
  return [prefix](pid_t, pid_t, const std::string& comm) { return comm.rfind(prefix, 0) == 0; };
}
ThreadPick MainThread() {
  return [](pid_t pid, pid_t tid, const std::string&) { return tid == pid; };
}

// CPU time, in µs, of the threads of `pid` that `pick` accepts; -1 if none is found. Per thread
// from /proc/PID/task/TID/schedstat (nanoseconds on a CPU) where the kernel keeps it, else from
// utime + stime in /proc/PID/task/TID/stat (clock ticks, 10 ms: too coarse for short phases).
double ThreadsCpuUs(pid_t pid, const ThreadPick& pick) {
  const std::string dir = "/proc/" + std::to_string(pid) + "/task";
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return -1;
  double total = 0;
  bool found = false;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    const pid_t tid = static_cast<pid_t>(std::atoi(e->d_name));
    const std::string task = dir + "/" + e->d_name;
    std::string comm;
    std::getline(std::ifstream(task + "/comm"), comm);
    if (!pick(pid, tid, comm)) continue;
    unsigned long long ns = 0;  // NOLINT(runtime/int)
    if (std::ifstream(task + "/schedstat") >> ns) {
      total += static_cast<double>(ns) / 1000.0;
    } else {
      total += 1e6 * StatCpuSeconds(task + "/stat");
    }
    found = true;
  }
  closedir(d);
  return found ? total : -1;
}

// Runs a VMM with its console on a pipe and calls on_line(line, arrival time, pid) for every
// console line as it arrives. Returns the VMM's exit status when it exits (-1: it did not start
// or was killed by a signal).
int RunWithConsole(const std::vector<std::string>& argv,
                   const std::function<void(const std::string&, double, pid_t)>& on_line) {
  int pipefd[2];
  if (pipe(pipefd) != 0) return -1;
  pid_t pid = fork();
  if (pid == 0) {
    int devnull = open("/dev/null", O_RDWR);
    dup2(devnull, 0);
    dup2(pipefd[1], 1);
    dup2(devnull, 2);
    close(pipefd[0]);
    std::vector<char*> a;
    for (const auto& x : argv) a.push_back(const_cast<char*>(x.c_str()));
    a.push_back(nullptr);
    execv(a[0], a.data());
    _exit(127);
  }
  close(pipefd[1]);
  std::string buf;
  char chunk[4096];
  for (;;) {
    ssize_t n = read(pipefd[0], chunk, sizeof(chunk));
    if (n <= 0) break;
    const double t = Now();
    buf.append(chunk, static_cast<size_t>(n));
    size_t nl;
    while ((nl = buf.find('\n')) != std::string::npos) {
      on_line(buf.substr(0, nl), t, pid);
      buf.erase(0, nl + 1);
    }
  }
  close(pipefd[0]);
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// The payloads end through the debug-exit port: status 1 is "returned 0", every check passed.
bool PayloadSucceeded(const std::string& who, int status) {
  if (status == 1) return true;
  std::fprintf(stderr,
               "%s exited with %d (expected 1: the payload returned 0 through debug-exit)\n",
               who.c_str(), status);
  return false;
}

// Runs a VMM with the blk_bench payload and times the phases by the console lines
// "bench: <phase> start" and "bench: <phase> done ops=<n> ...". A run counts only if the payload
// finished, every phase completed all its requests without error (the payload's exit status
// says so) and each of PHASES was timed.
bool RunBlkBench(const std::string& who, const std::vector<std::string>& argv,
                 const ThreadPick& device_threads, const std::vector<std::string>& phases,
                 PhaseMap& out) {
  struct Start {
    double t, cpu, dev_us;
  };
  std::map<std::string, Start> starts;
  bool done = false, no_device_thread = false;
  const int status = RunWithConsole(argv, [&](const std::string& line, double t, pid_t pid) {
    char phase[64];
    unsigned long ops = 0;  // NOLINT(runtime/int)
    if (std::sscanf(line.c_str(), "bench: %63s start", phase) == 1 &&
        line.find(" start") != std::string::npos) {
      starts[phase] = {t, ProcCpu(pid), ThreadsCpuUs(pid, device_threads)};
    } else if (std::sscanf(line.c_str(), "bench: %63s done ops=%lu", phase, &ops) == 2 &&
               starts.count(phase)) {
      const Start& s0 = starts[phase];
      const double dt = t - s0.t, dev = ThreadsCpuUs(pid, device_threads);
      // A phase without requests may end before the device thread exists: it is refused below
      // as not timed, and has nothing to measure.
      if (ops > 0 && (dev < 0 || s0.dev_us < 0)) no_device_thread = true;
      out[phase] = {ops / dt, 100.0 * (ProcCpu(pid) - s0.cpu) / dt,
                    ops > 0 ? (dev - s0.dev_us) / static_cast<double>(ops) : 0};
    } else if (line.find("blk_bench: done") != std::string::npos) {
      done = true;
    }
  });
  if (no_device_thread) {
    std::fprintf(stderr, "%s: no device thread found to measure\n", who.c_str());
    return false;
  }
  if (!done) {
    std::fprintf(stderr, "%s: blk_bench did not finish\n", who.c_str());
    return false;
  }
  if (!PayloadSucceeded(who, status)) return false;
  for (const std::string& ph : phases) {
    if (!out.count(ph) || out[ph].iops <= 0) {
      std::fprintf(stderr, "%s: phase %s was not timed\n", who.c_str(), ph.c_str());
      return false;
    }
  }
  return true;
}

// Host fio on the same file, block size and queue depth: the physical limit.
double FioIops(const std::string& fio, const std::string& file, const std::string& rw, int qd,
               bool direct) {
  std::string cmd = fio + " --name=b --filename=" + file + " --ioengine=io_uring --rw=" + rw +
                    " --bs=4k --iodepth=" + std::to_string(qd) +
                    " --size=64M --runtime=3 --time_based --output-format=terse --terse-version=3" +
                    " --direct=" + (direct ? "1" : "0") + " 2>/dev/null";
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return 0;
  std::string out;
  char b[4096];
  while (size_t n = fread(b, 1, sizeof(b), p)) out.append(b, n);
  pclose(p);
  // terse v3: field 8 is read IOPS, field 49 is write IOPS (1-based).
  std::vector<std::string> f;
  std::stringstream ss(out);
  std::string item;
  while (std::getline(ss, item, ';')) f.push_back(item);
  if (f.size() < 49) return 0;
  return std::stod(rw == "randread" ? f[7] : f[48]);
}

int Blk(std::map<std::string, std::string> opts) {
  const int runs = std::stoi(Arg(opts, "--runs", "3"));
  const std::string ev = Arg(opts, "--edgevisor", "build/src/edgevisor");
  const std::string qemu = Arg(opts, "--qemu", "/usr/bin/qemu-system-x86_64");
  const std::string payload = Arg(opts, "--payload", "build/firmware/blk_bench.elf");
  const std::string file = Arg(opts, "--file", "/var/tmp/edgevisor-bench.img");
  const std::string fio = Arg(opts, "--fio", "/usr/bin/fio");
  const std::string ops = Arg(opts, "--ops", "2000");
  const std::string cmdline = "ops=" + ops + " span=64";
  const std::vector<std::string> phases = {"randread-qd1", "randwrite-qd1", "randread-qd32",
                                           "randwrite-qd32"};
  {  // a fully allocated 256 MiB file, so neither side pays for holes
    std::string mk = "test -s " + file + " || fio --name=fill --filename=" + file +
                     " --rw=write --bs=1M --size=256M --output=/dev/null";
    if (std::system(mk.c_str()) != 0) return 1;
  }
  struct Peer {
    std::string name;
    std::vector<std::string> argv;
    ThreadPick device_threads;
    std::vector<PhaseMap> runs;
  };
  std::vector<std::string> qemu_blk = QemuVirtioBlk(file, "io0");
  qemu_blk.insert(qemu_blk.end(), {"-name", "debug-threads=on"});
  std::vector<Peer> peers = {
      {"edgevisor",
       {ev, "run", "--kernel", payload, "--cmdline", cmdline, "--mem", "128", "--debug-exit",
        "--log-level", "warn", "--drive", "path=" + file},
       NamePrefix("blk"),
       {}},
      {"qemu-microvm",
       QemuMicrovm(qemu, payload, cmdline, "128", qemu_blk),
       NamePrefix("IO io0"),
       {}},
  };
  for (int i = 0; i < runs; ++i) {
    for (size_t k = 0; k < peers.size(); ++k) {
      Peer& p = peers[(i + k) % peers.size()];
      PhaseMap m;
      if (!RunBlkBench(p.name, p.argv, p.device_threads, phases, m)) return 1;
      p.runs.push_back(m);
    }
  }
  char date[32];
  time_t now = time(nullptr);
  strftime(date, sizeof(date), "%Y-%m-%d", gmtime(&now));
  std::ostringstream md;
  md << "Block, " << date << ", " << sysconf(_SC_NPROCESSORS_ONLN) << "-core host, 4 KiB random I/O"
     << " over 64 MiB of a 256 MiB raw file, " << ops << " ops per phase, median of " << runs
     << " runs each (alternating)\n\n"
     << "Device thread: host CPU per request on edgevisor's blk0 thread alone and on QEMU's "
        "iothread (virtio-blk-device,iothread=io0), from /proc/PID/task/TID/schedstat.\n\n"
     << "| phase | edgevisor IOPS (MiB/s, VMM CPU%) | QEMU IOPS (MiB/s, VMM CPU%) | host fio IOPS"
        " | edgevisor/QEMU | edgevisor/fio | device thread µs/req edgevisor | QEMU |\n"
        "|---|---|---|---|---|---|---|---|\n";
  for (const std::string& phs : phases) {
    const char* ph = phs.c_str();
    auto med = [&](const Peer& p, double PhaseResult::*f) {
      std::vector<double> v;
      for (const PhaseMap& m : p.runs) v.push_back(m.at(phs).*f);
      return Summarize(v).median;
    };
    const bool read = phs.rfind("randread", 0) == 0;
    const int qd = phs.find("qd32") != std::string::npos ? 32 : 1;
    const double host = FioIops(fio, file, read ? "randread" : "randwrite", qd, false);
    if (host <= 0) {
      std::fprintf(stderr, "host fio on %s (%s, qd %d) gave no result\n", file.c_str(), ph, qd);
      return 1;
    }
    const double e = med(peers[0], &PhaseResult::iops), q = med(peers[1], &PhaseResult::iops);
    char row[512];
    std::snprintf(row, sizeof(row),
                  "| %s | %.0f (%.1f, %.0f%%) | %.0f (%.1f, %.0f%%) | %.0f | %.2fx | %.1f%% | %.1f "
                  "| %.1f |\n",
                  ph, e, e * 4096 / 1048576, med(peers[0], &PhaseResult::cpu_pct), q,
                  q * 4096 / 1048576, med(peers[1], &PhaseResult::cpu_pct), host,
                  q > 0 ? e / q : 0.0, host > 0 ? 100 * e / host : 0.0,
                  med(peers[0], &PhaseResult::dev_us_per_op),
                  med(peers[1], &PhaseResult::dev_us_per_op));
    md << row;
  }
  std::fputs(md.str().c_str(), stdout);
  if (opts.count("--markdown")) std::ofstream(opts["--markdown"]) << md.str();
  return 0;
}

// ---- net: the net_bench payload on edgevisor and QEMU into a TAP in a network namespace ------

uint64_t TapRxPackets(const std::string& ns) {
  std::string cmd = "ip netns exec " + ns + " cat /sys/class/net/tap0/statistics/rx_packets";
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return 0;
  unsigned long long v = 0;  // NOLINT(runtime/int)
  if (std::fscanf(p, "%llu", &v) != 1) v = 0;
  pclose(p);
  return v;
}

struct NetRun {
  double pps = 0;
  double cpu_pct = 0;
  double dev_us_per_pkt = 0;  // CPU µs per packet on the device thread alone
};

// Runs a VMM and measures host-side TAP rx_packets between "bench: tx start" and "bench: tx done".
// `ip netns exec` execs the VMM in place, so the child's pid is the VMM's. A run counts only if
// the payload finished and returned 0, and the host received packets.
bool RunNetBench(const std::string& who, const std::vector<std::string>& argv,
                 const ThreadPick& device_threads, const std::string& ns, NetRun& out) {
  double t0 = 0, c0 = 0, d0 = 0;
  uint64_t p0 = 0;
  bool done = false, no_device_thread = false;
  const int status = RunWithConsole(argv, [&](const std::string& line, double t, pid_t pid) {
    if (line.find("bench: tx start") != std::string::npos) {
      p0 = TapRxPackets(ns);
      t0 = Now();
      c0 = ProcCpu(pid);
      d0 = ThreadsCpuUs(pid, device_threads);
    } else if (line.find("bench: tx done") != std::string::npos && t0 > 0) {
      const double dt = t - t0, dev = ThreadsCpuUs(pid, device_threads);
      const uint64_t packets = TapRxPackets(ns) - p0;
      if (dev < 0 || d0 < 0) no_device_thread = true;
      out.pps = static_cast<double>(packets) / dt;
      out.cpu_pct = 100.0 * (ProcCpu(pid) - c0) / dt;
      out.dev_us_per_pkt = packets > 0 ? (dev - d0) / static_cast<double>(packets) : 0;
    } else if (line.find("net_bench: done") != std::string::npos) {
      done = true;
    }
  });
  if (no_device_thread) {
    std::fprintf(stderr, "%s: no device thread found to measure\n", who.c_str());
    return false;
  }
  if (!done) {
    std::fprintf(stderr, "%s: net_bench did not finish\n", who.c_str());
    return false;
  }
  if (!PayloadSucceeded(who, status)) return false;
  if (out.pps <= 0) {
    std::fprintf(stderr, "%s: the host's TAP received no packets\n", who.c_str());
    return false;
  }
  return true;
}

int Net(std::map<std::string, std::string> opts) {
  const int runs = std::stoi(Arg(opts, "--runs", "3"));
  const std::string ev = Arg(opts, "--edgevisor", "build/src/edgevisor");
  const std::string qemu = Arg(opts, "--qemu", "/usr/bin/qemu-system-x86_64");
  const std::string payload = Arg(opts, "--payload", "build/firmware/net_bench.elf");
  const std::string size = Arg(opts, "--size", "64");
  const std::string secs = Arg(opts, "--seconds", "3");
  const std::string ns = "evbench" + std::to_string(getpid());
  const std::string setup = "ip netns add " + ns + " && ip netns exec " + ns +
                            " sh -c 'ip tuntap add dev tap0 mode tap && ip addr add 10.0.2.1/24 "
                            "dev tap0 && ip link set tap0 up && ip link set lo up'";
  if (std::system(setup.c_str()) != 0) {
    std::fprintf(stderr, "cannot create the network namespace (root needed)\n");
    return 1;
  }
  const std::string cmdline = "ip=10.0.2.15 dst=10.0.2.1 port=9 size=" + size + " seconds=" + secs;
  const std::vector<std::string> in_ns = {"/usr/bin/ip", "netns", "exec", ns};
  auto with_ns = [&](std::vector<std::string> v) {
    v.insert(v.begin(), in_ns.begin(), in_ns.end());
    return v;
  };
  struct Peer {
    std::string name;
    std::vector<std::string> argv;
    ThreadPick device_threads;
    std::vector<NetRun> runs;
  };
  std::vector<Peer> peers = {
      {"edgevisor",
       with_ns({ev, "run", "--kernel", payload, "--cmdline", cmdline, "--mem", "64", "--debug-exit",
                "--log-level", "warn", "--net", "tap=tap0"}),
       NamePrefix("net"),
       {}},
      {"qemu-microvm",
       with_ns(QemuMicrovm(qemu, payload, cmdline, "64",
                           {"-global", "virtio-mmio.force-legacy=false", "-netdev",
                            "tap,id=n,ifname=tap0,script=no,downscript=no,vhost=off", "-device",
                            "virtio-net-device,netdev=n"})),
       MainThread(),
       {}},
  };
  int rc = 0;
  for (int i = 0; i < runs && rc == 0; ++i) {
    for (size_t k = 0; k < peers.size(); ++k) {
      Peer& p = peers[(i + k) % peers.size()];
      NetRun r;
      if (!RunNetBench(p.name, p.argv, p.device_threads, ns, r)) {
        rc = 1;
        break;
      }
      p.runs.push_back(r);
    }
  }
  if (std::system(("ip netns del " + ns).c_str()) != 0) {
    std::fprintf(stderr, "edgevisor-bench: could not delete the network namespace %s\n",
                 ns.c_str());
  }
  if (rc != 0) return rc;
  char date[32];
  time_t now = time(nullptr);
  strftime(date, sizeof(date), "%Y-%m-%d", gmtime(&now));
  auto med = [](const Peer& p, double NetRun::*f) {
    std::vector<double> v;
    for (const NetRun& r : p.runs) v.push_back(r.*f);
    return Summarize(v).median;
  };
  const double e = med(peers[0], &NetRun::pps), q = med(peers[1], &NetRun::pps);
  std::ostringstream md;
  md << "Network TX, " << date << ", " << sysconf(_SC_NPROCESSORS_ONLN) << "-core host, UDP "
     << size << "-byte payloads for " << secs << " s into a TAP in a netns, packets counted on "
     << "the host (tap0 rx_packets), median of " << runs << " runs each (alternating)\n\n"
     << "Device thread: host CPU per packet on edgevisor's net0 thread alone, and on QEMU's main "
        "loop thread (where its TAP backend and virtio-net run), from "
        "/proc/PID/task/TID/schedstat.\n\n"
     << "| VMM | packets/s | VMM CPU% | device thread µs/packet |\n|---|---|---|---|\n";
  char row[512];
  std::snprintf(row, sizeof(row),
                "| edgevisor | %.0f | %.0f%% | %.2f |\n| QEMU microvm (vhost=off) | %.0f "
                "| %.0f%% | %.2f |\n| edgevisor / QEMU | %.2fx | | |\n",
                e, med(peers[0], &NetRun::cpu_pct), med(peers[0], &NetRun::dev_us_per_pkt), q,
                med(peers[1], &NetRun::cpu_pct), med(peers[1], &NetRun::dev_us_per_pkt),
                q > 0 ? e / q : 0.0);
  md << row;
  std::fputs(md.str().c_str(), stdout);
  if (opts.count("--markdown")) std::ofstream(opts["--markdown"]) << md.str();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string cmd = argc >= 2 ? argv[1] : "";
  if (cmd != "startup" && cmd != "blk" && cmd != "net" && cmd != "snapshot") {
    std::fprintf(stderr,
                 "usage: edgevisor-bench startup [--runs N] [--mem MiB] [--edgevisor PATH] "
                 "[--qemu PATH] [--payload PATH] [--json FILE] [--markdown FILE]\n"
                 "                               [--isolation JAILER]  (also: --no-seccomp, "
                 "and --config-file with and without the jailer)\n"
                 "       edgevisor-bench blk [--runs N] [--ops N] [--file PATH] [--edgevisor PATH]"
                 " [--qemu PATH] [--payload PATH] [--fio PATH] [--markdown FILE]\n"
                 "       edgevisor-bench net [--runs N] [--size BYTES] [--seconds N] "
                 "[--edgevisor PATH] [--qemu PATH] [--payload PATH] [--markdown FILE]\n"
                 "       edgevisor-bench snapshot [--runs N] [--mem MiB] [--clones 1,10,100] "
                 "[--edgevisor PATH] [--qemu PATH] [--payload clock.elf] [--dir DIR] "
                 "[--markdown FILE] [--json FILE]\n");
    return 2;
  }
  // Options come in pairs, and each must be one the benchmark knows: a misspelt one would
  // otherwise be ignored and the run measure something else than asked.
  const std::map<std::string, std::vector<std::string>> known = {
      {"startup",
       {"--runs", "--mem", "--edgevisor", "--qemu", "--payload", "--json", "--markdown",
        "--isolation"}},
      {"blk",
       {"--runs", "--ops", "--file", "--edgevisor", "--qemu", "--payload", "--fio", "--markdown"}},
      {"net",
       {"--runs", "--size", "--seconds", "--edgevisor", "--qemu", "--payload", "--markdown"}},
      {"snapshot",
       {"--runs", "--mem", "--clones", "--edgevisor", "--qemu", "--payload", "--dir", "--markdown",
        "--json"}}};
  std::map<std::string, std::string> opts;
  for (int i = 2; i < argc; i += 2) {
    const std::vector<std::string>& k = known.at(cmd);
    if (std::find(k.begin(), k.end(), argv[i]) == k.end() || i + 1 >= argc) {
      std::fprintf(stderr, "edgevisor-bench %s: %s %s\n", cmd.c_str(), argv[i],
                   i + 1 >= argc ? "needs a value" : "is not an option of this benchmark");
      return 2;
    }
    opts[argv[i]] = argv[i + 1];
  }
  try {
    if (cmd == "startup") return Startup(opts);
    if (cmd == "snapshot") return edgevisor::bench::Snapshot(opts);
    return cmd == "blk" ? Blk(opts) : Net(opts);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "edgevisor-bench: bad argument: %s\n", e.what());
    return 2;
  }
}
