#include "src/vmm/cli.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"

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

}  // namespace

std::string RunUsage() {
  return "usage: edgevisor run --kernel FILE [--cmdline STRING] [--mem MiB] [--vcpus N]\n"
         "                     [--serial stdio|file:PATH|off] [--debug-exit] [--id ID]\n"
         "                     [--log-level trace|debug|info|warn|error|off]\n";
}

absl::StatusOr<RunOptions> ParseRunArgs(const std::vector<std::string>& args,
                                        const HostLimits& host) {
  RunOptions opts;
  VmConfig& vm = opts.vm;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string flag = args[i];
    std::string value;
    bool has_inline_value = false;
    if (auto eq = flag.find('='); flag.rfind("--", 0) == 0 && eq != std::string::npos) {
      value = flag.substr(eq + 1);
      flag = flag.substr(0, eq);
      has_inline_value = true;
    }
    auto next = [&]() -> absl::StatusOr<std::string> {
      if (has_inline_value) return value;
      if (i + 1 >= args.size()) return absl::InvalidArgumentError(flag + ": missing value");
      return args[++i];
    };
    if (flag == "--kernel") {
      auto v = next();
      if (!v.ok()) return v.status();
      vm.boot.kernel_path = *v;
    } else if (flag == "--cmdline") {
      auto v = next();
      if (!v.ok()) return v.status();
      vm.boot.cmdline = *v;
    } else if (flag == "--mem") {
      auto v = next();
      if (!v.ok()) return v.status();
      absl::string_view s = *v;
      absl::ConsumeSuffix(&s, "M");
      if (!absl::SimpleAtoi(s, &vm.machine.mem_mib) || vm.machine.mem_mib > (uint64_t{1} << 32)) {
        return absl::InvalidArgumentError(absl::StrFormat("--mem: '%s' is not a size in MiB", *v));
      }
    } else if (flag == "--vcpus") {
      auto v = next();
      if (!v.ok()) return v.status();
      if (!absl::SimpleAtoi(*v, &vm.machine.vcpus)) {
        return absl::InvalidArgumentError(absl::StrFormat("--vcpus: '%s' is not a number", *v));
      }
    } else if (flag == "--serial") {
      auto v = next();
      if (!v.ok()) return v.status();
      if (*v == "stdio") {
        vm.serial.mode = SerialConfig::Mode::kStdio;
      } else if (*v == "off") {
        vm.serial.mode = SerialConfig::Mode::kOff;
      } else if (v->rfind("file:", 0) == 0) {
        vm.serial.mode = SerialConfig::Mode::kFile;
        vm.serial.path = v->substr(5);
      } else {
        return absl::InvalidArgumentError(
            absl::StrFormat("--serial: '%s' is not stdio, off or file:PATH", *v));
      }
    } else if (flag == "--debug-exit") {
      if (has_inline_value) return absl::InvalidArgumentError("--debug-exit: takes no value");
      vm.debug_exit = true;
    } else if (flag == "--id") {
      auto v = next();
      if (!v.ok()) return v.status();
      vm.id = *v;
    } else if (flag == "--log-level") {
      auto v = next();
      if (!v.ok()) return v.status();
      static constexpr const char* kLevels[] = {"trace", "debug", "info", "warn", "error", "off"};
      if (std::find(std::begin(kLevels), std::end(kLevels), *v) == std::end(kLevels)) {
        return absl::InvalidArgumentError(absl::StrFormat("--log-level: unknown level '%s'", *v));
      }
      opts.log_level = *v;
    } else {
      return absl::InvalidArgumentError(absl::StrFormat("%s: unknown argument", flag));
    }
  }
  absl::Status s = ValidateVmConfig(vm, host);
  if (!s.ok()) return s;
  s = CheckReadableFile("--kernel", vm.boot.kernel_path);
  if (!s.ok()) return s;
  return opts;
}

}  // namespace edgevisor
