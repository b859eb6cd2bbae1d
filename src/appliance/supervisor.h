// The appliance's supervisor: one edgevisor process per VM in /config/appliance.json, each in
// Firecracker's --no-api mode on its config file. Every line a VM prints goes to the serial
// console (prefixed "[name] ") and to /data/log/<name>.log. When a VM's process ends, its
// restart policy decides:
//   exit 0 (guest powered off)   always: start again after a second; on-failure, never: done
//   exit kRebootExitCode (reboot) always, on-failure: start again at once; never: done
//   exit 2 (config refused)       done: starting it again would fail the same way
//   anything else (crash)         always, on-failure: start again after a back-off that doubles
//                                 from 1 s to 60 s, reset once a run lasted 10 minutes; never: done
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "src/appliance/config.h"

namespace edgevisor::appliance {

// What the supervisor passes as --reboot-exit-code, so that a guest reboot is told from a
// power-off.
inline constexpr int kRebootExitCode = 75;

enum class Outcome { kPoweredOff, kRebooted, kConfigRefused, kCrashed };

// The time now in UTC, as the logs on /data/log stamp their lines ("2026-12-03T14:20:11Z").
std::string UtcStamp();

// `status` as waitpid() returns it.
Outcome Classify(int wait_status);
std::string DescribeExit(int wait_status);

struct Decision {
  bool restart = false;
  std::chrono::milliseconds delay{0};
};

// `backoff` is the crash back-off state (the next delay); it doubles on each crash and resets
// after a long run.
Decision Decide(Restart policy, Outcome outcome, std::chrono::seconds ran,
                std::chrono::milliseconds* backoff);

struct SupervisorOptions {
  std::string edgevisor = "/usr/bin/edgevisor";
  std::string config_dir = "/config";
  std::string log_dir = "/data/log";  // empty: no log files
  // Where console lines go (the serial console on the appliance).
  std::function<void(const std::string&)> console;
  // Stop after this many starts of each VM (tests); 0: forever.
  int max_starts = 0;
  // Containment (jail.h): each VM through this jailer, as its own uid, in its own chroot and
  // cgroup. Empty: edgevisor runs directly, as the supervisor's user (the unit tests).
  std::string jailer = "/usr/bin/jailer";
  std::string jail_base = "/run/jailer";
  std::string cgroup_root = "/sys/fs/cgroup";
  // Told each VM's state as it changes: "starting (run N)", "ready" (its VMM logged the guest's
  // boot-timer write, Firecracker's "Guest-boot-time"), "stopped: WHY", "restarting: WHY".
  std::function<void(const std::string& vm, const std::string& state)> on_state;
};

// Runs one VM until its policy says stop (or max_starts). Blocks. UID: the VM's own user when
// it runs through the jailer.
void SuperviseVm(const SupervisorOptions& opts, const VmEntry& vm, uid_t uid = 0);

}  // namespace edgevisor::appliance
