#include "src/appliance/config.h"

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "src/base/errors.h"
#include "src/base/json_fields.h"
#include "src/vmm/config/fc_config.h"

namespace edgevisor::appliance {
namespace {

using json_fields::Bad;
using json_fields::CheckObject;
using json_fields::Field;
using json_fields::GetBool;
using json_fields::GetString;
using json_fields::GetUint;
using Json = nlohmann::json;

std::string Index(const std::string& where, size_t i) {
  return absl::StrFormat("%s[%d]", where, i);
}

// A host name: 1-63 letters, digits and '-', not starting or ending with '-'.
absl::Status CheckHostname(const std::string& v, const std::string& field) {
  if (v.empty() || v.size() > 63) return Bad(field, "must be 1 to 63 characters");
  for (char c : v) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-') {
      return Bad(field, absl::StrFormat("'%s': only letters, digits and '-'", v));
    }
  }
  if (v.front() == '-' || v.back() == '-') return Bad(field, "may not start or end with '-'");
  return absl::OkStatus();
}

// A Linux interface name: 1-15 characters, none of them '/', ':' or white space.
absl::Status CheckIfname(const std::string& v, const std::string& field) {
  if (v.empty() || v.size() > 15) return Bad(field, "must be 1 to 15 characters");
  for (char c : v) {
    if (c == '/' || c == ':' || absl::ascii_isspace(static_cast<unsigned char>(c)) ||
        !absl::ascii_isprint(static_cast<unsigned char>(c))) {
      return Bad(field, absl::StrFormat("'%s' is not an interface name", v));
    }
  }
  return absl::OkStatus();
}

bool IsIpv4(const std::string& v) {
  std::vector<std::string> parts = absl::StrSplit(v, '.');
  if (parts.size() != 4) return false;
  for (const std::string& p : parts) {
    int n = 0;
    if (p.empty() || p.size() > 3 || !absl::SimpleAtoi(p, &n) || n < 0 || n > 255) return false;
  }
  return true;
}

absl::Status CheckCidr(const std::string& v, const std::string& field) {
  std::vector<std::string> parts = absl::StrSplit(v, '/');
  int len = 0;
  if (parts.size() != 2 || !IsIpv4(parts[0]) || !absl::SimpleAtoi(parts[1], &len) || len < 1 ||
      len > 32) {
    return Bad(field,
               absl::StrFormat("'%s' is not an IPv4 address with a prefix (a.b.c.d/len)", v));
  }
  return absl::OkStatus();
}

// A VM name: it becomes file names and the demo's TAP name (ev-<name>), so 1-12 characters of
// lower-case letters, digits and '-'.
absl::Status CheckVmName(const std::string& v, const std::string& field) {
  if (v.empty() || v.size() > 12) return Bad(field, "must be 1 to 12 characters");
  for (char c : v) {
    if (!(absl::ascii_islower(static_cast<unsigned char>(c)) ||
          absl::ascii_isdigit(static_cast<unsigned char>(c)) || c == '-')) {
      return Bad(field, absl::StrFormat("'%s': only a-z, 0-9 and '-'", v));
    }
  }
  return absl::OkStatus();
}

// A file name on the data partition: no directories, no dot files.
absl::Status CheckFileName(const std::string& v, const std::string& field) {
  if (v.empty() || v.size() > 64 || v[0] == '.') return Bad(field, "is not a plain file name");
  for (char c : v) {
    if (!(absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-')) {
      return Bad(field, absl::StrFormat("'%s': only letters, digits, '.', '_' and '-'", v));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<Interface> ParseInterface(const Json& j, const std::string& where) {
  EV_RETURN_IF_ERROR(CheckObject(j, where, {"name", "dhcp", "address", "gateway"}));
  Interface i;
  EV_ASSIGN_OR_RETURN(i.name, GetString(j, where, "name", true));
  EV_RETURN_IF_ERROR(CheckIfname(i.name, Field(where, "name")));
  EV_ASSIGN_OR_RETURN(i.dhcp, GetBool(j, where, "dhcp", false, false));
  EV_ASSIGN_OR_RETURN(i.address, GetString(j, where, "address", false));
  EV_ASSIGN_OR_RETURN(i.gateway, GetString(j, where, "gateway", false));
  if (i.dhcp == !i.address.empty()) {
    return Bad(where, "give either \"dhcp\": true or an \"address\"");
  }
  if (!i.address.empty()) EV_RETURN_IF_ERROR(CheckCidr(i.address, Field(where, "address")));
  if (!i.gateway.empty() && !IsIpv4(i.gateway)) {
    return Bad(Field(where, "gateway"), absl::StrFormat("'%s' is not an IPv4 address", i.gateway));
  }
  if (i.dhcp && !i.gateway.empty()) return Bad(Field(where, "gateway"), "comes from DHCP");
  return i;
}

absl::StatusOr<VmBridge> ParseBridge(const Json& j, const std::string& where) {
  EV_RETURN_IF_ERROR(CheckObject(j, where, {"name", "address", "uplink"}));
  VmBridge b;
  EV_ASSIGN_OR_RETURN(b.name, GetString(j, where, "name", true));
  EV_RETURN_IF_ERROR(CheckIfname(b.name, Field(where, "name")));
  EV_ASSIGN_OR_RETURN(b.address, GetString(j, where, "address", false));
  if (!b.address.empty()) EV_RETURN_IF_ERROR(CheckCidr(b.address, Field(where, "address")));
  EV_ASSIGN_OR_RETURN(b.uplink, GetString(j, where, "uplink", false));
  if (!b.uplink.empty()) EV_RETURN_IF_ERROR(CheckIfname(b.uplink, Field(where, "uplink")));
  return b;
}

absl::StatusOr<DemoVm> ParseDemo(const Json& j, const std::string& where) {
  EV_RETURN_IF_ERROR(CheckObject(j, where, {"vcpus", "mem_mib", "net", "cmdline"}));
  DemoVm d;
  if (j.contains("vcpus")) {
    EV_ASSIGN_OR_RETURN(const uint64_t v, GetUint(j, where, "vcpus", 1, 32));
    d.vcpus = static_cast<int>(v);
  }
  if (j.contains("mem_mib")) {
    EV_ASSIGN_OR_RETURN(const uint64_t v, GetUint(j, where, "mem_mib", 64, 65536));
    d.mem_mib = static_cast<int>(v);
  }
  EV_ASSIGN_OR_RETURN(d.net, GetBool(j, where, "net", false, false));
  EV_ASSIGN_OR_RETURN(d.cmdline, GetString(j, where, "cmdline", false));
  if (d.cmdline.size() > 1024) return Bad(Field(where, "cmdline"), "longer than 1024");
  return d;
}

absl::StatusOr<VmEntry> ParseVm(const Json& j, const std::string& where, Stage stage) {
  std::set<std::string> known = {"name", "restart", "config", "memory_max_mib", "cpu_max_percent"};
  if (stage == Stage::kBuild) known.insert({"demo", "files"});
  EV_RETURN_IF_ERROR(CheckObject(j, where, known));
  VmEntry v;
  EV_ASSIGN_OR_RETURN(v.name, GetString(j, where, "name", true));
  EV_RETURN_IF_ERROR(CheckVmName(v.name, Field(where, "name")));
  EV_ASSIGN_OR_RETURN(const std::string restart, GetString(j, where, "restart", false));
  if (restart == "always") {
    v.restart = Restart::kAlways;
  } else if (restart == "on-failure" || restart.empty()) {
    v.restart = Restart::kOnFailure;
  } else if (restart == "never") {
    v.restart = Restart::kNever;
  } else {
    return Bad(Field(where, "restart"),
               absl::StrFormat("'%s' is not one of always, on-failure, never", restart));
  }
  EV_ASSIGN_OR_RETURN(v.config, GetString(j, where, "config", stage == Stage::kRuntime));
  if (j.contains("memory_max_mib")) {
    EV_ASSIGN_OR_RETURN(const uint64_t mib, GetUint(j, where, "memory_max_mib", 32, 1 << 20));
    v.memory_max_mib = static_cast<int>(mib);
  }
  if (j.contains("cpu_max_percent")) {
    EV_ASSIGN_OR_RETURN(const uint64_t pct, GetUint(j, where, "cpu_max_percent", 1, 12800));
    v.cpu_max_percent = static_cast<int>(pct);
  }
  if (j.contains("demo")) {
    EV_ASSIGN_OR_RETURN(v.demo, ParseDemo(j["demo"], Field(where, "demo")));
  }
  if (stage == Stage::kBuild && v.config.empty() == !v.demo.has_value()) {
    return Bad(where, "give either \"demo\": {...} or a Firecracker \"config\" file");
  }
  if (!v.config.empty() && (v.config[0] == '/' || v.config.find("..") != std::string::npos) &&
      stage == Stage::kRuntime) {
    return Bad(Field(where, "config"), "must be a path inside the config partition");
  }
  if (j.contains("files")) {
    const std::string fw = Field(where, "files");
    if (!j["files"].is_object()) return Bad(fw, "must be an object (file name -> source path)");
    if (v.demo) return Bad(fw, "only for VMs with a \"config\"");
    for (const auto& [name, src] : j["files"].items()) {
      EV_RETURN_IF_ERROR(CheckFileName(name, Field(fw, name)));
      if (!src.is_string() || src.get<std::string>().empty()) {
        return Bad(Field(fw, name), "must be a source path");
      }
      v.files[name] = src.get<std::string>();
    }
  }
  return v;
}

absl::StatusOr<std::string> ReadText(const std::string& path, const std::string& field) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Bad(field, absl::StrFormat("cannot read %s", path));
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string Resolve(const std::string& base, const std::string& path) {
  return path.empty() || path[0] == '/' || base.empty() ? path : base + "/" + path;
}

// The bridge's address without its prefix, and a guest address in the same /24-or-larger net.
absl::StatusOr<std::pair<std::string, std::string>> DemoAddresses(const VmBridge& b, size_t index,
                                                                  const std::string& field) {
  std::vector<std::string> cidr = absl::StrSplit(b.address, '/');
  std::vector<std::string> octets = absl::StrSplit(cidr[0], '.');
  int last = 0;
  (void)absl::SimpleAtoi(octets[3], &last);
  const int guest = 100 + static_cast<int>(index);
  if (guest == last) return Bad(field, "the demo's address would be the bridge's");
  return std::make_pair(
      cidr[0], absl::StrFormat("%s.%s.%s.%d/%s", octets[0], octets[1], octets[2], guest, cidr[1]));
}

absl::StatusOr<UpdateConfig> ParseUpdate(const Json& j) {
  EV_RETURN_IF_ERROR(
      CheckObject(j, "update", {"url", "check_interval_s", "trial_boots", "health_timeout_s"}));
  UpdateConfig u;
  EV_ASSIGN_OR_RETURN(u.url, GetString(j, "update", "url", false));
  if (!u.url.empty()) {
    const bool scheme = absl::StartsWith(u.url, "http://") || absl::StartsWith(u.url, "https://");
    if (!scheme || u.url.size() > 1024 ||
        !std::all_of(u.url.begin(), u.url.end(), [](char ch) { return ch > ' ' && ch < 127; })) {
      return Bad("update.url",
                 absl::StrFormat("'%s' is not an http:// or https:// URL", u.url.substr(0, 64)));
    }
  }
  auto num = [&](const char* key, uint64_t lo, uint64_t hi, int* out) -> absl::Status {
    if (!j.contains(key)) return absl::OkStatus();
    EV_ASSIGN_OR_RETURN(const uint64_t v, GetUint(j, "update", key, lo, hi));
    *out = static_cast<int>(v);
    return absl::OkStatus();
  };
  EV_RETURN_IF_ERROR(num("check_interval_s", 30, 604800, &u.check_interval_s));
  EV_RETURN_IF_ERROR(num("trial_boots", 1, 3, &u.trial_boots));
  EV_RETURN_IF_ERROR(num("health_timeout_s", 30, 3600, &u.health_timeout_s));
  return u;
}

}  // namespace

const char* RestartName(Restart r) {
  switch (r) {
    case Restart::kAlways:
      return "always";
    case Restart::kOnFailure:
      return "on-failure";
    case Restart::kNever:
      return "never";
  }
  return "?";
}

absl::StatusOr<ApplianceConfig> ParseApplianceConfig(const std::string& text, Stage stage) {
  Json j = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return absl::InvalidArgumentError("not valid JSON");
  std::set<std::string> known = {"name", "network", "vms", "update", "watchdog_s"};
  if (stage == Stage::kBuild) known.insert({"console", "kernel"});
  EV_RETURN_IF_ERROR(CheckObject(j, "", known));
  ApplianceConfig c;
  EV_ASSIGN_OR_RETURN(c.name, GetString(j, "", "name", true));
  EV_RETURN_IF_ERROR(CheckHostname(c.name, "name"));
  EV_ASSIGN_OR_RETURN(c.console, GetString(j, "", "console", false));
  for (char ch : c.console) {
    if (!(absl::ascii_isalnum(static_cast<unsigned char>(ch)) || ch == ',' || ch == '_')) {
      return Bad("console",
                 absl::StrFormat("'%s' is not a console (like ttyS0,115200)", c.console));
    }
  }
  EV_ASSIGN_OR_RETURN(const std::string kernel, GetString(j, "", "kernel", false));
  if (!kernel.empty()) c.kernel = kernel;
  // FLAVOUR[@RELEASE]: cloud or generic, of a Debian release (bookworm unless named).
  const std::vector<std::string> kparts = absl::StrSplit(c.kernel, absl::MaxSplits('@', 1));
  if (kparts[0] != "cloud" && kparts[0] != "generic") {
    return Bad("kernel", absl::StrFormat("'%s' is not cloud or generic", kparts[0]));
  }
  if (kparts.size() == 2 && (kparts[1].empty() || kparts[1].size() > 32 ||
                             !std::all_of(kparts[1].begin(), kparts[1].end(),
                                          [](char ch) { return ch >= 'a' && ch <= 'z'; }))) {
    return Bad("kernel", absl::StrFormat("release '%s' is not a Debian release name (like trixie)",
                                         kparts[1]));
  }
  if (j.contains("network")) {
    const Json& n = j["network"];
    EV_RETURN_IF_ERROR(CheckObject(n, "network", {"interfaces", "vm_bridge"}));
    if (n.contains("interfaces")) {
      if (!n["interfaces"].is_array()) return Bad("network.interfaces", "must be an array");
      std::set<std::string> names;
      for (size_t i = 0; i < n["interfaces"].size(); ++i) {
        const std::string where = Index("network.interfaces", i);
        EV_ASSIGN_OR_RETURN(Interface itf, ParseInterface(n["interfaces"][i], where));
        if (!names.insert(itf.name).second) {
          return Bad(Field(where, "name"), absl::StrFormat("'%s' is given twice", itf.name));
        }
        c.interfaces.push_back(std::move(itf));
      }
    }
    if (n.contains("vm_bridge")) {
      EV_ASSIGN_OR_RETURN(c.bridge, ParseBridge(n["vm_bridge"], "network.vm_bridge"));
    }
  }
  if (j.contains("update")) {
    EV_ASSIGN_OR_RETURN(c.update, ParseUpdate(j["update"]));
  }
  if (j.contains("watchdog_s")) {
    if (j["watchdog_s"] == 0) {
      c.watchdog_s = 0;
    } else {
      EV_ASSIGN_OR_RETURN(const uint64_t w, GetUint(j, "", "watchdog_s", 10, 600));
      c.watchdog_s = static_cast<int>(w);
    }
  }
  if (j.contains("vms")) {
    if (!j["vms"].is_array()) return Bad("vms", "must be an array");
    std::set<std::string> names;
    for (size_t i = 0; i < j["vms"].size(); ++i) {
      const std::string where = Index("vms", i);
      EV_ASSIGN_OR_RETURN(VmEntry v, ParseVm(j["vms"][i], where, stage));
      if (!names.insert(v.name).second) {
        return Bad(Field(where, "name"), absl::StrFormat("'%s' is given twice", v.name));
      }
      if (v.demo && v.demo->net && (!c.bridge || c.bridge->address.empty())) {
        return Bad(Field(Field(where, "demo"), "net"), "needs network.vm_bridge with an address");
      }
      c.vms.push_back(std::move(v));
    }
  }
  return c;
}

absl::StatusOr<RenderOutput> Render(const ApplianceConfig& cfg, const std::string& base_dir) {
  RenderOutput out;
  Json network = Json::object();
  Json interfaces = Json::array();
  for (const Interface& i : cfg.interfaces) {
    Json e = {{"name", i.name}};
    if (i.dhcp) e["dhcp"] = true;
    if (!i.address.empty()) e["address"] = i.address;
    if (!i.gateway.empty()) e["gateway"] = i.gateway;
    interfaces.push_back(e);
  }
  if (!interfaces.empty()) network["interfaces"] = interfaces;
  if (cfg.bridge) {
    Json b = {{"name", cfg.bridge->name}};
    if (!cfg.bridge->address.empty()) b["address"] = cfg.bridge->address;
    if (!cfg.bridge->uplink.empty()) b["uplink"] = cfg.bridge->uplink;
    network["vm_bridge"] = b;
  }
  Json vms = Json::array();
  for (size_t i = 0; i < cfg.vms.size(); ++i) {
    const VmEntry& v = cfg.vms[i];
    const std::string where = Index("vms", i);
    const std::string file = "vms/" + v.name + ".json";
    std::string text;
    if (v.demo) {
      std::string args = "console=ttyS0 reboot=k panic=1 quiet";
      Json fc = {
          {"boot-source", {{"kernel_image_path", kDemoKernel}, {"initrd_path", kDemoInitrd}}},
          {"machine-config", {{"vcpu_count", v.demo->vcpus}, {"mem_size_mib", v.demo->mem_mib}}},
          {"drives", Json::array()}};
      if (v.demo->net) {
        EV_ASSIGN_OR_RETURN(auto addrs, DemoAddresses(*cfg.bridge, i, Field(where, "demo")));
        args += absl::StrCat(" ev.ping=", addrs.first, " ev.ip=", addrs.second);
        fc["network-interfaces"] =
            Json::array({{{"iface_id", "eth0"}, {"host_dev_name", absl::StrCat("ev-", v.name)}}});
      }
      if (!v.demo->cmdline.empty()) args += " " + v.demo->cmdline;
      fc["boot-source"]["boot_args"] = args;
      text = fc.dump(2) + "\n";
    } else {
      EV_ASSIGN_OR_RETURN(text, ReadText(Resolve(base_dir, v.config), Field(where, "config")));
      for (const auto& [name, src] : v.files) {
        const std::string path = Resolve(base_dir, src);
        EV_RETURN_IF_ERROR(ReadText(path, Field(Field(where, "files"), name)).status());
        out.data_files.emplace_back(path, absl::StrCat("vms/", v.name, "/", name));
      }
    }
    // edgevisor's own parser: what the VMM will refuse at boot is refused now.
    auto parsed = ParseFirecrackerConfig(text);
    if (!parsed.ok()) {
      return Bad(Field(where, "config"), absl::StrCat(v.demo ? "(generated) " : v.config + ": ",
                                                      parsed.status().message()));
    }
    out.vm_configs[file] = text;
    Json entry = {{"name", v.name}, {"config", file}, {"restart", RestartName(v.restart)}};
    if (v.memory_max_mib) entry["memory_max_mib"] = *v.memory_max_mib;
    if (v.cpu_max_percent) entry["cpu_max_percent"] = *v.cpu_max_percent;
    vms.push_back(entry);
  }
  out.appliance = {{"name", cfg.name}, {"vms", vms}, {"watchdog_s", cfg.watchdog_s}};
  Json update = {{"check_interval_s", cfg.update.check_interval_s},
                 {"trial_boots", cfg.update.trial_boots},
                 {"health_timeout_s", cfg.update.health_timeout_s}};
  if (!cfg.update.url.empty()) update["url"] = cfg.update.url;
  out.appliance["update"] = update;
  if (!network.empty()) out.appliance["network"] = network;
  return out;
}

}  // namespace edgevisor::appliance
