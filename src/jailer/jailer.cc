#include "src/jailer/jailer.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "src/base/errors.h"
#include "src/base/fd.h"
#include "src/base/log.h"
#include "src/base/read_file.h"
#include "src/base/service_notify.h"
#include "src/jailer/cgroup.h"
#include "src/jailer/exit_codes.h"
#include "src/jailer/files.h"
#include "src/jailer/jail.h"
#include "src/jailer/namespaces.h"
#include "src/jailer/privileges.h"

namespace edgevisor::jailer {
namespace {

uint64_t ClockUs(clockid_t clock) {
  timespec ts{};
  clock_gettime(clock, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000 + static_cast<uint64_t>(ts.tv_nsec) / 1000;
}

// The --cgroup settings (with --node's) planned and applied; nothing to do without any.
absl::Status EnterCgroups(const JailerArgs& a) {
  std::string cpulist;
  if (a.numa_node) {
    const std::string path =
        absl::StrFormat("/sys/devices/system/node/node%d/cpulist", *a.numa_node);
    auto text = ReadSmallFile(path);
    if (!text.ok()) {
      return JailerError(kExitCgroup,
                         absl::StrFormat("--node %d: %s", *a.numa_node, text.status().message()));
    }
    cpulist = *text;
  }
  const std::vector<CgroupSetting> settings = WithNumaNode(a, cpulist);
  if (settings.empty()) return absl::OkStatus();
  EV_ASSIGN_OR_RETURN(HostCgroups host, DetectHostCgroups());
  EV_ASSIGN_OR_RETURN(std::vector<CgroupDir> plan, PlanCgroups(a, settings, host));
  return ApplyCgroups(plan, getpid());
}

// setsid and stdin/stdout/stderr on /dev/null (opened before the pivot: the jail has none).
absl::Status Daemonize(const UniqueFd& dev_null) {
  if (setsid() < 0) {
    return JailerError(kExitJail, absl::StrFormat("--daemonize: setsid: %s (the jailer must not "
                                                  "be a process group leader)",
                                                  strerror(errno)));
  }
  for (int fd = 0; fd <= 2; ++fd) {
    if (dup2(dev_null.get(), fd) < 0) {
      return JailerError(kExitJail, absl::StrFormat("--daemonize: dup2: %s", strerror(errno)));
    }
  }
  return absl::OkStatus();
}

// Firecracker's parent writes the child's pid to /<exec file name>.pid in the jail and exits 0.
absl::Status WritePidFile(const JailerArgs& a, pid_t child) {
  const std::string path = "/" + a.ExecFileName() + ".pid";
  absl::Status s =
      WriteString(path, std::to_string(child), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  return s.ok() ? s : JailerError(kExitJail, absl::StrCat("--new-pid-ns: ", s.message()));
}

// Under a service manager (NOTIFY_SOCKET, e.g. systemd's Type=notify), its socket connected
// now, before the pivot hides its path, and kept open across the exec: the VMM reports its
// readiness on it (src/base/service_notify.h). None, or one that cannot be reached: no fd,
// and the VMM runs all the same.
UniqueFd ConnectServiceManager() {
  const char* path = getenv(kNotifySocketEnv);
  if (path == nullptr) return UniqueFd();
  absl::StatusOr<UniqueFd> fd = ServiceNotifier::Connect(path);
  if (!fd.ok() || fcntl(fd->get(), F_SETFD, 0) != 0) {
    spdlog::warn("{}: the service manager gets no readiness notification",
                 fd.ok() ? strerror(errno) : fd.status().message());
    return UniqueFd();
  }
  return *std::move(fd);
}

// The last step: rlimits, privileges, then the VMM in place of this process, with an empty
// environment (Firecracker clears it too) but for EDGEVISOR_NOTIFY_FD when NOTIFY names the
// service manager's socket.
absl::Status ExecVmm(const JailerArgs& a, StartTimes start, bool in_new_pid_ns,
                     const UniqueFd& notify) {
  EV_RETURN_IF_ERROR(SetResourceLimits(a.rlimits));
  EV_RETURN_IF_ERROR(DropPrivileges(a.uid, a.gid));
  const uint64_t cpu_now = ClockUs(CLOCK_PROCESS_CPUTIME_ID);
  // A fresh child's CPU clock starts at 0, as Firecracker resets it after clone.
  const uint64_t start_cpu = in_new_pid_ns ? 0 : start.cpu_us;
  std::vector<std::string> args = VmmArgv(a, start.monotonic_us, start_cpu, cpu_now - start_cpu);
  const std::string path = "/" + a.ExecFileName();
  args.insert(args.begin(), path);
  std::vector<char*> argv;
  for (std::string& s : args) argv.push_back(s.data());
  argv.push_back(nullptr);
  std::string notify_env = absl::StrCat(kNotifyFdEnv, "=", notify.get());
  char* envp[] = {notify.valid() ? notify_env.data() : nullptr, nullptr};
  execve(path.c_str(), argv.data(), envp);
  return JailerError(
      kExitExec, absl::StrFormat("exec %s in the jail %s: %s", path, a.RootDir(), strerror(errno)));
}

}  // namespace

StartTimes StartTimes::Now() {
  return StartTimes{ClockUs(CLOCK_MONOTONIC), ClockUs(CLOCK_PROCESS_CPUTIME_ID)};
}

absl::Status RunJailer(const JailerArgs& a, StartTimes start) {
  if (geteuid() != 0) {
    return JailerError(kExitNotRoot,
                       absl::StrFormat("the jailer must run as root (euid is %u): it makes device "
                                       "nodes, cgroups and namespaces before it drops to --uid "
                                       "%u --gid %u",
                                       geteuid(), a.uid, a.gid));
  }
  EV_RETURN_IF_ERROR(CloseInheritedFds());
  EV_RETURN_IF_ERROR(CheckExecFile(a.exec_file));
  EV_ASSIGN_OR_RETURN(HostDevices devices, FindHostDevices());
  UniqueFd netns;
  if (!a.netns.empty()) {
    EV_ASSIGN_OR_RETURN(netns, OpenNetns(a.netns));
  }
  EV_RETURN_IF_ERROR(EnterCgroups(a));
  EV_RETURN_IF_ERROR(BuildJailTree(a));
  UniqueFd dev_null;
  if (a.daemonize) {
    dev_null.Reset(open("/dev/null", O_RDWR | O_CLOEXEC));
    if (!dev_null.valid()) return ErrnoError("--daemonize: open /dev/null");
  }
  if (netns.valid()) EV_RETURN_IF_ERROR(JoinNetns(netns, a.netns));
  netns.Reset();
  const UniqueFd notify = ConnectServiceManager();
  EV_RETURN_IF_ERROR(PivotInto(a.RootDir()));
  EV_RETURN_IF_ERROR(MakeDeviceNodes(devices, a.uid, a.gid));
  if (a.daemonize) EV_RETURN_IF_ERROR(Daemonize(dev_null));
  dev_null.Reset();
  if (a.new_pid_ns) {
    EV_ASSIGN_OR_RETURN(pid_t child, ForkIntoNewPidNamespace());
    if (child > 0) return WritePidFile(a, child);
  }
  return ExecVmm(a, start, a.new_pid_ns, notify);
}

}  // namespace edgevisor::jailer
