#include "src/appliance/supervisor.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <thread>

#include "absl/strings/str_format.h"
#include "src/appliance/jail.h"
#include "src/base/exit_codes.h"
#include "src/base/fd.h"

namespace edgevisor::appliance {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr milliseconds kFirstBackoff{1000};
constexpr milliseconds kMaxBackoff{60000};
constexpr seconds kStableRun{600};

void AppendLog(const std::string& path, const std::string& line) {
  if (path.empty()) return;
  // A log that cannot be written must not stop the supervisor: say so on its console instead.
  UniqueFd fd(open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644));
  const std::string l = line + "\n";
  if (!fd.valid() || write(fd.get(), l.data(), l.size()) != static_cast<ssize_t>(l.size())) {
    std::fprintf(stderr, "ev-appliance: cannot write to %s: %s\n", path.c_str(),
                 std::strerror(errno));
  }
}

JailSpec SpecFor(const SupervisorOptions& opts, const VmEntry& vm, uid_t uid) {
  JailSpec s;
  s.jailer = opts.jailer;
  s.edgevisor = opts.edgevisor;
  s.base = opts.jail_base;
  s.cgroup_root = opts.cgroup_root;
  s.vm = vm.name;
  s.config = opts.config_dir + "/" + vm.config;
  s.uid = uid;
  s.memory_max_mib = vm.memory_max_mib;
  s.cpu_max_percent = vm.cpu_max_percent;
  s.reboot_exit_code = kRebootExitCode;
  return s;
}

// The command that runs the VM: through the jailer (its jail prepared), or edgevisor directly.
absl::StatusOr<std::vector<std::string>> Command(const SupervisorOptions& opts, const VmEntry& vm,
                                                 uid_t uid) {
  if (!opts.jailer.empty()) return PrepareJail(SpecFor(opts, vm, uid));
  return std::vector<std::string>{
      opts.edgevisor, "--config-file",      opts.config_dir + "/" + vm.config, "--no-api", "--id",
      vm.name,        "--reboot-exit-code", std::to_string(kRebootExitCode)};
}

// Starts ARGV with stdout+stderr on a pipe. Returns the pid, or -1.
pid_t Start(const std::vector<std::string>& argv, int* out_fd) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return -1;
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(p[1], 1);
    dup2(p[1], 2);
    const int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) dup2(devnull, 0);
    execv(args[0], args.data());
    dprintf(2, "ev-appliance: cannot run %s: %s\n", args[0], strerror(errno));
    _exit(127);
  }
  close(p[1]);
  if (pid < 0) {
    close(p[0]);
    return -1;
  }
  *out_fd = p[0];
  return pid;
}

}  // namespace

std::string UtcStamp() {
  char buf[32];
  const time_t now = time(nullptr);
  struct tm tm {};
  gmtime_r(&now, &tm);
  strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

Outcome Classify(int status) {
  if (WIFEXITED(status)) {
    const int code = WEXITSTATUS(status);
    if (code == kExitOk) return Outcome::kPoweredOff;
    if (code == kRebootExitCode) return Outcome::kRebooted;
    if (code == kExitUsage) return Outcome::kConfigRefused;
  }
  return Outcome::kCrashed;
}

std::string DescribeExit(int status) {
  if (WIFSIGNALED(status)) return absl::StrFormat("killed by signal %d", WTERMSIG(status));
  if (!WIFEXITED(status)) return "stopped";
  switch (Classify(status)) {
    case Outcome::kPoweredOff:
      return "the guest powered off (exit 0)";
    case Outcome::kRebooted:
      return absl::StrFormat("the guest rebooted (exit %d)", kRebootExitCode);
    case Outcome::kConfigRefused:
      return "edgevisor refused the VM's config (exit 2)";
    case Outcome::kCrashed:
      break;
  }
  return absl::StrFormat("crashed (exit %d)", WEXITSTATUS(status));
}

Decision Decide(Restart policy, Outcome outcome, seconds ran, milliseconds* backoff) {
  if (ran >= kStableRun || *backoff < kFirstBackoff) *backoff = kFirstBackoff;
  if (policy == Restart::kNever) return {};
  switch (outcome) {
    case Outcome::kPoweredOff:
      if (policy == Restart::kAlways) return {true, kFirstBackoff};
      return {};
    case Outcome::kRebooted:
      return {true, milliseconds{0}};
    case Outcome::kConfigRefused:
      return {};
    case Outcome::kCrashed: {
      const Decision d{true, *backoff};
      *backoff = std::min(*backoff * 2, kMaxBackoff);
      return d;
    }
  }
  return {};
}

// Whether a containment description says every thread runs under its seccomp filter ("seccomp=2
// on N of N threads").
bool EveryThreadFiltered(const std::string& d) {
  const size_t at = d.find("seccomp=2 on ");
  int on = 0, of = 0;
  return at != std::string::npos &&
         std::sscanf(d.c_str() + at, "seccomp=2 on %d of %d threads", &on, &of) == 2 && of > 0 &&
         on == of;
}

// Copies the VM's output, line by line, to the console and its log until the VMM exits, and
// says what contains it: once a line shows every thread under its filter. The VMM's first lines
// may come while it builds the VM, before its threads have their filters (the arm64 VMM logs
// the SVE vector lengths then); after 50 lines it is said as it is.
void PumpOutput(const SupervisorOptions& opts, const VmEntry& vm, pid_t pid, int fd,
                const std::string& log, const std::function<void(const std::string&)>& say) {
  FILE* in = fdopen(fd, "r");
  char* buf = nullptr;
  size_t cap = 0;
  ssize_t n;
  bool described = opts.jailer.empty();
  int lines = 0;
  while (in != nullptr && (n = getline(&buf, &cap, in)) >= 0) {
    std::string line(buf, static_cast<size_t>(n));
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
    if (opts.console) opts.console("[" + vm.name + "] " + line);
    AppendLog(log, line);
    if (opts.on_state && line.find("Guest-boot-time = ") != std::string::npos) {
      opts.on_state(vm.name, "ready");
    }
    if (!described) {
      const std::string d = DescribeContainment(pid, opts.cgroup_root);
      if (EveryThreadFiltered(d) || ++lines >= 50) {
        say("contained: " + d);
        described = true;
      }
    }
  }
  free(buf);
  if (in != nullptr) fclose(in);
}

void SuperviseVm(const SupervisorOptions& opts, const VmEntry& vm, uid_t uid) {
  const std::string log = opts.log_dir.empty() ? "" : opts.log_dir + "/" + vm.name + ".log";
  auto say = [&](const std::string& msg) {
    const std::string line = absl::StrFormat("ev-appliance: vm %s: %s", vm.name, msg);
    if (opts.console) opts.console(line);
    AppendLog(log, UtcStamp() + " " + line);
  };
  milliseconds backoff = kFirstBackoff;
  for (int starts = 1;; ++starts) {
    say(absl::StrFormat("starting (run %d, restart policy %s)", starts, RestartName(vm.restart)));
    if (opts.on_state) opts.on_state(vm.name, absl::StrFormat("starting (run %d)", starts));
    const auto t0 = std::chrono::steady_clock::now();
    auto argv = Command(opts, vm, uid);
    if (!argv.ok()) {
      say(absl::StrFormat("cannot prepare its jail: %s; not started", argv.status().message()));
      return;
    }
    int fd = -1;
    const pid_t pid = Start(*argv, &fd);
    if (pid < 0) {
      say(absl::StrFormat("cannot start edgevisor: %s", strerror(errno)));
      return;
    }
    PumpOutput(opts, vm, pid, fd, log, say);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (!opts.jailer.empty()) CleanJail(SpecFor(opts, vm, uid));
    const auto ran = std::chrono::duration_cast<seconds>(std::chrono::steady_clock::now() - t0);
    const Decision d = Decide(vm.restart, Classify(status), ran, &backoff);
    say(absl::StrFormat("%s after %d s; %s", DescribeExit(status), ran.count(),
                        d.restart ? absl::StrFormat("restarting in %d ms", d.delay.count())
                                  : std::string("not restarting")));
    if (opts.on_state) {
      opts.on_state(vm.name, absl::StrFormat("%s: %s", d.restart ? "restarting" : "stopped",
                                             DescribeExit(status)));
    }
    sync();  // what a VM printed before it stopped is what an operator needs after a power cut
    if (!d.restart || (opts.max_starts > 0 && starts >= opts.max_starts)) return;
    std::this_thread::sleep_for(d.delay);
  }
}

}  // namespace edgevisor::appliance
