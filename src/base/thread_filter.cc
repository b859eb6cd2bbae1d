#include "src/base/thread_filter.h"

#include <linux/seccomp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>

#include "absl/strings/str_format.h"
#include "src/base/errors.h"
#include "src/base/exit_codes.h"

namespace edgevisor {
namespace {

// What the SIGSYS handler may read. A signal handler has no other way in: the names are set
// once, before any filter exists, and never change; the role and thread name are per thread.
std::atomic<const SyscallNames*> report_names{nullptr};
thread_local char role_name[24];
thread_local char thread_name[16];

// Appends TEXT to BUF at *LEN (bounded), for the handler, which must not allocate.
void Append(char* buf, size_t cap, size_t* len, const char* text) {
  for (; *text != '\0' && *len + 1 < cap; ++text) buf[(*len)++] = *text;
}

void AppendNumber(char* buf, size_t cap, size_t* len, long v) {  // NOLINT(runtime/int)
  char digits[24];
  int n = 0;
  const bool negative = v < 0;
  unsigned long u = negative ? -static_cast<unsigned long>(v) : v;  // NOLINT(runtime/int)
  do {
    digits[n++] = static_cast<char>('0' + u % 10);
    u /= 10;
  } while (u != 0 && n < 23);
  if (negative) Append(buf, cap, len, "-");
  while (n > 0 && *len + 1 < cap) buf[(*len)++] = digits[--n];
}

void OnSigsys(int, siginfo_t* info, void*) {
  const int nr = info->si_syscall;
  const SyscallNames* names = report_names.load(std::memory_order_acquire);
  const char* name = "?";
  if (names != nullptr && nr >= 0 && static_cast<size_t>(nr) < names->size() &&
      !(*names)[nr].empty()) {
    name = (*names)[nr].c_str();
  }
  char buf[256];
  size_t len = 0;
  Append(buf, sizeof(buf), &len, "edgevisor: seccomp: the ");
  Append(buf, sizeof(buf), &len, role_name[0] != '\0' ? role_name : "unfiltered");
  Append(buf, sizeof(buf), &len, " thread '");
  Append(buf, sizeof(buf), &len, thread_name);
  Append(buf, sizeof(buf), &len, "' made a forbidden syscall ");
  AppendNumber(buf, sizeof(buf), &len, nr);
  Append(buf, sizeof(buf), &len, " (");
  Append(buf, sizeof(buf), &len, name);
  Append(buf, sizeof(buf), &len, "); exiting with status ");
  AppendNumber(buf, sizeof(buf), &len, kExitSeccomp);
  Append(buf, sizeof(buf), &len, "\n");
  (void)!write(STDERR_FILENO, buf, len);
  _exit(kExitSeccomp);
}

}  // namespace

std::string SeccompReport(const std::string& role, const std::string& thread, int nr,
                          const std::string& name) {
  return absl::StrFormat(
      "edgevisor: seccomp: the %s thread '%s' made a forbidden syscall %d (%s); exiting with "
      "status %d",
      role, thread, nr, name, kExitSeccomp);
}

absl::Status InstallSeccompReporter(std::shared_ptr<const SyscallNames> names) {
  // Kept for the life of the process: a filtered thread may trap at any time, even in exit.
  static std::shared_ptr<const SyscallNames>* keep = new std::shared_ptr<const SyscallNames>();
  *keep = std::move(names);
  report_names.store(keep->get(), std::memory_order_release);
  struct sigaction sa {};
  sa.sa_sigaction = OnSigsys;
  sa.sa_flags = SA_SIGINFO;
  sigemptyset(&sa.sa_mask);
  if (sigaction(SIGSYS, &sa, nullptr) != 0) return ErrnoError("sigaction(SIGSYS)");
  return absl::OkStatus();
}

absl::Status InstallThreadFilter(const ThreadFilter* filter) {
  if (filter == nullptr) return absl::OkStatus();
  if (filter->prerequisite.valid()) filter->prerequisite.wait();
  std::snprintf(role_name, sizeof(role_name), "%s", filter->role.c_str());
  if (prctl(PR_GET_NAME, thread_name) != 0) thread_name[0] = '\0';
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return ErrnoError("prctl(PR_SET_NO_NEW_PRIVS)");
  sock_fprog prog{};
  prog.len = static_cast<unsigned short>(filter->program.size());  // NOLINT(runtime/int)
  prog.filter = const_cast<sock_filter*>(filter->program.data());
  if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0) {
    return ErrnoError(absl::StrFormat("seccomp: installing the %s thread's filter", filter->role));
  }
  return absl::OkStatus();
}

}  // namespace edgevisor
