// GRUB's environment block (EFI/edgevisor/grubenv on the ESP): the A/B state that grub.cfg reads
// at every boot.
//   slot=A|B         the committed slot: the one that last booted healthy
//   next_slot=A|B    a freshly written slot on trial, with
//   next_tries=N     boots left to try it (grub.cfg counts down; at 0 it forgets next_slot)
// The block is 1024 bytes: "# GRUB Environment Block\n", NAME=VALUE lines, '#' to the end. What
// edgevisor writes fits in the first 512-byte sector, and the second stays all '#', so a change
// of state is one sector written in place (grubenv_store.h says why that is safe on FAT).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace edgevisor::appliance::grubenv {

inline constexpr size_t kBlockSize = 1024;
inline constexpr size_t kSector = 512;
inline constexpr char kHeader[] = "# GRUB Environment Block\n";

struct Env {
  std::map<std::string, std::string> vars;
  // The A/B view of it ("" where unset).
  std::string Get(const std::string& k) const {
    auto it = vars.find(k);
    return it == vars.end() ? "" : it->second;
  }
};

// Parses a whole block (its header, its lines, its '#' padding). GRUB's own escapes ('\\' before
// '\\' or a newline) are undone.
absl::StatusOr<Env> Parse(std::string_view block);
// The 1024-byte block for ENV, with every variable in the first sector; InvalidArgument when it
// would not fit there, or a name or value cannot be written.
absl::StatusOr<std::string> Render(const Env& env);

// The A/B state as the update agent sees it.
struct AbState {
  char slot = 'A';      // committed
  char next_slot = 0;   // 0: no trial
  int next_tries = -1;  // -1: unset
};
AbState ReadAb(const Env& env);
// ENV with the A/B variables replaced by STATE's (other variables are kept).
Env WithAb(Env env, const AbState& state);

}  // namespace edgevisor::appliance::grubenv
