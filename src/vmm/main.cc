// edgevisor: one process per microVM.
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "spdlog/sinks/basic_file_sink.h"
#include "spdlog/sinks/stdout_sinks.h"
#include "src/vmm/builder.h"
#include "src/vmm/cli.h"
#include "src/vmm/config/fc_config.h"
#include "src/vmm/util/errors.h"
#include "src/vmm/util/log.h"

namespace {

constexpr const char* kVersion = "0.1.0";

// Logs go to stderr, or to `path` (Firecracker's logger.log_path).
bool SetUpLogging(const std::string& vm_id, const std::string& level,
                  const std::string& path = "") {
  spdlog::sink_ptr sink;
  if (path.empty()) {
    sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  } else {
    try {
      sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>(path);
    } catch (const spdlog::spdlog_ex& e) {
      std::fprintf(stderr, "edgevisor: logger.log_path %s: %s\n", path.c_str(), e.what());
      return false;
    }
  }
  auto logger = std::make_shared<spdlog::logger>(vm_id, std::move(sink));
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%f [%n:%t] [%l] %v");
  logger->set_level(spdlog::level::from_str(level));
  logger->flush_on(spdlog::level::trace);
  spdlog::set_default_logger(std::move(logger));
  return true;
}

std::string ReadFile(const std::string& path, std::string* error) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) {
    *error = std::strerror(errno);
    return "";
  }
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0 && out.size() < (1u << 20))
    out.append(buf, n);
  std::fclose(f);
  if (out.size() >= (1u << 20)) *error = "larger than 1 MiB";
  return out;
}

int Boot(const edgevisor::VmConfig& vm, edgevisor::ProcessClock start) {
  auto vmm = edgevisor::BuildVm(vm, start);
  if (!vmm.ok()) {
    spdlog::error("{}", vmm.status().message());
    return edgevisor::IsUsageError(vmm.status()) ? edgevisor::kExitUsage : edgevisor::kExitVmmError;
  }
  return (*vmm)->Run();
}

// `edgevisor --config-file F --no-api ...`: Firecracker's command line.
int FirecrackerMain(const std::vector<std::string>& args, edgevisor::ProcessClock start) {
  auto fa = edgevisor::ParseFirecrackerArgs(args);
  if (!fa.ok()) {
    std::fprintf(stderr, "edgevisor: %s\n", std::string(fa.status().message()).c_str());
    return edgevisor::kExitUsage;
  }
  std::string error;
  const std::string text = ReadFile(fa->config_file, &error);
  if (!error.empty()) {
    std::fprintf(stderr, "edgevisor: --config-file %s: %s\n", fa->config_file.c_str(),
                 error.c_str());
    return edgevisor::kExitUsage;
  }
  auto cfg = edgevisor::ParseFirecrackerConfig(text);
  absl::Status s =
      cfg.ok() ? edgevisor::CheckVmInputs(cfg->vm, edgevisor::HostLimits::Detect()) : cfg.status();
  if (!s.ok()) {
    std::fprintf(stderr, "edgevisor: --config-file %s: %s\n", fa->config_file.c_str(),
                 std::string(s.message()).c_str());
    return edgevisor::kExitUsage;
  }
  if (!fa->id.empty()) cfg->vm.id = fa->id;
  std::string level = cfg->logger.level;
  for (const auto& [fc, ours] : {std::pair<const char*, const char*>{"Error", "error"},
                                 {"Warning", "warn"},
                                 {"Info", "info"},
                                 {"Debug", "debug"},
                                 {"Trace", "trace"},
                                 {"Off", "off"}}) {
    if (fa->level == fc) level = ours;
  }
  if (!SetUpLogging(cfg->vm.id, level, cfg->logger.log_path)) return edgevisor::kExitUsage;
  return Boot(cfg->vm, start);
}

}  // namespace

int main(int argc, char** argv) {
  const edgevisor::ProcessClock start = edgevisor::ProcessClock::Now();
  edgevisor::Vmm::BlockProcessSignals();

  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    std::fputs(edgevisor::RunUsage().c_str(), args.empty() ? stderr : stdout);
    return args.empty() ? edgevisor::kExitUsage : 0;
  }
  if (args[0] == "--version") {
    std::printf("edgevisor %s\n", kVersion);
    return 0;
  }
  if (args[0] != "run" && args[0].rfind("--", 0) == 0) return FirecrackerMain(args, start);
  if (args[0] != "run") {
    std::fprintf(stderr, "edgevisor: unknown command '%s'\n%s", args[0].c_str(),
                 edgevisor::RunUsage().c_str());
    return edgevisor::kExitUsage;
  }
  args.erase(args.begin());

  auto opts = edgevisor::ParseRunArgs(args, edgevisor::HostLimits::Detect());
  if (!opts.ok()) {
    std::fprintf(stderr, "edgevisor: %s\n%s", std::string(opts.status().message()).c_str(),
                 edgevisor::RunUsage().c_str());
    return edgevisor::kExitUsage;
  }
  SetUpLogging(opts->vm.id, opts->log_level);
  return Boot(opts->vm, start);
}
