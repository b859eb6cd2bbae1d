// jailer: Firecracker's jailer for edgevisor. Builds the VMM's jail and execs it there.
//   jailer --id ID --exec-file PATH --uid UID --gid GID [...] -- VMM ARGUMENTS
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "spdlog/sinks/stdout_sinks.h"
#include "src/base/log.h"
#include "src/jailer/args.h"
#include "src/jailer/exit_codes.h"
#include "src/jailer/jailer.h"

#ifndef EDGEVISOR_VERSION
#define EDGEVISOR_VERSION "unknown"
#endif

int main(int argc, char** argv) {
  namespace jailer = edgevisor::jailer;
  const jailer::StartTimes start = jailer::StartTimes::Now();
  auto logger =
      std::make_shared<spdlog::logger>("jailer", std::make_shared<spdlog::sinks::stderr_sink_mt>());
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%f [%n:%P] [%l] %v");
  spdlog::set_default_logger(std::move(logger));

  auto args = jailer::ParseJailerArgs(std::vector<std::string>(argv + 1, argv + argc));
  if (!args.ok()) {
    spdlog::error("{}", args.status().message());
    std::fputs(jailer::Usage().c_str(), stderr);
    return jailer::ExitCodeOf(args.status());
  }
  if (args->help) {
    std::fputs(jailer::Usage().c_str(), stdout);
    return jailer::kExitOk;
  }
  if (args->version) {
    std::printf("jailer (edgevisor) %s\n", EDGEVISOR_VERSION);
    return jailer::kExitOk;
  }
  const absl::Status s = jailer::RunJailer(*args, start);
  if (s.ok()) return jailer::kExitOk;  // the parent --new-pid-ns leaves behind
  spdlog::error("{}", s.message());
  return jailer::ExitCodeOf(s);
}
