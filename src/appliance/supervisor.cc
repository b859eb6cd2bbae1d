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
#include "src/base/exit_codes.h"
#include "src/base/fd.h"

namespace edgevisor::appliance {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr milliseconds kFirstBackoff{1000};
constexpr milliseconds kMaxBackoff{60000};
constexpr seconds kStableRun{600};

std::string Stamp() {
  char buf[32];
  const time_t now = time(nullptr);
  struct tm tm {};
  gmtime_r(&now, &tm);
  strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

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

// Starts edgevisor on the VM's config with stdout+stderr on a pipe. Returns the pid, or -1.
pid_t Start(const SupervisorOptions& opts, const VmEntry& vm, int* out_fd) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return -1;
  const std::string config = opts.config_dir + "/" + vm.config;
  const std::string code = std::to_string(kRebootExitCode);
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(p[1], 1);
    dup2(p[1], 2);
    const int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) dup2(devnull, 0);
    execl(opts.edgevisor.c_str(), opts.edgevisor.c_str(), "--config-file", config.c_str(),
          "--no-api", "--id", vm.name.c_str(), "--reboot-exit-code", code.c_str(), nullptr);
    dprintf(2, "ev-appliance: cannot run %s: %s\n", opts.edgevisor.c_str(), strerror(errno));
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

void SuperviseVm(const SupervisorOptions& opts, const VmEntry& vm) {
  const std::string log = opts.log_dir.empty() ? "" : opts.log_dir + "/" + vm.name + ".log";
  auto say = [&](const std::string& msg) {
    const std::string line = absl::StrFormat("ev-appliance: vm %s: %s", vm.name, msg);
    if (opts.console) opts.console(line);
    AppendLog(log, Stamp() + " " + line);
  };
  milliseconds backoff = kFirstBackoff;
  for (int starts = 1;; ++starts) {
    say(absl::StrFormat("starting (run %d, restart policy %s)", starts, RestartName(vm.restart)));
    const auto t0 = std::chrono::steady_clock::now();
    int fd = -1;
    const pid_t pid = Start(opts, vm, &fd);
    if (pid < 0) {
      say(absl::StrFormat("cannot start edgevisor: %s", strerror(errno)));
      return;
    }
    // The VM's console and edgevisor's log, line by line.
    FILE* in = fdopen(fd, "r");
    char* buf = nullptr;
    size_t cap = 0;
    ssize_t n;
    while (in != nullptr && (n = getline(&buf, &cap, in)) >= 0) {
      std::string line(buf, static_cast<size_t>(n));
      while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
      if (opts.console) opts.console("[" + vm.name + "] " + line);
      AppendLog(log, line);
    }
    free(buf);
    if (in != nullptr) fclose(in);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    const auto ran = std::chrono::duration_cast<seconds>(std::chrono::steady_clock::now() - t0);
    const Decision d = Decide(vm.restart, Classify(status), ran, &backoff);
    say(absl::StrFormat("%s after %d s; %s", DescribeExit(status), ran.count(),
                        d.restart ? absl::StrFormat("restarting in %d ms", d.delay.count())
                                  : std::string("not restarting")));
    sync();  // what a VM printed before it stopped is what an operator needs after a power cut
    if (!d.restart || (opts.max_starts > 0 && starts >= opts.max_starts)) return;
    std::this_thread::sleep_for(d.delay);
  }
}

}  // namespace edgevisor::appliance
