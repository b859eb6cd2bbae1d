// Runs the edgevisor binary as a child process and collects its console and log output.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace edgevisor::testing {

struct ProcessResult {
  int exit_code = -1;  // -1 if killed by a signal or timed out
  bool timed_out = false;
  std::string out;  // stdout: the guest console
  std::string err;  // stderr: the VMM's log
};

inline std::string EnvOr(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v ? v : fallback;
}
// Runs a shell command; returns its exit status and its output (stdout and stderr).
inline std::pair<int, std::string> Sh(const std::string& cmd) {
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  std::string out;
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof(buf), p)) out.append(buf, n);
  const int st = pclose(p);
  return {WIFEXITED(st) ? WEXITSTATUS(st) : -1, out};
}

inline std::string EdgevisorBin() { return EnvOr("EDGEVISOR_BIN", "build/src/edgevisor"); }
inline std::string Payload(const std::string& name) {
  return EnvOr("FIRMWARE_DIR", "build/firmware") + "/" + name + ".elf";
}

// `on_output` sees stdout as it grows and may return a signal number to send (0: none).
inline ProcessResult RunProcess(const std::vector<std::string>& argv, const std::string& input = "",
                                int timeout_ms = 20000,
                                std::function<int(const std::string&)> on_output = nullptr,
                                bool close_stdin = true) {
  int in[2], out[2], err[2];
  if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC)) return {};
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in[0], 0);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  posix_spawn_file_actions_adddup2(&fa, err[1], 2);
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid;
  ProcessResult r;
  if (posix_spawn(&pid, args[0], &fa, nullptr, args.data(), environ) != 0) {
    r.err = "spawn failed: " + argv[0];
    return r;
  }
  posix_spawn_file_actions_destroy(&fa);
  close(in[0]);
  close(out[1]);
  close(err[1]);
  if (!input.empty()) {
    [[maybe_unused]] ssize_t n = write(in[1], input.data(), input.size());
  }
  if (close_stdin) {
    close(in[1]);
    in[1] = -1;
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  bool out_open = true, err_open = true, signalled = false;
  while (out_open || err_open) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - std::chrono::steady_clock::now())
                    .count();
    if (left <= 0) {
      r.timed_out = true;
      kill(pid, SIGKILL);
      break;
    }
    pollfd p[2] = {{out_open ? out[0] : -1, POLLIN, 0}, {err_open ? err[0] : -1, POLLIN, 0}};
    if (poll(p, 2, static_cast<int>(left)) < 0) continue;
    char buf[4096];
    for (int i = 0; i < 2; ++i) {
      if (!(p[i].revents & (POLLIN | POLLHUP))) continue;
      ssize_t n = read(p[i].fd, buf, sizeof(buf));
      if (n <= 0) {
        (i == 0 ? out_open : err_open) = false;
        continue;
      }
      (i == 0 ? r.out : r.err).append(buf, n);
      if (i == 0 && on_output && !signalled) {
        if (int sig = on_output(r.out)) {
          kill(pid, sig);
          signalled = true;
        }
      }
    }
  }
  if (in[1] >= 0) close(in[1]);
  close(out[0]);
  close(err[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (WIFEXITED(status) && !r.timed_out) r.exit_code = WEXITSTATUS(status);
  return r;
}

}  // namespace edgevisor::testing

namespace edgevisor::testing {

// A child process that keeps running while the test talks to it (a VM serving the network).
class Spawned {
 public:
  explicit Spawned(const std::vector<std::string>& argv) {
    int out[2], err[2];
    if (pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC)) return;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_adddup2(&fa, err[1], 2);
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    if (posix_spawn(&pid_, args[0], &fa, nullptr, args.data(), environ) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&fa);
    close(out[1]);
    close(err[1]);
    out_fd_ = out[0];
    err_fd_ = err[0];
  }
  ~Spawned() {
    if (pid_ > 0 && !reaped_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (out_fd_ >= 0) close(out_fd_);
    if (err_fd_ >= 0) close(err_fd_);
  }
  // Reads output until `text` appears on stdout or the time runs out.
  bool WaitFor(const std::string& text, int timeout_ms) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (out_.find(text) == std::string::npos) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                      deadline - std::chrono::steady_clock::now())
                      .count();
      if (left <= 0 || !Pump(static_cast<int>(left))) return out_.find(text) != std::string::npos;
    }
    return true;
  }
  // Waits for exit (killing it after the timeout) and returns what it printed.
  ProcessResult Finish(int timeout_ms) {
    ProcessResult r;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                      deadline - std::chrono::steady_clock::now())
                      .count();
      if (left <= 0) {
        r.timed_out = true;
        kill(pid_, SIGKILL);
        break;
      }
      if (!Pump(static_cast<int>(left))) break;
    }
    int status = 0;
    waitpid(pid_, &status, 0);
    reaped_ = true;
    if (WIFEXITED(status) && !r.timed_out) r.exit_code = WEXITSTATUS(status);
    r.out = out_;
    r.err = err_;
    return r;
  }
  const std::string& out() const { return out_; }
  const std::string& err() const { return err_; }
  pid_t pid() const { return pid_; }

 private:
  // One poll round; false once both streams are closed.
  bool Pump(int timeout_ms) {
    pollfd p[2] = {{out_open_ ? out_fd_ : -1, POLLIN, 0}, {err_open_ ? err_fd_ : -1, POLLIN, 0}};
    if (!out_open_ && !err_open_) return false;
    if (poll(p, 2, timeout_ms) <= 0) return true;
    char buf[4096];
    for (int i = 0; i < 2; ++i) {
      if (!(p[i].revents & (POLLIN | POLLHUP))) continue;
      ssize_t n = read(p[i].fd, buf, sizeof(buf));
      if (n <= 0) {
        (i == 0 ? out_open_ : err_open_) = false;
      } else {
        (i == 0 ? out_ : err_).append(buf, static_cast<size_t>(n));
      }
    }
    return true;
  }
  pid_t pid_ = -1;
  int out_fd_ = -1, err_fd_ = -1;
  bool out_open_ = true, err_open_ = true, reaped_ = false;
  std::string out_, err_;
};

}  // namespace edgevisor::testing
