// edgevisor-bench: side-by-side benchmarks of edgevisor against a peer VMM on the same machine.
//
//   edgevisor-bench startup [--runs N] [--mem MiB] [--edgevisor PATH] [--qemu PATH]
//                           [--payload PATH] [--json FILE] [--markdown FILE]
//
// Each run is exec -> exit of one VMM booting the same PVH payload, alternating the VMMs so that
// machine noise hits both. It reports wall time, CPU time (wait4 rusage), and the VMM's own
// memory: RSS from /proc/PID/smaps at exit, minus the guest-RAM mapping. The child is ptraced
// only to stop it at PTRACE_EVENT_EXIT, when its address space is still intact.
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
#include <map>
#include <sstream>
#include <string>
#include <vector>

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

struct Stats {
  double median, min, max;
};
Stats Summarize(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  const double med = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
  return {med, v.front(), v.back()};
}

std::string Arg(std::map<std::string, std::string>& opts, const std::string& k,
                const std::string& def) {
  auto it = opts.find(k);
  return it == opts.end() ? def : it->second;
}

int Startup(std::map<std::string, std::string> opts) {
  const int runs = std::stoi(Arg(opts, "--runs", "20"));
  const uint64_t mem = std::stoull(Arg(opts, "--mem", "64"));
  const std::string ev = Arg(opts, "--edgevisor", "build/src/edgevisor");
  const std::string qemu = Arg(opts, "--qemu", "/usr/bin/qemu-system-x86_64");
  const std::string payload = Arg(opts, "--payload", "build/firmware/hello.elf");
  const std::string cmdline = "bench";
  const std::string mem_s = std::to_string(mem);

  struct Peer {
    std::string name;
    std::vector<std::string> argv;
    std::vector<Sample> samples;
  };
  std::vector<Peer> peers = {
      {"edgevisor",
       {ev, "run", "--kernel", payload, "--cmdline", cmdline, "--mem", mem_s, "--debug-exit",
        "--log-level", "warn"},
       {}},
      {"qemu-microvm",
       {qemu, "-M", "microvm,acpi=off,x-option-roms=off,pit=off,pic=off,rtc=off", "-enable-kvm",
        "-cpu", "host,-arch-capabilities", "-m", mem_s, "-nodefaults", "-no-user-config",
        "-nographic", "-serial", "stdio", "-kernel", payload, "-append", cmdline, "-device",
        "isa-debug-exit,iobase=0xf4,iosize=4"},
       {}},
  };
  for (Peer& p : peers) RunOnce(p.argv, mem);  // warm the page cache; not counted
  for (int i = 0; i < runs; ++i) {
    for (size_t k = 0; k < peers.size(); ++k) {
      Peer& p = peers[(i + k) % peers.size()];  // alternate who goes first
      Sample s = RunOnce(p.argv, mem);
      if (s.exit_code != 1) {
        std::fprintf(stderr, "%s exited with %d (expected 1 from the debug-exit port)\n",
                     p.name.c_str(), s.exit_code);
        return 1;
      }
      p.samples.push_back(s);
    }
  }

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
  std::fputs(md.str().c_str(), stdout);
  std::fputs(js.str().c_str(), stdout);
  if (opts.count("--json")) std::ofstream(opts["--json"]) << js.str();
  if (opts.count("--markdown")) std::ofstream(opts["--markdown"]) << md.str();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::string(argv[1]) != "startup") {
    std::fprintf(stderr,
                 "usage: edgevisor-bench startup [--runs N] [--mem MiB] [--edgevisor PATH] "
                 "[--qemu PATH] [--payload PATH] [--json FILE] [--markdown FILE]\n"
                 "(blk and net benchmarks arrive with their devices)\n");
    return 2;
  }
  std::map<std::string, std::string> opts;
  for (int i = 2; i + 1 < argc; i += 2) opts[argv[i]] = argv[i + 1];
  try {
    return Startup(opts);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "edgevisor-bench: bad argument: %s\n", e.what());
    return 2;
  }
}
