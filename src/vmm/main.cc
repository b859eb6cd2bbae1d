// edgevisor: one process per microVM.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "spdlog/sinks/stdout_sinks.h"
#include "src/vmm/builder.h"
#include "src/vmm/cli.h"
#include "src/vmm/util/errors.h"
#include "src/vmm/util/log.h"

namespace {

constexpr const char* kVersion = "0.1.0";

void SetUpLogging(const std::string& vm_id, const std::string& level) {
  auto logger =
      std::make_shared<spdlog::logger>(vm_id, std::make_shared<spdlog::sinks::stderr_sink_mt>());
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%f [%n:%t] [%l] %v");
  logger->set_level(spdlog::level::from_str(level));
  logger->flush_on(spdlog::level::trace);
  spdlog::set_default_logger(std::move(logger));
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

  auto vmm = edgevisor::BuildVm(opts->vm, start);
  if (!vmm.ok()) {
    spdlog::error("{}", vmm.status().message());
    return edgevisor::IsUsageError(vmm.status()) ? edgevisor::kExitUsage : edgevisor::kExitVmmError;
  }
  return (*vmm)->Run();
}
