// Each thread role's seccomp filter, installed in a forked child: the calls that role needs go
// through (they fail with EBADF on a bad fd, which shows the kernel ran them), and a
// representative forbidden call kills the child through the reporter, with status 148 and a
// report that names the role and the syscall.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <linux/kvm.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <functional>
#include <string>

#include "src/base/exit_codes.h"
#include "src/vmm/seccomp/filters.h"

namespace edgevisor::seccomp {
namespace {

using ::testing::HasSubstr;

struct ChildResult {
  int status = -1;  // exit status, or -1 when killed by a signal
  std::string err;  // what the child wrote to stderr
};

// Forks; the child installs the reporter and FILTER, runs BODY and exits 0 (BODY may exit
// with a status of its own to report a failed expectation).
ChildResult RunFiltered(const ThreadFilter& filter, const std::function<void()>& body) {
  int pipefd[2];
  if (pipe(pipefd) != 0) return {};
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(pipefd[1], STDERR_FILENO);
    if (!InstallSeccompReporter(SyscallNameTable()).ok()) _exit(90);
    if (!InstallThreadFilter(&filter).ok()) _exit(91);
    body();
    _exit(0);
  }
  close(pipefd[1]);
  ChildResult r;
  char buf[512];
  for (ssize_t n; (n = read(pipefd[0], buf, sizeof(buf))) > 0;) r.err.append(buf, n);
  close(pipefd[0]);
  int st = 0;
  waitpid(pid, &st, 0);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

// Exits 80 + LINE%10 unless the call returned -1 with EBADF: it reached the kernel.
#define EXPECT_RAN(call)                              \
  do {                                                \
    if (!((call) == -1 && errno == EBADF)) _exit(80); \
  } while (0)

// qemu-user (the aarch64 unit tests on an x86_64 host) has no seccomp(2): the aarch64 filters
// are exercised by the arm64 nested rig and the arm64 appliance boots instead.
bool SeccompAvailable() {
  uint32_t action = SECCOMP_RET_TRAP;
  return syscall(SYS_seccomp, SECCOMP_GET_ACTION_AVAIL, 0, &action) == 0;
}

class SeccompTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!SeccompAvailable()) GTEST_SKIP() << "no seccomp(2) here (qemu-user?)";
    auto f = BuildThreadFilters();
    ASSERT_TRUE(f.ok()) << f.status();
    filters_ = *f;
    // The start-up work runs on a thread of its own, which a fork()ed child does not have:
    // let it finish here, or the child's install would wait for it for ever.
    filters_.main->prerequisite.wait();
  }
  void ExpectKilled(const ThreadFilter& f, const std::function<void()>& body,
                    const std::string& syscall) {
    ChildResult r = RunFiltered(f, body);
    EXPECT_EQ(r.status, kExitSeccomp) << f.role << ": " << r.err;
    EXPECT_THAT(r.err, HasSubstr("seccomp: the " + f.role + " thread"));
    EXPECT_THAT(r.err, HasSubstr("(" + syscall + ")"));
  }
  void ExpectAllowed(const ThreadFilter& f, const std::function<void()>& body) {
    ChildResult r = RunFiltered(f, body);
    EXPECT_EQ(r.status, 0) << f.role << ": " << r.err;
  }
  ThreadFilters filters_;
};

TEST_F(SeccompTest, VcpuRunsKvmRunButCannotCreateVmsOpenFilesOrSockets) {
  ExpectAllowed(*filters_.vcpu, [] {
    EXPECT_RAN(ioctl(-1, KVM_RUN, 0));
    EXPECT_RAN(ioctl(-1, KVM_IRQ_LINE, 0));
    const int e = eventfd(0, EFD_CLOEXEC);  // device activation
    if (e < 0) _exit(81);
    if (write(e, "\1\0\0\0\0\0\0\0", 8) != 8) _exit(82);
  });
  ExpectKilled(
      *filters_.vcpu, [] { ioctl(-1, KVM_CREATE_VM, 0); }, "ioctl");
  ExpectKilled(
      *filters_.vcpu, [] { open("/etc/hostname", O_RDONLY); }, "openat");
  ExpectKilled(
      *filters_.vcpu, [] { socket(AF_UNIX, SOCK_STREAM, 0); }, "socket");
}

TEST_F(SeccompTest, MainOpensFilesButNeverExecsOrMakesSockets) {
  ExpectAllowed(*filters_.main, [] {
    const int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);  // PATCH /drives opens the new file
    if (fd < 0) _exit(81);
    EXPECT_RAN(ioctl(-1, KVM_IRQ_LINE, 0));
  });
  ExpectKilled(
      *filters_.main, [] { execl("/bin/true", "true", nullptr); }, "execve");
  ExpectKilled(
      *filters_.main, [] { socket(AF_INET, SOCK_STREAM, 0); }, "socket");
  ExpectKilled(
      *filters_.main, [] { ioctl(-1, KVM_RUN, 0); }, "ioctl");
}

TEST_F(SeccompTest, ApiAcceptsAndWritesButOpensNothing) {
  ExpectAllowed(*filters_.api, [] {
    EXPECT_RAN(accept4(-1, nullptr, nullptr, SOCK_CLOEXEC));
    EXPECT_RAN(send(-1, "x", 1, 0));
  });
  ExpectKilled(
      *filters_.api, [] { open("/etc/hostname", O_RDONLY); }, "openat");
  ExpectKilled(
      *filters_.api, [] { ioctl(-1, KVM_RUN, 0); }, "ioctl");
  // Threads only: a fork (clone without CLONE_THREAD) is refused.
  ExpectKilled(
      *filters_.api, [] { syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0); }, "clone");
}

TEST_F(SeccompTest, BlockWorkerDoesIoButNoIoctlOrOpen) {
  ExpectAllowed(*filters_.block, [] {
    EXPECT_RAN(syscall(SYS_io_uring_enter, -1, 1, 0, 0, nullptr, 0));
    char b[8];
    EXPECT_RAN(pread(-1, b, sizeof(b), 0));
    EXPECT_RAN(fdatasync(-1));
  });
  ExpectKilled(
      *filters_.block, [] { ioctl(-1, KVM_RUN, 0); }, "ioctl");
  ExpectKilled(
      *filters_.block, [] { open("/etc/hostname", O_RDONLY); }, "openat");
}

TEST_F(SeccompTest, NetWorkerMovesFramesOnly) {
  ExpectAllowed(*filters_.net, [] {
    char b[8];
    iovec v{b, sizeof(b)};
    EXPECT_RAN(readv(-1, &v, 1));
    EXPECT_RAN(writev(-1, &v, 1));
  });
  ExpectKilled(
      *filters_.net, [] { socket(AF_PACKET, SOCK_RAW, 0); }, "socket");
  ExpectKilled(
      *filters_.net, [] { pread(-1, nullptr, 0, 0); }, "pread64");
}

TEST_F(SeccompTest, RtcRaisesItsLineOnly) {
#if !defined(__aarch64__)
  EXPECT_EQ(filters_.rtc, nullptr) << "only aarch64 has the PL031's thread";
  GTEST_SKIP() << "no rtc thread on this architecture";
#endif
  ExpectAllowed(*filters_.rtc, [] { EXPECT_RAN(ioctl(-1, KVM_IRQ_LINE, 0)); });
  ExpectKilled(
      *filters_.rtc, [] { ioctl(-1, KVM_RUN, 0); }, "ioctl");
}

TEST_F(SeccompTest, RolesCompiledOutStayNull) {
  auto f = BuildThreadFilters({.api = false, .block = true, .net = false});
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_NE(f->main, nullptr);
  EXPECT_NE(f->vcpu, nullptr);
  EXPECT_NE(f->block, nullptr);
  EXPECT_EQ(f->api, nullptr);
  EXPECT_EQ(f->net, nullptr);
}

TEST(SeccompSignals, ReachOnlyThisProcess) {
  if (!SeccompAvailable()) GTEST_SKIP() << "no seccomp(2) here (qemu-user?)";
  // The filter names the process id it was built in: build it in the child.
  for (const bool own : {true, false}) {
    const pid_t pid = fork();
    if (pid == 0) {
      auto f = BuildThreadFilters();
      if (!f.ok() || !InstallSeccompReporter(SyscallNameTable()).ok()) _exit(90);
      if (!InstallThreadFilter(f->main.get()).ok()) _exit(91);
      const pid_t target = own ? getpid() : 1;
      _exit(syscall(SYS_tgkill, target, own ? gettid() : 1, 0) == 0 ? 0 : 92);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    EXPECT_TRUE(WIFEXITED(st));
    EXPECT_EQ(WEXITSTATUS(st), own ? 0 : kExitSeccomp) << (own ? "own" : "pid 1");
  }
}

TEST(SeccompReport, NamesRoleThreadAndSyscall) {
  EXPECT_EQ(SeccompReport("vcpu", "vcpu0", 41, "socket"),
            "edgevisor: seccomp: the vcpu thread 'vcpu0' made a forbidden syscall 41 (socket); "
            "exiting with status 148");
}

}  // namespace
}  // namespace edgevisor::seccomp
