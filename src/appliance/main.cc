// ev-appliance: the appliance's configuration checker, renderer and VM supervisor.
//   ev-appliance check [--runtime] FILE   validate an appliance.json (build stage by default)
//   ev-appliance render FILE OUT_DIR      write the config partition's files for FILE (build
//                                         stage) into OUT_DIR; print "DATA<TAB>src<TAB>dest" for
//                                         each file that goes on the data partition
//   ev-appliance grow-data DISK MOUNTPOINT
//                                         on the appliance's first boot on a larger disk: grow
//                                         the GPT partition "data" to the disk's end (gpt.h),
//                                         tell the kernel, and grow its mounted ext4 online
//   ev-appliance run [--config DIR] [--data DIR] [--edgevisor PATH] [--jailer PATH|""]
//                                         on the appliance: set up the network, then supervise
//                                         one edgevisor per VM (see supervisor.h)
//   ev-appliance update [--no-reboot] [--trial-boots N] FILE|URL
//                                         on the appliance: verify a signed release bundle,
//                                         write it into the inactive slot, tell GRUB to try it
//                                         and reboot (update.h)
//   ev-appliance verify [--keys FILE] BUNDLE
//                                         anywhere: check a bundle's signature (by a key in
//                                         FILE, default the slot's /etc/edgevisor/update-keys),
//                                         manifest and slot image; print the manifest
//   ev-appliance status [--json]          on the appliance: slots, trial, versions, the last
//                                         update's result, the VMs
//   ev-appliance vm-start|vm-clean [--vms DIR] [--uid UID] [--base DIR] [--edgevisor PATH]
//                   [--jailer PATH] [--reboot-exit-code N] NAME
//                                         on a plain host, for systemd's edgevisor@NAME: run
//                                         DIR/NAME.json jailed (HostVm), or clean its jail
#include <fcntl.h>
#include <ifaddrs.h>
#include <linux/blkpg.h>
#include <linux/fs.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <linux/watchdog.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "src/appliance/config.h"
#include "src/appliance/gpt.h"
#include "src/appliance/jail.h"
#include "src/appliance/supervisor.h"
#include "src/appliance/update.h"
#include "src/base/exit_codes.h"
#include "src/base/fd.h"
#include "src/base/read_file.h"
#include "src/vmm/config/fc_config.h"

namespace {

using edgevisor::kExitUsage;
using edgevisor::appliance::ApplianceConfig;
using edgevisor::appliance::Stage;

int Usage() {
  std::fputs(
      "usage: ev-appliance check [--runtime] FILE\n"
      "       ev-appliance render FILE OUT_DIR\n"
      "       ev-appliance grow-data DISK MOUNTPOINT\n"
      "       ev-appliance run [--config DIR] [--data DIR] [--edgevisor PATH] [--jailer "
      "PATH|\"\"]\n"
      "       ev-appliance update [--no-reboot] [--trial-boots N] FILE|URL\n"
      "       ev-appliance verify [--keys FILE] BUNDLE\n"
      "       ev-appliance status [--json]\n"
      "       ev-appliance vm-start|vm-clean [--vms DIR] [--uid UID] [--base DIR] "
      "[--edgevisor PATH]\n"
      "                    [--jailer PATH] [--reboot-exit-code N] NAME\n",
      stderr);
  return kExitUsage;
}

absl::StatusOr<ApplianceConfig> Load(const std::string& path, Stage stage) {
  auto text = edgevisor::ReadSmallFile(path);
  if (!text.ok()) return text.status();
  auto cfg = edgevisor::appliance::ParseApplianceConfig(*text, stage);
  if (!cfg.ok()) {
    return absl::InvalidArgumentError(absl::StrFormat("%s: %s", path, cfg.status().message()));
  }
  return cfg;
}

int Check(const std::vector<std::string>& args) {
  Stage stage = Stage::kBuild;
  std::string file;
  for (const std::string& a : args) {
    if (a == "--runtime") {
      stage = Stage::kRuntime;
    } else if (file.empty()) {
      file = a;
    } else {
      return Usage();
    }
  }
  if (file.empty()) return Usage();
  auto cfg = Load(file, stage);
  if (!cfg.ok()) {
    std::fprintf(stderr, "ev-appliance: %s\n", std::string(cfg.status().message()).c_str());
    return kExitUsage;
  }
  std::printf("%s: ok (%zu VMs)\n", file.c_str(), cfg->vms.size());
  return 0;
}

bool WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  return static_cast<bool>(out);
}

int Render(const std::vector<std::string>& args) {
  if (args.size() != 2) return Usage();
  auto cfg = Load(args[0], Stage::kBuild);
  std::string base = args[0].find('/') == std::string::npos ? std::string(".")
                                                            : args[0].substr(0, args[0].rfind('/'));
  absl::StatusOr<edgevisor::appliance::RenderOutput> out =
      cfg.ok() ? edgevisor::appliance::Render(*cfg, base) : cfg.status();
  if (!out.ok()) {
    std::fprintf(stderr, "ev-appliance: %s\n", std::string(out.status().message()).c_str());
    return kExitUsage;
  }
  const std::string dir = args[1];
  mkdir(dir.c_str(), 0755);
  mkdir((dir + "/vms").c_str(), 0755);
  bool ok = WriteFile(dir + "/appliance.json", out->appliance.dump(2) + "\n");
  for (const auto& [name, text] : out->vm_configs) ok = ok && WriteFile(dir + "/" + name, text);
  if (!ok) {
    std::fprintf(stderr, "ev-appliance: cannot write into %s\n", dir.c_str());
    return 1;
  }
  for (const auto& [src, dest] : out->data_files)
    std::printf("DATA\t%s\t%s\n", src.c_str(), dest.c_str());
  return 0;
}

// ---- grow-data -----------------------------------------------------------------------------

// ext4's online resize (fs/ext4/ext4.h; not in the uapi headers): the new size in blocks.
#define EV_EXT4_IOC_RESIZE_FS _IOW('f', 16, uint64_t)

int GrowData(const std::vector<std::string>& args) {
  if (args.size() != 2) return Usage();
  const std::string& dev = args[0];
  const std::string& mnt = args[1];
  auto fail = [&](const std::string& what) {
    std::printf("ev-appliance: data: %s\n", what.c_str());
    return 1;
  };
  edgevisor::UniqueFd fd(open(dev.c_str(), O_RDWR | O_CLOEXEC));
  uint64_t bytes = 0;
  int sector = 512;
  if (!fd.valid() || ioctl(fd.get(), BLKGETSIZE64, &bytes) != 0 ||
      ioctl(fd.get(), BLKSSZGET, &sector) != 0) {
    return fail(absl::StrFormat("%s: %s", dev, strerror(errno)));
  }
  edgevisor::appliance::gpt::Disk disk;
  disk.bytes = bytes;
  disk.sector = static_cast<uint32_t>(sector);
  disk.read = [&](uint64_t off, absl::Span<uint8_t> out) -> absl::Status {
    if (pread(fd.get(), out.data(), out.size(), static_cast<off_t>(off)) !=
        static_cast<ssize_t>(out.size())) {
      return absl::DataLossError(absl::StrFormat("read %s at %d failed", dev, off));
    }
    return absl::OkStatus();
  };
  disk.write = [&](uint64_t off, absl::Span<const uint8_t> data) -> absl::Status {
    if (pwrite(fd.get(), data.data(), data.size(), static_cast<off_t>(off)) !=
        static_cast<ssize_t>(data.size())) {
      return absl::DataLossError(absl::StrFormat("write %s at %d failed", dev, off));
    }
    return absl::OkStatus();
  };
  auto g = edgevisor::appliance::gpt::GrowPartitionToEnd(disk, "data");
  if (!g.ok()) return fail(std::string(g.status().message()));
  const uint64_t length = (g->new_last_lba - g->first_lba + 1) * static_cast<uint64_t>(sector);
  if (g->changed) {
    fsync(fd.get());
    blkpg_partition part{};
    part.start = static_cast<long long>(g->first_lba * static_cast<uint64_t>(sector));
    part.length = static_cast<long long>(length);
    part.pno = g->number;
    blkpg_ioctl_arg arg{};
    arg.op = BLKPG_RESIZE_PARTITION;
    arg.datalen = sizeof(part);
    arg.data = &part;
    if (ioctl(fd.get(), BLKPG, &arg) != 0) {
      return fail(absl::StrFormat("the kernel did not take partition %d's new size: %s", g->number,
                                  strerror(errno)));
    }
  }
  // The file system follows the partition (a no-op when it already fills it).
  edgevisor::UniqueFd dir(open(mnt.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  struct statfs st {};
  if (!dir.valid() || fstatfs(dir.get(), &st) != 0 || st.f_bsize <= 0) {
    return fail(absl::StrFormat("%s: %s", mnt, strerror(errno)));
  }
  uint64_t blocks = length / static_cast<uint64_t>(st.f_bsize);
  if (ioctl(dir.get(), EV_EXT4_IOC_RESIZE_FS, &blocks) != 0) {
    return fail(
        absl::StrFormat("online resize of %s to %d blocks: %s", mnt, blocks, strerror(errno)));
  }
  fstatfs(dir.get(), &st);
  const uint64_t fs_mib = st.f_blocks * static_cast<uint64_t>(st.f_bsize) >> 20;
  if (g->changed) {
    std::printf(
        "ev-appliance: data: partition %d grown from %lu to %lu MiB; file system now %lu MiB\n",
        g->number, static_cast<unsigned long>((g->old_last_lba - g->first_lba + 1) * sector >> 20),
        static_cast<unsigned long>(length >> 20), static_cast<unsigned long>(fs_mib));
  } else {
    std::printf("ev-appliance: data: partition %d already fills the disk (%lu MiB)\n", g->number,
                static_cast<unsigned long>(fs_mib));
  }
  return 0;
}

// ---- run -----------------------------------------------------------------------------------

class Console {
 public:
  void Line(const std::string& s) {
    absl::MutexLock lock(&mu_);
    std::fprintf(stdout, "%s\n", s.c_str());
    std::fflush(stdout);
  }

 private:
  absl::Mutex mu_;
};

// Runs a command (busybox applets on the appliance) and says so when it fails.
bool Run(Console& console, const std::vector<std::string>& argv) {
  const pid_t pid = fork();
  if (pid == 0) {
    std::vector<char*> a;
    for (const std::string& s : argv) a.push_back(const_cast<char*>(s.c_str()));
    a.push_back(nullptr);
    execvp(a[0], a.data());
    _exit(127);
  }
  int status = 0;
  if (pid < 0 || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    console.Line(absl::StrFormat("ev-appliance: network: '%s' failed", absl::StrJoin(argv, " ")));
    return false;
  }
  return true;
}

// A persistent TAP for a VM (edgevisor attaches to it by name), up, and on the VM bridge.
// OWNER (when not root) may attach to it without CAP_NET_ADMIN: the VM's jailed VMM.
void MakeTap(Console& console, const std::string& name, const std::string& bridge, uid_t owner) {
  const int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
  ifreq ifr{};
  std::snprintf(ifr.ifr_name, IFNAMSIZ, "%s", name.c_str());
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
  if (fd < 0 || ioctl(fd, TUNSETIFF, &ifr) != 0 || ioctl(fd, TUNSETPERSIST, 1) != 0 ||
      (owner != 0 && (ioctl(fd, TUNSETOWNER, owner) != 0 || ioctl(fd, TUNSETGROUP, owner) != 0))) {
    console.Line(absl::StrFormat("ev-appliance: network: TAP %s: %s", name, strerror(errno)));
    if (fd >= 0) close(fd);
    return;
  }
  close(fd);
  Run(console, {"ip", "link", "set", "dev", name, "up"});
  if (!bridge.empty()) Run(console, {"brctl", "addif", bridge, name});
}

void SetUpNetwork(Console& console, const ApplianceConfig& cfg) {
  if (sethostname(cfg.name.c_str(), cfg.name.size()) != 0) {
    console.Line(absl::StrFormat("ev-appliance: hostname: %s", strerror(errno)));
  }
  Run(console, {"ip", "link", "set", "dev", "lo", "up"});
  for (const auto& itf : cfg.interfaces) {
    if (access(("/sys/class/net/" + itf.name).c_str(), F_OK) != 0) {
      console.Line(absl::StrFormat("ev-appliance: network: no interface %s here", itf.name));
      continue;
    }
    Run(console, {"ip", "link", "set", "dev", itf.name, "up"});
    if (itf.dhcp) {
      Run(console,
          {"udhcpc", "-b", "-S", "-i", itf.name, "-s", "/usr/share/edgevisor/udhcpc.script"});
    } else {
      Run(console, {"ip", "addr", "add", itf.address, "dev", itf.name});
      if (!itf.gateway.empty()) Run(console, {"ip", "route", "add", "default", "via", itf.gateway});
    }
    console.Line(
        absl::StrFormat("ev-appliance: network: %s %s", itf.name, itf.dhcp ? "DHCP" : itf.address));
  }
  if (cfg.bridge) {
    Run(console, {"brctl", "addbr", cfg.bridge->name});
    if (!cfg.bridge->address.empty()) {
      Run(console, {"ip", "addr", "add", cfg.bridge->address, "dev", cfg.bridge->name});
    }
    if (!cfg.bridge->uplink.empty())
      Run(console, {"brctl", "addif", cfg.bridge->name, cfg.bridge->uplink});
    Run(console, {"ip", "link", "set", "dev", cfg.bridge->name, "up"});
    console.Line(absl::StrFormat("ev-appliance: network: VM bridge %s %s", cfg.bridge->name,
                                 cfg.bridge->address));
  }
}

// The VMs' states for `ev-appliance status` (/run/ev-appliance/vms.json) and for the health
// check of a trial boot (which VMs have been ready since this boot).
class VmStates {
 public:
  explicit VmStates(std::string file) : file_(std::move(file)) {}
  void Set(const std::string& vm, const std::string& state) {
    absl::MutexLock lock(&mu_);
    states_[vm] = state;
    if (state == "ready") ready_.insert(vm);
    const std::string tmp = file_ + ".tmp";
    if (WriteFile(tmp, states_.dump() + "\n")) rename(tmp.c_str(), file_.c_str());
  }
  bool EverReady(const std::string& vm) {
    absl::MutexLock lock(&mu_);
    return ready_.count(vm) != 0;
  }

 private:
  const std::string file_;
  absl::Mutex mu_;
  nlohmann::json states_ ABSL_GUARDED_BY(mu_) = nlohmann::json::object();
  std::set<std::string> ready_ ABSL_GUARDED_BY(mu_);
};

// Feeds the hardware watchdog (the initramfs armed it: a hang before this point resets the box
// too). Never closes it: if the supervisor dies, the watchdog stays armed and unfed, and the box
// resets unless init's respawn of the supervisor feeds it again.
void FeedWatchdog(Console& console, int timeout_s) {
  if (timeout_s == 0) return;
  const int fd = open("/dev/watchdog", O_WRONLY | O_CLOEXEC);
  if (fd < 0) {
    console.Line(
        absl::StrFormat("ev-appliance: watchdog: none (/dev/watchdog: %s)", strerror(errno)));
    return;
  }
  int t = timeout_s;
  if (ioctl(fd, WDIOC_SETTIMEOUT, &t) != 0 && ioctl(fd, WDIOC_GETTIMEOUT, &t) != 0) t = 30;
  watchdog_info info{};
  ioctl(fd, WDIOC_GETSUPPORT, &info);
  const int every = std::max(1, t / 4);
  console.Line(absl::StrFormat("ev-appliance: watchdog: %s, timeout %d s, fed every %d s",
                               reinterpret_cast<const char*>(info.identity), t, every));
  for (;;) {
    ioctl(fd, WDIOC_KEEPALIVE, 0);
    sleep(static_cast<unsigned>(every));
  }
}

// What the health check still waits for ("" when the network is as appliance.json says).
std::string NetworkMissing(const ApplianceConfig& cfg) {
  std::set<std::string> with_v4;
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) == 0) {
    for (ifaddrs* i = list; i != nullptr; i = i->ifa_next) {
      if (i->ifa_addr != nullptr && i->ifa_addr->sa_family == AF_INET) with_v4.insert(i->ifa_name);
    }
    freeifaddrs(list);
  }
  for (const auto& itf : cfg.interfaces) {
    if (!with_v4.count(itf.name)) {
      return absl::StrFormat("interface %s has no IPv4 address (%s)", itf.name,
                             itf.dhcp ? "no DHCP lease" : itf.address);
    }
  }
  if (cfg.bridge && !cfg.bridge->address.empty() && !with_v4.count(cfg.bridge->name)) {
    return absl::StrFormat("VM bridge %s has no address", cfg.bridge->name);
  }
  return "";
}

// A trial boot's health check: the network configured as appliance.json says, and every VM with
// restart "always" ready, within update.health_timeout_s. Then commit, or roll back and reboot.
void HealthCheck(Console& console, const ApplianceConfig& cfg, VmStates& states,
                 const edgevisor::appliance::update::Paths& paths) {
  auto say = [&console](const std::string& l) { console.Line(l); };
  const auto t0 = std::chrono::steady_clock::now();
  const auto deadline = t0 + std::chrono::seconds(cfg.update.health_timeout_s);
  std::string missing;
  for (;;) {
    missing = NetworkMissing(cfg);
    for (const auto& vm : cfg.vms) {
      if (missing.empty() && vm.restart == edgevisor::appliance::Restart::kAlways &&
          !states.EverReady(vm.name)) {
        missing = absl::StrFormat("VM %s (restart always) has not become ready", vm.name);
      }
    }
    if (missing.empty() || std::chrono::steady_clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
  const auto took =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - t0)
          .count();
  if (missing.empty()) {
    console.Line(absl::StrFormat(
        "ev-appliance: update: health check passed after %d s: network up, every restart-always "
        "VM ready",
        took));
    auto s = edgevisor::appliance::update::Commit(paths, say);
    if (!s.ok())
      console.Line(absl::StrFormat("ev-appliance: update: commit failed: %s", s.message()));
    return;
  }
  const std::string reason =
      absl::StrFormat("after %d s (update.health_timeout_s): %s", took, missing);
  auto s = edgevisor::appliance::update::Rollback(paths, reason, say);
  if (!s.ok()) {
    // grubenv could not be written: GRUB's countdown still ends the trial.
    console.Line(
        absl::StrFormat("ev-appliance: update: rollback: %s; rebooting anyway (GRUB "
                        "counts the trial down)",
                        s.message()));
  }
  sync();
  Run(console, {"reboot"});
}

// The boot-time part of the update agent, and the periodic check of update.url.
void StartUpdateAgent(Console& console, const ApplianceConfig* cfg, VmStates& states,
                      std::vector<std::thread>& threads) {
  const edgevisor::appliance::update::Paths paths;
  if (access(paths.running_slot.c_str(), F_OK) != 0) return;  // not on the appliance
  mkdir(paths.state_dir.c_str(), 0755);
  auto say = [&console](const std::string& l) { console.Line(l); };
  auto view = edgevisor::appliance::update::Reconcile(paths, say);
  if (!view.ok()) {
    console.Line(absl::StrFormat("ev-appliance: update: cannot read the A/B state: %s",
                                 view.status().message()));
    return;
  }
  if (view->boot == edgevisor::appliance::update::Boot::kTrial) {
    if (cfg == nullptr) {
      // This release refuses the config the last one ran with: not healthy.
      (void)edgevisor::appliance::update::Rollback(
          paths, "it refuses /config/appliance.json (above)", say);
      sync();
      Run(console, {"reboot"});
      return;
    }
    threads.emplace_back(
        [&console, cfg, &states, paths] { HealthCheck(console, *cfg, states, paths); });
  }
  if (cfg != nullptr && !cfg->update.url.empty()) {
    threads.emplace_back([&console, cfg, paths] {
      const edgevisor::appliance::update::Paths p = paths;
      for (;;) {
        std::this_thread::sleep_for(std::chrono::seconds(cfg->update.check_interval_s));
        auto trial = edgevisor::appliance::update::OnTrial(p);
        if (!trial.ok() || *trial) continue;  // the health check decides first
        edgevisor::appliance::update::Options o;
        o.trial_boots = cfg->update.trial_boots;
        o.if_newer = true;
        o.say = [&console](const std::string& l) { console.Line(l); };
        (void)edgevisor::appliance::update::Update(p, o, cfg->update.url);
      }
    });
  }
}

int RunAppliance(const std::vector<std::string>& args) {
  edgevisor::appliance::SupervisorOptions opts;
  std::string data = "/data";
  for (size_t i = 0; i < args.size(); ++i) {
    if (i + 1 >= args.size()) return Usage();
    if (args[i] == "--config") {
      opts.config_dir = args[++i];
    } else if (args[i] == "--data") {
      data = args[++i];
    } else if (args[i] == "--edgevisor") {
      opts.edgevisor = args[++i];
    } else if (args[i] == "--jailer") {
      opts.jailer = args[++i];  // "": edgevisor runs directly, as root
    } else {
      return Usage();
    }
  }
  Console console;
  opts.console = [&console](const std::string& l) { console.Line(l); };
  opts.log_dir = data + "/log";
  mkdir(opts.log_dir.c_str(), 0755);
  const std::string file = opts.config_dir + "/appliance.json";
  auto cfg = Load(file, Stage::kRuntime);
  mkdir("/run/ev-appliance", 0755);
  VmStates states("/run/ev-appliance/vms.json");
  opts.on_state = [&states](const std::string& vm, const std::string& st) { states.Set(vm, st); };
  std::vector<std::thread> agents;
  const int watchdog_s = cfg.ok() ? cfg->watchdog_s : 60;
  agents.emplace_back([&console, watchdog_s] { FeedWatchdog(console, watchdog_s); });
  if (!cfg.ok()) {
    // Keep the appliance up, so that the config partition can be fixed; say why nothing runs.
    console.Line(absl::StrFormat("ev-appliance: %s; no VM started", cfg.status().message()));
    StartUpdateAgent(console, nullptr, states, agents);
    for (;;) pause();
  }
  console.Line(absl::StrFormat("ev-appliance: appliance %s, %zu VMs", cfg->name, cfg->vms.size()));
  SetUpNetwork(console, *cfg);
  StartUpdateAgent(console, &*cfg, states, agents);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < cfg->vms.size(); ++i) {
    const auto& vm = cfg->vms[i];
    const uid_t uid = opts.jailer.empty() ? 0 : edgevisor::appliance::kUidBase + i;
    // The VM's TAPs, from its Firecracker config.
    auto text = edgevisor::ReadSmallFile(opts.config_dir + "/" + vm.config);
    auto fc = text.ok() ? edgevisor::ParseFirecrackerConfig(*text)
                        : absl::StatusOr<edgevisor::FirecrackerConfig>(text.status());
    if (!fc.ok()) {
      console.Line(absl::StrFormat("ev-appliance: vm %s: %s: %s; not started", vm.name, vm.config,
                                   fc.status().message()));
      continue;
    }
    for (const auto& net : fc->resources.nets) {
      MakeTap(console, net.host_dev_name, cfg->bridge ? cfg->bridge->name : "", uid);
    }
    threads.emplace_back([&opts, vm, uid] { edgevisor::appliance::SuperviseVm(opts, vm, uid); });
  }
  for (auto& t : threads) t.join();
  console.Line("ev-appliance: every VM has stopped for good");
  for (;;) pause();
}

// `ev-appliance vm-start|vm-clean [options] NAME`: one VM on a plain host, as the packaged
// systemd unit edgevisor@NAME.service runs it (debian/edgevisor@.service). vm-start prepares
// the jail for DIR/NAME.json the way the appliance's supervisor does (jail.h), makes the TAPs
// it names that do not exist yet (owned by the VM's uid), and then becomes the jailer, which
// becomes the VMM: the unit's main process all along, so its READY=1 (sent on the boot-timer
// mark) is accepted with NotifyAccess=main. vm-clean removes the jail and its cgroup.
struct HostVmArgs {
  edgevisor::appliance::JailSpec spec;
  std::string vms_dir = "/etc/edgevisor/vms";
};

absl::StatusOr<HostVmArgs> ParseHostVmArgs(const std::vector<std::string>& args) {
  HostVmArgs h;
  h.spec.jailer = "/usr/bin/edgevisor-jailer";
  h.spec.edgevisor = "/usr/bin/edgevisor";
  h.spec.base = "/srv/jailer";
  h.spec.reboot_exit_code = edgevisor::appliance::kRebootExitCode;
  h.spec.own_cgroup = false;  // the unit's cgroup holds it (and systemd's MemoryMax= applies)
  std::string uid;
  for (size_t i = 0; i + 1 < args.size(); i += 2) {
    const std::string& v = args[i + 1];
    if (args[i] == "--vms") {
      h.vms_dir = v;
    } else if (args[i] == "--uid") {
      uid = v;  // "" (an unset EDGEVISOR_UID in the unit): the edgevisor user's
    } else if (args[i] == "--base") {
      h.spec.base = v;
    } else if (args[i] == "--edgevisor") {
      h.spec.edgevisor = v;
    } else if (args[i] == "--jailer") {
      h.spec.jailer = v;
    } else if (args[i] == "--reboot-exit-code") {
      if (!absl::SimpleAtoi(v, &h.spec.reboot_exit_code) || h.spec.reboot_exit_code < 0 ||
          h.spec.reboot_exit_code > 255) {
        return absl::InvalidArgumentError("--reboot-exit-code: not an exit status (0 to 255)");
      }
    } else {
      return absl::InvalidArgumentError(absl::StrFormat("unknown option '%s'", args[i]));
    }
  }
  if (args.size() % 2 == 0) return absl::InvalidArgumentError("the VM's NAME is missing");
  h.spec.vm = args.back();
  // NAME becomes a file name and the jailer's --id: its characters only.
  if (h.spec.vm.empty() || h.spec.vm.size() > 64 ||
      h.spec.vm.find_first_not_of(
          "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-") != std::string::npos) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "NAME '%s': 1 to 64 letters, digits and hyphens (the jailer's --id)", h.spec.vm));
  }
  h.spec.config = h.vms_dir + "/" + h.spec.vm + ".json";
  if (uid.empty()) {
    const passwd* pw = getpwnam("edgevisor");
    if (pw == nullptr) {
      return absl::FailedPreconditionError(
          "--uid: not given, and there is no user 'edgevisor' (the package makes it)");
    }
    h.spec.uid = pw->pw_uid;
  } else if (!absl::SimpleAtoi(uid, &h.spec.uid) || h.spec.uid == 0) {
    return absl::InvalidArgumentError(absl::StrFormat("--uid '%s': not a non-root uid", uid));
  }
  return h;
}

int HostVm(const std::string& cmd, const std::vector<std::string>& args) {
  auto h = ParseHostVmArgs(args);
  if (!h.ok()) {
    std::fprintf(stderr, "ev-appliance %s: %s\n", cmd.c_str(),
                 std::string(h.status().message()).c_str());
    return kExitUsage;
  }
  if (cmd == "vm-clean") {
    edgevisor::appliance::CleanJail(h->spec);
    return 0;
  }
  auto text = edgevisor::ReadSmallFile(h->spec.config);
  auto fc = text.ok() ? edgevisor::ParseFirecrackerConfig(*text)
                      : absl::StatusOr<edgevisor::FirecrackerConfig>(text.status());
  if (!fc.ok()) {
    std::fprintf(stderr, "ev-appliance vm-start: %s: %s\n", h->spec.config.c_str(),
                 std::string(fc.status().message()).c_str());
    return kExitUsage;
  }
  Console console;
  for (const auto& net : fc->resources.nets) {
    if (access(("/sys/class/net/" + net.host_dev_name).c_str(), F_OK) != 0) {
      MakeTap(console, net.host_dev_name, "", h->spec.uid);
    }
  }
  auto argv = edgevisor::appliance::PrepareJail(h->spec);
  if (!argv.ok()) {
    std::fprintf(stderr, "ev-appliance vm-start: %s\n",
                 std::string(argv.status().message()).c_str());
    return edgevisor::kExitVmmError;
  }
  std::vector<char*> a;
  for (std::string& s : *argv) a.push_back(s.data());
  a.push_back(nullptr);
  execv(a[0], a.data());
  std::fprintf(stderr, "ev-appliance vm-start: exec %s: %s\n", a[0], std::strerror(errno));
  return edgevisor::kExitVmmError;
}

int UpdateCommand(const std::vector<std::string>& args) {
  edgevisor::appliance::update::Options o;
  std::string source;
  int trial_boots = 0;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--no-reboot") {
      o.reboot = false;
    } else if (args[i] == "--trial-boots" && i + 1 < args.size()) {
      if (!absl::SimpleAtoi(args[++i], &trial_boots) || trial_boots < 1 || trial_boots > 3) {
        std::fprintf(stderr, "ev-appliance update: --trial-boots: 1 to 3\n");
        return kExitUsage;
      }
    } else if (source.empty() && !args[i].empty() && args[i][0] != '-') {
      source = args[i];
    } else {
      return Usage();
    }
  }
  if (source.empty()) return Usage();
  // The trial boots from appliance.json unless given.
  auto cfg = Load("/config/appliance.json", Stage::kRuntime);
  o.trial_boots = trial_boots ? trial_boots : cfg.ok() ? cfg->update.trial_boots : 3;
  o.say = [](const std::string& l) {
    std::printf("%s\n", l.c_str());
    std::fflush(stdout);
  };
  const absl::Status s = edgevisor::appliance::update::Update({}, o, source);
  if (!s.ok()) return edgevisor::appliance::update::IsRefusal(s) ? kExitUsage : 1;
  return 0;
}

int VerifyCommand(const std::vector<std::string>& args) {
  std::string keys = edgevisor::appliance::update::Paths().keys, file;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--keys" && i + 1 < args.size()) {
      keys = args[++i];
    } else if (file.empty()) {
      file = args[i];
    } else {
      return Usage();
    }
  }
  if (file.empty()) return Usage();
  auto m = edgevisor::appliance::update::VerifyBundleFile(keys, file);
  if (!m.ok()) {
    std::fprintf(stderr, "ev-appliance verify: %s: %s\n", file.c_str(),
                 std::string(m.status().message()).c_str());
    return kExitUsage;
  }
  std::printf("%s: ok: release %s for %s, slot image %lu bytes, sha256 %s, signed by a key in %s\n",
              file.c_str(), m->version.text.c_str(), m->arch.c_str(),
              static_cast<unsigned long>(m->slot_size),
              edgevisor::appliance::bundle::Hex(m->slot_sha256).c_str(), keys.c_str());
  return 0;
}

int StatusCommand(const std::vector<std::string>& args) {
  bool as_json = false;
  for (const std::string& a : args) {
    if (a == "--json") {
      as_json = true;
    } else {
      return Usage();
    }
  }
  nlohmann::json vms = nlohmann::json::object();
  auto text = edgevisor::ReadSmallFile("/run/ev-appliance/vms.json");
  if (text.ok()) {
    vms = nlohmann::json::parse(*text, nullptr, false);
    if (vms.is_discarded()) vms = nlohmann::json::object();
  }
  const nlohmann::json st = edgevisor::appliance::update::Status({}, vms);
  if (as_json) {
    std::printf("%s\n", st.dump(2).c_str());
  } else {
    std::fputs(edgevisor::appliance::update::StatusText(st).c_str(), stdout);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty()) return Usage();
  const std::string cmd = args[0];
  args.erase(args.begin());
  if (cmd == "check") return Check(args);
  if (cmd == "render") return Render(args);
  if (cmd == "run") return RunAppliance(args);
  if (cmd == "grow-data") return GrowData(args);
  if (cmd == "update") return UpdateCommand(args);
  if (cmd == "status") return StatusCommand(args);
  if (cmd == "verify") return VerifyCommand(args);
  if (cmd == "vm-start" || cmd == "vm-clean") return HostVm(cmd, args);
  return Usage();
}
