// A thread's seccomp filter: a compiled classic-BPF program that the thread installs on itself
// (seccomp(2) with SECCOMP_SET_MODE_FILTER) before it does its work. The programs are compiled
// once, on the main thread, from the allowlists in src/vmm/seccomp (libseccomp); installing one
// is a single syscall that cannot half-succeed, so a thread either runs filtered or reports why
// not. A forbidden syscall raises SIGSYS (SECCOMP_RET_TRAP); the reporter installed by
// InstallSeccompReporter writes the thread's role, its name and the syscall's number and name to
// stderr and exits with kExitSeccomp, instead of a silent kill.
#pragma once

#include <linux/filter.h>

#include <future>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace edgevisor {

struct ThreadFilter {
  std::string role;                  // "vcpu", "api", "block", ...: named in the report
  std::vector<sock_filter> program;  // classic BPF, as seccomp(2) takes it
  // Start-up work, running on a thread of its own, that must finish before any thread is
  // filtered because it may do what the filters forbid (open files). Installing waits for it.
  std::shared_future<void> prerequisite;
};

// Installs FILTER on the calling thread (and sets no_new_privs, which seccomp needs without
// CAP_SYS_ADMIN). A null FILTER installs nothing (seccomp turned off). Filters stack: a thread
// that already has one keeps it, and both must allow a syscall.
absl::Status InstallThreadFilter(const ThreadFilter* filter);

// Names for the report, indexed by syscall number (the process's own architecture). The table
// must outlive every filtered thread; the handler only reads it.
using SyscallNames = std::vector<std::string>;

// Installs the process-wide SIGSYS handler that reports a violation and exits with
// kExitSeccomp. Call once, before the first filter is installed, from the main thread.
absl::Status InstallSeccompReporter(std::shared_ptr<const SyscallNames> names);

// The report's text for a forbidden syscall (for tests; the handler formats the same words
// without allocating).
std::string SeccompReport(const std::string& role, const std::string& thread, int nr,
                          const std::string& name);

}  // namespace edgevisor
