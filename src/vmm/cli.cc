#include "src/vmm/cli.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <functional>
#include <map>
#include <optional>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "src/base/errors.h"
#include "src/vmm/config/fc_config.h"

namespace edgevisor {
namespace {

absl::Status CheckReadableFile(const std::string& flag, const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) {
    return absl::InvalidArgumentError(absl::StrFormat("%s %s: %s", flag, path, strerror(errno)));
  }
  if (!S_ISREG(st.st_mode)) {
    return absl::InvalidArgumentError(absl::StrFormat("%s %s: not a regular file", flag, path));
  }
  if (access(path.c_str(), R_OK) != 0) {
    return absl::InvalidArgumentError(absl::StrFormat("%s %s: %s", flag, path, strerror(errno)));
  }
  return absl::OkStatus();
}

// A flag whose value is one of a few words: the matching value, or an error listing them.
template <typename T>
absl::StatusOr<T> Choose(const std::string& flag, const std::string& value,
                         std::initializer_list<std::pair<const char*, T>> choices) {
  std::vector<std::string> names;
  for (const auto& [name, v] : choices) {
    if (value == name) return v;
    names.push_back(name);
  }
  return absl::InvalidArgumentError(
      absl::StrFormat("%s: '%s' is not one of %s", flag, value, absl::StrJoin(names, ", ")));
}

bool OnOff(const std::string& v, bool* out) {
  if (v == "on" || v == "true") return (*out = true), true;
  if (v == "off" || v == "false") return (*out = false), true;
  return false;
}

}  // namespace

absl::StatusOr<DriveConfig> ParseDriveSpec(const std::string& spec, size_t index) {
  DriveConfig d;
  d.id = absl::StrFormat("drive%d", index);
  auto bad = [&](const std::string& why) {
    return absl::InvalidArgumentError(absl::StrFormat("--drive %s: %s", spec, why));
  };
  for (absl::string_view item : absl::StrSplit(spec, ',')) {
    const size_t eq = item.find('=');
    if (eq == absl::string_view::npos) return bad(absl::StrCat("'", item, "' is not key=value"));
    const std::string key(item.substr(0, eq));
    const std::string val(item.substr(eq + 1));
    if (key == "path") {
      d.path = val;
    } else if (key == "id") {
      if (absl::Status s = CheckIdLength(val, "id"); !s.ok()) return bad(std::string(s.message()));
      d.id = val;
    } else if (key == "ro") {
      if (!OnOff(val, &d.read_only)) return bad("ro must be on or off");
    } else if (key == "direct") {
      if (!OnOff(val, &d.direct)) return bad("direct must be on or off");
    } else if (key == "queues") {
      uint32_t q = 0;
      if (!absl::SimpleAtoi(val, &q) || q < 1 || q > 16) return bad("queues must be 1 to 16");
      d.queues = static_cast<uint16_t>(q);
    } else if (key == "engine") {
      if (val == "uring") {
        d.engine = DriveConfig::Engine::kUring;
      } else if (val == "sync") {
        d.engine = DriveConfig::Engine::kSync;
      } else {
        return bad("engine must be uring or sync");
      }
    } else {
      return bad(absl::StrCat("unknown key '", key, "'"));
    }
  }
  if (d.path.empty()) return bad("path= is required");
  return d;
}

absl::StatusOr<NetConfig> ParseNetSpec(const std::string& spec, size_t index) {
  NetConfig n;
  n.mac = DefaultMac(index);
  auto bad = [&](const std::string& why) {
    return absl::InvalidArgumentError(absl::StrFormat("--net %s: %s", spec, why));
  };
  for (absl::string_view item : absl::StrSplit(spec, ',')) {
    const size_t eq = item.find('=');
    if (eq == absl::string_view::npos) return bad(absl::StrCat("'", item, "' is not key=value"));
    const std::string key(item.substr(0, eq));
    const std::string val(item.substr(eq + 1));
    if (key == "tap") {
      n.tap = val;
    } else if (key == "mac") {
      auto mac = ParseMac(val);
      if (!mac.ok()) return bad(absl::StrCat("mac ", mac.status().message()));
      n.mac = *mac;
    } else if (key == "queues") {
      uint32_t q = 0;
      if (!absl::SimpleAtoi(val, &q) || q < 1 || q > 8) return bad("queues must be 1 to 8");
      n.queues = static_cast<uint16_t>(q);
    } else {
      return bad(absl::StrCat("unknown key '", key, "'"));
    }
  }
  if (n.tap.empty()) return bad("tap= is required");
  return n;
}

std::string RunUsage() {
  return "usage: edgevisor run --kernel FILE [--initrd FILE] [--cmdline STRING] [--mem MiB]\n"
         "                     [--vcpus N]\n"
         "                     [--serial stdio|file:PATH|off] [--debug-exit] [--id ID]\n"
         "                     [--reboot-exit-code N] [--no-virtio-mmio-cmdline]\n"
         "                     [--boot-protocol auto|pvh|linux] [--gic auto|v2|v3] (aarch64)\n"
         "                     [--arm64-off pmu,sve,pac] (aarch64: no PMU, SVE or pointer\n"
         "                     authentication for the guest even where KVM offers them)\n"
         "                     [--drive path=F[,id=S][,ro=on][,direct=on][,queues=N]"
         "[,engine=uring|sync]]...\n"
         "                     [--net tap=NAME[,mac=M][,queues=N]]...\n"
         "                     [--log-level trace|debug|info|warn|error|off] [--no-seccomp]\n"
         "       edgevisor [--api-sock PATH | --no-api] [--config-file FILE] [--id ID]\n"
         "                 [--level Error|Warning|Info|Debug|Trace|Off] [--log-path FILE]\n"
         "                 [--show-level] [--metrics-path FILE] [--http-api-max-payload-size N]\n"
         "                 [--metadata FILE] [--mmds-size-limit N]\n"
         "                 [--no-seccomp]\n"
         "                 (Firecracker's command line; the REST API is in docs/API.md)\n"
         "       edgevisor rebase-snap --base-file MEM --diff-file DIFF_MEM\n"
         "                 (a Diff snapshot's memory onto the one before; docs/snapshots.md)\n";
}

namespace {

// What a flag that takes a value does with it. Errors name the flag.
using FlagSetter = std::function<absl::Status(const std::string& value)>;
using FlagTable = std::map<std::string, FlagSetter>;

// --kernel, --initrd, --cmdline, --boot-protocol.
void AddBootFlags(VmConfig& vm, FlagTable& t) {
  t["--kernel"] = [&vm](const std::string& v) {
    vm.boot.kernel_path = v;
    return absl::OkStatus();
  };
  t["--initrd"] = [&vm](const std::string& v) {
    vm.boot.initrd_path = v;
    return absl::OkStatus();
  };
  t["--cmdline"] = [&vm](const std::string& v) {
    vm.boot.cmdline = v;
    return absl::OkStatus();
  };
  t["--boot-protocol"] = [&vm](const std::string& v) {
    auto protocol = Choose<BootProtocol>("--boot-protocol", v,
                                         {{"auto", BootProtocol::kAuto},
                                          {"pvh", BootProtocol::kPvh},
                                          {"linux", BootProtocol::kLinux}});
    if (!protocol.ok()) return protocol.status();
    vm.boot.protocol = *protocol;
    return absl::OkStatus();
  };
}

// --mem, --vcpus, --gic, --arm64-off, --serial.
void AddMachineFlags(VmConfig& vm, FlagTable& t) {
  t["--mem"] = [&vm](const std::string& v) {
    absl::string_view s = v;
    absl::ConsumeSuffix(&s, "M");
    if (!absl::SimpleAtoi(s, &vm.machine.mem_mib) || vm.machine.mem_mib > (uint64_t{1} << 32)) {
      return absl::InvalidArgumentError(absl::StrFormat("--mem: '%s' is not a size in MiB", v));
    }
    return absl::OkStatus();
  };
  t["--vcpus"] = [&vm](const std::string& v) {
    if (!absl::SimpleAtoi(v, &vm.machine.vcpus)) {
      return absl::InvalidArgumentError(absl::StrFormat("--vcpus: '%s' is not a number", v));
    }
    return absl::OkStatus();
  };
  t["--gic"] = [&vm](const std::string& v) {
    auto gic = Choose<int>("--gic", v, {{"auto", 0}, {"v2", 2}, {"v3", 3}});
    if (!gic.ok()) return gic.status();
    vm.machine.gic = *gic;
#if !defined(__aarch64__)
    if (vm.machine.gic != 0) return absl::InvalidArgumentError("--gic: only aarch64 has a GIC");
#endif
    return absl::OkStatus();
  };
  t["--arm64-off"] = [&vm](const std::string& v) {
    for (absl::string_view f : absl::StrSplit(v, ',')) {
      if (f == "pmu") {
        vm.machine.arm64.pmu = false;
      } else if (f == "sve") {
        vm.machine.arm64.sve = false;
      } else if (f == "pac") {
        vm.machine.arm64.ptrauth = false;
      } else {
        return absl::InvalidArgumentError(
            absl::StrFormat("--arm64-off: '%s' is not pmu, sve or pac", f));
      }
    }
#if !defined(__aarch64__)
    return absl::InvalidArgumentError("--arm64-off: only aarch64 guests have these features");
#else
    return absl::OkStatus();
#endif
  };
  t["--serial"] = [&vm](const std::string& v) {
    if (v == "stdio") {
      vm.serial.mode = SerialConfig::Mode::kStdio;
    } else if (v == "off") {
      vm.serial.mode = SerialConfig::Mode::kOff;
    } else if (v.rfind("file:", 0) == 0) {
      vm.serial.mode = SerialConfig::Mode::kFile;
      vm.serial.path = v.substr(5);
    } else {
      return absl::InvalidArgumentError(
          absl::StrFormat("--serial: '%s' is not stdio, off or file:PATH", v));
    }
    return absl::OkStatus();
  };
}

// --drive, --net, --id, --reboot-exit-code, --log-level.
void AddDeviceAndProcessFlags(RunOptions& opts, FlagTable& t) {
  VmConfig& vm = opts.vm;
  t["--drive"] = [&vm](const std::string& v) {
    auto d = ParseDriveSpec(v, vm.drives.size());
    if (!d.ok()) return d.status();
    vm.drives.push_back(std::move(*d));
    return absl::OkStatus();
  };
  t["--net"] = [&vm](const std::string& v) {
    auto n = ParseNetSpec(v, vm.nets.size());
    if (!n.ok()) return n.status();
    vm.nets.push_back(std::move(*n));
    return absl::OkStatus();
  };
  t["--id"] = [&vm](const std::string& v) {
    vm.id = v;
    return absl::OkStatus();
  };
  t["--reboot-exit-code"] = [&vm](const std::string& v) {
    int code = 0;
    if (!absl::SimpleAtoi(v, &code) || code < 0 || code > 255) {
      return absl::InvalidArgumentError(
          absl::StrFormat("--reboot-exit-code: '%s' is not an exit status (0 to 255)", v));
    }
    vm.reboot_exit_code = code;
    return absl::OkStatus();
  };
  t["--log-level"] = [&opts](const std::string& v) {
    static constexpr const char* kLevels[] = {"trace", "debug", "info", "warn", "error", "off"};
    if (std::find(std::begin(kLevels), std::end(kLevels), v) == std::end(kLevels)) {
      return absl::InvalidArgumentError(absl::StrFormat("--log-level: unknown level '%s'", v));
    }
    opts.log_level = v;
    return absl::OkStatus();
  };
}

}  // namespace

absl::StatusOr<RunOptions> ParseRunArgs(const std::vector<std::string>& args,
                                        const HostLimits& host) {
  RunOptions opts;
  FlagTable with_value;
  AddBootFlags(opts.vm, with_value);
  AddMachineFlags(opts.vm, with_value);
  AddDeviceAndProcessFlags(opts, with_value);
  const std::map<std::string, std::function<void()>> switches = {
      {"--debug-exit", [&] { opts.vm.debug_exit = true; }},
      {"--no-virtio-mmio-cmdline", [&] { opts.vm.virtio_mmio_cmdline = false; }},
      {"--no-seccomp", [&] { opts.seccomp = false; }},
  };
  for (size_t i = 0; i < args.size(); ++i) {
    std::string flag = args[i];
    std::optional<std::string> value;  // --flag=value
    if (auto eq = flag.find('='); flag.rfind("--", 0) == 0 && eq != std::string::npos) {
      value = flag.substr(eq + 1);
      flag = flag.substr(0, eq);
    }
    if (auto sw = switches.find(flag); sw != switches.end()) {
      if (value) return absl::InvalidArgumentError(flag + ": takes no value");
      sw->second();
      continue;
    }
    auto setter = with_value.find(flag);
    if (setter == with_value.end()) {
      return absl::InvalidArgumentError(absl::StrFormat("%s: unknown argument", flag));
    }
    if (!value) {
      if (i + 1 >= args.size()) return absl::InvalidArgumentError(flag + ": missing value");
      value = args[++i];
    }
    EV_RETURN_IF_ERROR(setter->second(*value));
  }
  EV_RETURN_IF_ERROR(CheckVmInputs(opts.vm, host));
  return opts;
}

absl::Status CheckVmInputs(const VmConfig& vm, const HostLimits& host) {
  absl::Status s = ValidateVmConfig(vm, host);
  if (!s.ok()) return s;
  EV_RETURN_IF_ERROR(CheckReadableFile("--kernel", vm.boot.kernel_path));
  if (!vm.boot.initrd_path.empty()) return CheckReadableFile("--initrd", vm.boot.initrd_path);
  return absl::OkStatus();
}

absl::StatusOr<FirecrackerArgs> ParseFirecrackerArgs(const std::vector<std::string>& args) {
  FirecrackerArgs fa;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& flag = args[i];
    auto value = [&]() -> absl::StatusOr<std::string> {
      if (i + 1 >= args.size()) return absl::InvalidArgumentError(flag + ": missing value");
      return args[++i];
    };
    auto take = [&](std::string& into) -> absl::Status {
      auto v = value();
      if (!v.ok()) return v.status();
      into = *v;
      return absl::OkStatus();
    };
    absl::Status s;
    if (flag == "--config-file") {
      s = take(fa.config_file);
    } else if (flag == "--no-api") {
      fa.no_api = true;
    } else if (flag == "--api-sock") {
      s = take(fa.api_sock);
    } else if (flag == "--id") {
      s = take(fa.id);
      if (s.ok()) s = CheckIdLength(fa.id, "--id");
    } else if (flag == "--level") {
      s = take(fa.level);
      if (s.ok() && !SpdlogLevelFromFirecracker(fa.level)) {
        s = absl::InvalidArgumentError(absl::StrFormat(
            "--level: '%s' is not Error, Warning, Info, Debug, Trace or Off", fa.level));
      }
    } else if (flag == "--log-path") {
      s = take(fa.log_path);
    } else if (flag == "--show-level") {
      fa.show_level = true;
    } else if (flag == "--metrics-path") {
      s = take(fa.metrics_path);
    } else if (flag == "--http-api-max-payload-size" || flag == "--mmds-size-limit") {
      std::string v;
      s = take(v);
      size_t& into = flag == "--mmds-size-limit" ? fa.mmds_size_limit : fa.max_payload;
      if (s.ok() && (!absl::SimpleAtoi(v, &into) || into == 0)) {
        s = absl::InvalidArgumentError(flag + ": must be a positive integer");
      }
    } else if (flag == "--reboot-exit-code") {
      std::string v;
      int code = 0;
      s = take(v);
      if (s.ok() && (!absl::SimpleAtoi(v, &code) || code < 0 || code > 255)) {
        s = absl::InvalidArgumentError("--reboot-exit-code: must be 0 to 255");
      }
      if (s.ok()) fa.reboot_exit_code = code;
    } else if (flag == "--boot-timer") {
      // Always on in edgevisor: the boot-timer device is part of every VM.
    } else if (flag == "--start-time-us" || flag == "--start-time-cpu-us" ||
               flag == "--parent-cpu-time-us") {
      std::string ignored;  // the jailer's timing hints
      s = take(ignored);
    } else if (flag == "--metadata") {
      s = take(fa.metadata);
    } else if (flag == "--no-seccomp") {
      fa.seccomp = false;
    } else if (flag == "--seccomp-filter" || flag == "--show-log-origin" || flag == "--module" ||
               flag == "--describe-snapshot" || flag == "--enable-pci") {
      s = absl::InvalidArgumentError(absl::StrFormat("%s: not supported by edgevisor", flag));
    } else {
      s = absl::InvalidArgumentError(absl::StrFormat("%s: unknown argument", flag));
    }
    if (!s.ok()) return s;
  }
  if (fa.no_api && fa.config_file.empty()) {
    return absl::InvalidArgumentError("--no-api needs --config-file (nothing could start the VM)");
  }
  if (fa.reboot_exit_code && !fa.no_api) {
    return absl::InvalidArgumentError("--reboot-exit-code: only with --no-api");
  }
  return fa;
}

}  // namespace edgevisor
