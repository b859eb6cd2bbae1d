#include "src/appliance/grubenv.h"

#include <cctype>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"

namespace edgevisor::appliance::grubenv {

absl::StatusOr<Env> Parse(std::string_view block) {
  if (block.size() != kBlockSize) {
    return absl::InvalidArgumentError(
        absl::StrFormat("grubenv: %d bytes, not %d", block.size(), kBlockSize));
  }
  const std::string_view header(kHeader);
  if (block.substr(0, header.size()) != header) {
    return absl::InvalidArgumentError("grubenv: no '# GRUB Environment Block' header");
  }
  Env env;
  size_t i = header.size();
  while (i < block.size()) {
    if (block[i] == '#') {  // the padding (or a comment line)
      const size_t nl = block.find('\n', i);
      if (nl == std::string_view::npos) break;
      i = nl + 1;
      continue;
    }
    // NAME=VALUE up to an unescaped newline.
    std::string line;
    bool ended = false;
    for (; i < block.size(); ++i) {
      const char c = block[i];
      if (c == '\\' && i + 1 < block.size()) {
        line += block[++i];
        continue;
      }
      if (c == '\n') {
        ++i;
        ended = true;
        break;
      }
      line += c;
    }
    if (!ended) return absl::InvalidArgumentError("grubenv: a line runs into the block's end");
    const size_t eq = line.find('=');
    if (eq == std::string::npos || eq == 0) {
      return absl::InvalidArgumentError(
          absl::StrFormat("grubenv: '%s' is not NAME=VALUE", line.substr(0, 40)));
    }
    env.vars[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return env;
}

absl::StatusOr<std::string> Render(const Env& env) {
  std::string out = kHeader;
  for (const auto& [k, v] : env.vars) {
    for (char c : k) {
      if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_')) {
        return absl::InvalidArgumentError(absl::StrFormat("grubenv: bad name '%s'", k));
      }
    }
    if (k.empty()) return absl::InvalidArgumentError("grubenv: an empty name");
    out += k + "=";
    for (char c : v) {
      if (c == '\\' || c == '\n') out += '\\';
      out += c;
    }
    out += '\n';
  }
  if (out.size() > kSector) {
    return absl::InvalidArgumentError(
        absl::StrFormat("grubenv: %d bytes of variables; edgevisor keeps them within one "
                        "sector (%d)",
                        out.size(), kSector));
  }
  out.append(kBlockSize - out.size(), '#');
  return out;
}

AbState ReadAb(const Env& env) {
  AbState s;
  s.slot = env.Get("slot") == "B" ? 'B' : 'A';  // grub.cfg: anything but B is A
  const std::string n = env.Get("next_slot");
  if (n == "A" || n == "B") s.next_slot = n[0];
  int tries = 0;
  if (absl::SimpleAtoi(env.Get("next_tries"), &tries)) s.next_tries = tries;
  return s;
}

Env WithAb(Env env, const AbState& s) {
  env.vars["slot"] = std::string(1, s.slot);
  env.vars.erase("next_slot");
  env.vars.erase("next_tries");
  if (s.next_slot != 0) {
    env.vars["next_slot"] = std::string(1, s.next_slot);
    env.vars["next_tries"] = std::to_string(s.next_tries < 0 ? 0 : s.next_tries);
  }
  return env;
}

}  // namespace edgevisor::appliance::grubenv
