// The appliance's A/B update agent (`ev-appliance update`, and the boot-time part that
// `ev-appliance run` does): a signed bundle (bundle.h) goes into the slot that is not running,
// GRUB is told to try it (grubenv.h), and the trial boot either passes its health check and is
// committed, or is rolled back.
//
// Update, in this order, and nothing is written before step 4:
//   1. the bundle's header, manifest and signature (by a key in the running slot's
//      /etc/edgevisor/update-keys);
//   2. the manifest against this box: architecture, version (no downgrade unless allowed, the
//      minimum version it updates from), the slot partition's size, no trial in progress;
//   3. for a file: its size and the squashfs's sha256, read once before writing;
//   4. the squashfs streamed into the inactive slot (for a URL, straight from the download), then
//      synced, dropped from the cache, read back from the disk and hashed again;
//   5. /data/update/pending.json, then grubenv: next_slot=<new> next_tries=<trial boots>, one
//      sector written in place; then the reboot.
// At boot (Reconcile): a trial boot (grubenv's next_slot is the running slot) runs the health
// check; a pending update whose slot is not the running one was rolled back by GRUB (the trial
// boots ran out: a panic, a hang the watchdog reset, a power cut) and is logged as such.
// Everything goes to the console and to /data/log/update.log.
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "src/appliance/bundle.h"
#include "src/appliance/grubenv.h"

namespace edgevisor::appliance::update {

// Where things are on the appliance (tests point them elsewhere).
struct Paths {
  std::string state_dir = "/data/update";  // pending.json, last.json
  std::string log = "/data/log/update.log";
  std::string keys = "/etc/edgevisor/update-keys";
  std::string release = "/etc/edgevisor/release.json";
  std::string running_slot = "/run/ev-slot";
  std::string sys_block = "/sys/class/block";
  std::string esp_mount = "/run/ev-esp";  // where the ESP is mounted (read-only) to find grubenv
};

// The block device of the GPT partition named NAME ("/dev/vda3"), from sysfs's PARTNAME.
absl::StatusOr<std::string> FindPartition(const Paths& paths, const std::string& name);

// grubenv on the ESP, read and written as raw sectors of the ESP's partition.
//
// Why one sector written in place is safe on FAT: the file keeps its size and its clusters, so
// neither the FAT nor the directory entry changes; only the file's own data sector does, and a
// disk writes a sector whole or not at all (the power-cut tests cut power around it). GRUB's
// save_env writes the block the same way, through its block list. The location comes from the
// kernel (FIBMAP on the file, the ESP mounted read-only for a moment), never from parsing FAT.
class GrubenvStore {
 public:
  static absl::StatusOr<GrubenvStore> Open(const Paths& paths);
  absl::StatusOr<grubenv::Env> Read() const;
  // Writes ENV (grubenv::Render: within the first sector), then reads it back.
  absl::Status Write(const grubenv::Env& env) const;
  const std::string& device() const { return device_; }
  uint64_t offset() const { return offset_; }

 private:
  std::string device_;
  uint64_t offset_ = 0;
};

struct Running {
  char slot = 'A';
  std::string arch;
  bundle::Version version;
  nlohmann::json release;  // /etc/edgevisor/release.json
};
absl::StatusOr<Running> ReadRunning(const Paths& paths);

struct Options {
  int trial_boots = 3;
  bool reboot = true;
  bool if_newer = false;  // the periodic check: an older or equal release is "up to date", quietly
  uint64_t max_bytes = uint64_t{1} << 30;  // a download larger than this is cut off
  int timeout_s = 600;                     // the download's time limit
  std::function<void(const std::string&)> say;
};

// Whether Update's error refused the bundle (its signature, manifest, size, or this box's state:
// nothing was written) rather than failed while writing or downloading.
bool IsRefusal(const absl::Status& s);

// `ev-appliance update FILE|URL`. OK when the release is written and GRUB told (and the reboot
// started, with opts.reboot), or, with if_newer, when there was nothing newer.
absl::Status Update(const Paths& paths, const Options& opts, const std::string& source);

// `ev-appliance verify --keys FILE BUNDLE` (on any host, before shipping a bundle): the header,
// the signature by one of FILE's keys, the manifest, the size and the slot image's sha256.
absl::StatusOr<bundle::Manifest> VerifyBundleFile(const std::string& keys, const std::string& file);

// The boot-time view: what this boot is, from grubenv, the running slot and pending.json.
enum class Boot { kCommitted, kTrial, kOther };
struct BootView {
  Boot boot = Boot::kCommitted;
  char running = 'A';
  grubenv::AbState ab;
};
// Reads the state, records a rollback that GRUB did (and clears pending.json), and says what
// this boot is.
absl::StatusOr<BootView> Reconcile(const Paths& paths,
                                   const std::function<void(const std::string&)>& say);
// Whether the running slot is on trial (grubenv's next_slot is it); nothing is logged.
absl::StatusOr<bool> OnTrial(const Paths& paths);
// After a healthy trial boot: grubenv slot=<running>, no next_*; last.json says committed.
absl::Status Commit(const Paths& paths, const std::function<void(const std::string&)>& say);
// After an unhealthy one: grubenv back to the committed slot, no next_*; last.json and the log
// say why. The caller reboots.
absl::Status Rollback(const Paths& paths, const std::string& reason,
                      const std::function<void(const std::string&)>& say);

// `ev-appliance status`: slots, trial, versions, the last update's result (and VMS, the
// supervisor's view of its VMs, as given).
nlohmann::json Status(const Paths& paths, const nlohmann::json& vms);
std::string StatusText(const nlohmann::json& status);

}  // namespace edgevisor::appliance::update
