#include "src/vmm/snapshot/vm_state.h"

#include <algorithm>
#include <cstring>
#include <type_traits>

#include "absl/strings/str_format.h"
#include "src/base/errors.h"
#include "src/base/json_fields.h"
#include "src/vmm/config/fc_config.h"

namespace edgevisor::snapshot {
namespace {

using json_fields::Bad;
using json_fields::CheckObject;
using json_fields::Field;
using json_fields::GetBool;
using json_fields::GetString;
using json_fields::GetUint;

// KVM's structures travel as CBOR byte strings of exactly their size.
template <typename T>
Json Blob(const T& v) {
  static_assert(std::is_trivially_copyable_v<T>);
  const auto* p = reinterpret_cast<const uint8_t*>(&v);
  return Json::binary(std::vector<uint8_t>(p, p + sizeof(T)));
}
template <typename T>
Json BlobArray(const std::vector<T>& v) {
  static_assert(std::is_trivially_copyable_v<T>);
  const auto* p = reinterpret_cast<const uint8_t*>(v.data());
  return Json::binary(std::vector<uint8_t>(p, p + v.size() * sizeof(T)));
}

absl::StatusOr<const std::vector<uint8_t>*> GetBinary(const Json& o, const std::string& where,
                                                      const std::string& key) {
  if (!o.contains(key)) return Bad(Field(where, key), "missing required field");
  if (!o[key].is_binary()) return Bad(Field(where, key), "must be a binary string");
  return &o[key].get_binary();
}

template <typename T>
absl::Status GetBlob(const Json& o, const std::string& where, const std::string& key, T* out) {
  EV_ASSIGN_OR_RETURN(const std::vector<uint8_t>* b, GetBinary(o, where, key));
  if (b->size() != sizeof(T)) {
    return Bad(Field(where, key), absl::StrFormat("must be a %d-byte binary", sizeof(T)));
  }
  std::memcpy(out, b->data(), sizeof(T));
  return absl::OkStatus();
}

template <typename T>
absl::Status GetBlobArray(const Json& o, const std::string& where, const std::string& key,
                          size_t max_count, std::vector<T>* out) {
  EV_ASSIGN_OR_RETURN(const std::vector<uint8_t>* b, GetBinary(o, where, key));
  if (b->size() % sizeof(T) != 0 || b->size() / sizeof(T) > max_count) {
    return Bad(Field(where, key),
               absl::StrFormat("must hold at most %d entries of %d bytes", max_count, sizeof(T)));
  }
  out->resize(b->size() / sizeof(T));
  if (!b->empty()) std::memcpy(out->data(), b->data(), b->size());
  return absl::OkStatus();
}

const char* EngineName(DriveConfig::Engine e) {
  switch (e) {
    case DriveConfig::Engine::kUring:
      return "uring";
    case DriveConfig::Engine::kSync:
      return "sync";
    case DriveConfig::Engine::kAuto:
      break;
  }
  return "auto";
}

std::string MacText(const MacAddress& m) {
  return absl::StrFormat("%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
}

Json ConfigJson(const VmConfig& c) {
  Json drives = Json::array();
  for (const DriveConfig& d : c.drives) {
    Json dj = {{"id", d.id},         {"path", d.path},     {"read_only", d.read_only},
               {"direct", d.direct}, {"queues", d.queues}, {"engine", EngineName(d.engine)}};
    if (d.rate_limiter.limits()) dj["rate_limiter"] = RateLimiterJson(d.rate_limiter);
    drives.push_back(std::move(dj));
  }
  Json nets = Json::array();
  for (const NetConfig& n : c.nets) {
    Json nj = {{"id", n.id}, {"tap", n.tap}, {"mac", MacText(n.mac)}, {"queues", n.queues}};
    if (n.rx_rate_limiter.limits()) nj["rx_rate_limiter"] = RateLimiterJson(n.rx_rate_limiter);
    if (n.tx_rate_limiter.limits()) nj["tx_rate_limiter"] = RateLimiterJson(n.tx_rate_limiter);
    nets.push_back(std::move(nj));
  }
  // Unsigned, as Parse reads them (CBOR would store a non-negative int unsigned anyway).
  Json out = {{"vcpus", static_cast<uint64_t>(c.machine.vcpus)},
              {"mem_mib", c.machine.mem_mib},
              {"gic", static_cast<uint64_t>(c.machine.gic)},
              {"track_dirty_pages", c.machine.track_dirty_pages},
              // The aarch64 vCPU features the guest got (none on x86_64).
              {"arm64",
               {{"pmu", c.machine.arm64.pmu},
                {"sve", c.machine.arm64.sve},
                {"ptrauth", c.machine.arm64.ptrauth}}},
              {"debug_exit", c.debug_exit},
              {"reboot_exit_code", static_cast<uint64_t>(c.reboot_exit_code)},
              {"drives", std::move(drives)},
              {"nets", std::move(nets)}};
  // The entropy device in Firecracker's shape (its one field, the rate limiter).
  if (c.entropy) out["entropy"] = {{"rate_limiter", RateLimiterJson(c.entropy->rate_limiter)}};
  // The balloon in Firecracker's shape, with the target it has now.
  if (c.balloon) out["balloon"] = BalloonJson(*c.balloon);
  if (c.vsock) out["vsock"] = VsockJson(*c.vsock);
  // The metadata service's configuration (its data store is the API's: not in the snapshot).
  if (c.mmds) out["mmds"] = MmdsConfigJson(*c.mmds);
  return out;
}

absl::StatusOr<DriveConfig> ParseDrive(const Json& j, const std::string& where) {
  EV_RETURN_IF_ERROR(CheckObject(
      j, where, {"id", "path", "read_only", "direct", "queues", "engine", "rate_limiter"}));
  DriveConfig d;
  EV_ASSIGN_OR_RETURN(d.id, GetString(j, where, "id", true));
  EV_RETURN_IF_ERROR(CheckIdLength(d.id, Field(where, "id")));
  EV_ASSIGN_OR_RETURN(d.path, GetString(j, where, "path", true));
  if (d.path.empty()) return Bad(Field(where, "path"), "must not be empty");
  EV_ASSIGN_OR_RETURN(d.read_only, GetBool(j, where, "read_only", true, false));
  EV_ASSIGN_OR_RETURN(d.direct, GetBool(j, where, "direct", true, false));
  EV_ASSIGN_OR_RETURN(uint64_t queues, GetUint(j, where, "queues", 1, 16));
  d.queues = static_cast<uint16_t>(queues);
  EV_ASSIGN_OR_RETURN(std::string engine, GetString(j, where, "engine", true));
  if (engine == "uring") {
    d.engine = DriveConfig::Engine::kUring;
  } else if (engine == "sync") {
    d.engine = DriveConfig::Engine::kSync;
  } else if (engine != "auto") {
    return Bad(Field(where, "engine"), "must be auto, uring or sync");
  }
  if (j.contains("rate_limiter")) {
    EV_ASSIGN_OR_RETURN(d.rate_limiter,
                        ParseRateLimiter(j["rate_limiter"], Field(where, "rate_limiter")));
  }
  return d;
}

absl::StatusOr<NetConfig> ParseNet(const Json& j, const std::string& where) {
  EV_RETURN_IF_ERROR(
      CheckObject(j, where, {"id", "tap", "mac", "queues", "rx_rate_limiter", "tx_rate_limiter"}));
  NetConfig n;
  EV_ASSIGN_OR_RETURN(n.id, GetString(j, where, "id", true));
  EV_ASSIGN_OR_RETURN(n.tap, GetString(j, where, "tap", true));
  if (n.tap.empty() || n.tap.size() > 15) {
    return Bad(Field(where, "tap"), "must be a TAP name of 1 to 15 characters");
  }
  EV_ASSIGN_OR_RETURN(std::string mac, GetString(j, where, "mac", true));
  auto parsed = ParseMac(mac);
  if (!parsed.ok()) return Bad(Field(where, "mac"), std::string(parsed.status().message()));
  n.mac = *parsed;
  EV_ASSIGN_OR_RETURN(uint64_t queues, GetUint(j, where, "queues", 1, 16));
  n.queues = static_cast<uint16_t>(queues);
  for (const char* key : {"rx_rate_limiter", "tx_rate_limiter"}) {
    if (!j.contains(key)) continue;
    EV_ASSIGN_OR_RETURN(RateLimiterConfig r, ParseRateLimiter(j[key], Field(where, key)));
    (std::string(key) == "rx_rate_limiter" ? n.rx_rate_limiter : n.tx_rate_limiter) = r;
  }
  return n;
}

absl::StatusOr<VmConfig> ParseConfig(const Json& j) {
  const std::string where = "config";
  EV_RETURN_IF_ERROR(
      CheckObject(j, where,
                  {"vcpus", "mem_mib", "gic", "track_dirty_pages", "arm64", "debug_exit",
                   "reboot_exit_code", "drives", "nets", "entropy", "balloon", "vsock", "mmds"}));
  VmConfig c;
  EV_ASSIGN_OR_RETURN(uint64_t vcpus, GetUint(j, where, "vcpus", 1, 256));
  EV_ASSIGN_OR_RETURN(c.machine.mem_mib, GetUint(j, where, "mem_mib", 1, uint64_t{1} << 24));
  EV_ASSIGN_OR_RETURN(uint64_t gic, GetUint(j, where, "gic", 0, 3));
  // A snapshot from before the aarch64 vCPU features had none of them.
  c.machine.arm64 = {.pmu = false, .sve = false, .ptrauth = false};
  if (j.contains("arm64")) {
    const std::string w = Field(where, "arm64");
    EV_RETURN_IF_ERROR(CheckObject(j["arm64"], w, {"pmu", "sve", "ptrauth"}));
    EV_ASSIGN_OR_RETURN(c.machine.arm64.pmu, GetBool(j["arm64"], w, "pmu", true, false));
    EV_ASSIGN_OR_RETURN(c.machine.arm64.sve, GetBool(j["arm64"], w, "sve", true, false));
    EV_ASSIGN_OR_RETURN(c.machine.arm64.ptrauth, GetBool(j["arm64"], w, "ptrauth", true, false));
  }
  EV_ASSIGN_OR_RETURN(c.machine.track_dirty_pages,
                      GetBool(j, where, "track_dirty_pages", false, false));
  EV_ASSIGN_OR_RETURN(c.debug_exit, GetBool(j, where, "debug_exit", true, false));
  EV_ASSIGN_OR_RETURN(uint64_t reboot, GetUint(j, where, "reboot_exit_code", 0, 255));
  c.machine.vcpus = static_cast<int>(vcpus);
  c.machine.gic = static_cast<int>(gic);
  c.reboot_exit_code = static_cast<int>(reboot);
  for (const char* key : {"drives", "nets"}) {
    if (!j.contains(key) || !j[key].is_array() || j[key].size() > kMaxVirtioDevices) {
      return Bad(Field(where, key),
                 absl::StrFormat("must be an array of at most %d devices", kMaxVirtioDevices));
    }
  }
  for (size_t i = 0; i < j["drives"].size(); ++i) {
    EV_ASSIGN_OR_RETURN(DriveConfig d,
                        ParseDrive(j["drives"][i], absl::StrFormat("config.drives[%d]", i)));
    c.drives.push_back(std::move(d));
  }
  for (size_t i = 0; i < j["nets"].size(); ++i) {
    EV_ASSIGN_OR_RETURN(NetConfig n, ParseNet(j["nets"][i], absl::StrFormat("config.nets[%d]", i)));
    c.nets.push_back(std::move(n));
  }
  if (j.contains("entropy")) {
    EV_ASSIGN_OR_RETURN(c.entropy, ParseEntropy(j["entropy"], "config.entropy"));
  }
  if (j.contains("balloon")) {
    EV_ASSIGN_OR_RETURN(c.balloon, ParseBalloon(j["balloon"], "config.balloon"));
    EV_RETURN_IF_ERROR(
        CheckBalloonFits(c.balloon->amount_mib, c.machine.mem_mib, "config.balloon.amount_mib"));
  }
  if (j.contains("vsock")) {
    EV_ASSIGN_OR_RETURN(c.vsock, ParseVsock(j["vsock"], "config.vsock"));
  }
  if (j.contains("mmds")) {
    std::vector<std::string> ids;
    for (const NetConfig& n : c.nets) ids.push_back(n.id);
    EV_ASSIGN_OR_RETURN(c.mmds, ParseMmdsConfig(j["mmds"], "config.mmds", &ids));
  }
  if (VirtioDeviceCount(c) > kMaxVirtioDevices) {
    return Bad(where, absl::StrFormat("more than %d virtio devices", kMaxVirtioDevices));
  }
  return c;
}

#if defined(__x86_64__)
constexpr size_t kMaxCpuidEntries = 256;
constexpr size_t kMaxMsrs = 1024;
constexpr size_t kMaxXsaveBytes = 64 << 10;

Json VcpuJson(const VcpuState& v) {
  return {{"cpuid", BlobArray(v.cpuid)},
          {"mp_state", Blob(v.mp_state)},
          {"regs", Blob(v.regs)},
          {"sregs", Blob(v.sregs)},
          {"xsave", Json::binary(v.xsave)},
          {"xcrs", Blob(v.xcrs)},
          {"lapic", Blob(v.lapic)},
          {"msrs", BlobArray(v.msrs)},
          {"events", Blob(v.events)},
          {"debugregs", Blob(v.debugregs)},
          {"tsc_khz", v.tsc_khz}};
}

absl::StatusOr<VcpuState> ParseVcpu(const Json& j, const std::string& where) {
  EV_RETURN_IF_ERROR(CheckObject(j, where,
                                 {"cpuid", "mp_state", "regs", "sregs", "xsave", "xcrs", "lapic",
                                  "msrs", "events", "debugregs", "tsc_khz"}));
  VcpuState v;
  EV_RETURN_IF_ERROR(GetBlobArray(j, where, "cpuid", kMaxCpuidEntries, &v.cpuid));
  if (v.cpuid.empty()) return Bad(Field(where, "cpuid"), "must not be empty");
  EV_RETURN_IF_ERROR(GetBlob(j, where, "mp_state", &v.mp_state));
  EV_RETURN_IF_ERROR(GetBlob(j, where, "regs", &v.regs));
  EV_RETURN_IF_ERROR(GetBlob(j, where, "sregs", &v.sregs));
  EV_ASSIGN_OR_RETURN(const std::vector<uint8_t>* xsave, GetBinary(j, where, "xsave"));
  if (xsave->size() < 4096 || xsave->size() > kMaxXsaveBytes || xsave->size() % 4 != 0) {
    return Bad(Field(where, "xsave"),
               absl::StrFormat("must be 4096 to %d bytes, a multiple of 4", kMaxXsaveBytes));
  }
  v.xsave = *xsave;
  EV_RETURN_IF_ERROR(GetBlob(j, where, "xcrs", &v.xcrs));
  EV_RETURN_IF_ERROR(GetBlob(j, where, "lapic", &v.lapic));
  EV_RETURN_IF_ERROR(GetBlobArray(j, where, "msrs", kMaxMsrs, &v.msrs));
  EV_RETURN_IF_ERROR(GetBlob(j, where, "events", &v.events));
  EV_RETURN_IF_ERROR(GetBlob(j, where, "debugregs", &v.debugregs));
  EV_ASSIGN_OR_RETURN(uint64_t khz, GetUint(j, where, "tsc_khz", 0, 0xffffffffu));
  v.tsc_khz = static_cast<uint32_t>(khz);
  return v;
}

Json IrqchipJson(const Vm::IrqchipState& s) {
  return {{"pic_master", Blob(s.pic_master)},
          {"pic_slave", Blob(s.pic_slave)},
          {"ioapic", Blob(s.ioapic)},
          {"pit", Blob(s.pit)},
          {"clock", Blob(s.clock)}};
}

absl::StatusOr<Vm::IrqchipState> ParseIrqchip(const Json& j) {
  const std::string where = "irqchip";
  EV_RETURN_IF_ERROR(CheckObject(j, where, {"pic_master", "pic_slave", "ioapic", "pit", "clock"}));
  Vm::IrqchipState s;
  EV_RETURN_IF_ERROR(GetBlob(j, where, "pic_master", &s.pic_master));
  EV_RETURN_IF_ERROR(GetBlob(j, where, "pic_slave", &s.pic_slave));
  EV_RETURN_IF_ERROR(GetBlob(j, where, "ioapic", &s.ioapic));
  EV_RETURN_IF_ERROR(GetBlob(j, where, "pit", &s.pit));
  EV_RETURN_IF_ERROR(GetBlob(j, where, "clock", &s.clock));
  // The chip ids select what KVM_SET_IRQCHIP writes: they must be the three chips, in order.
  if (s.pic_master.chip_id != KVM_IRQCHIP_PIC_MASTER ||
      s.pic_slave.chip_id != KVM_IRQCHIP_PIC_SLAVE || s.ioapic.chip_id != KVM_IRQCHIP_IOAPIC) {
    return Bad(where, "the chip ids are not PIC master, PIC slave and IOAPIC");
  }
  return s;
}
#elif defined(__aarch64__)
constexpr size_t kMaxRegs = 4096;
constexpr size_t kMaxGicAttrs = 1 << 16;

Json VcpuJson(const VcpuState& v) {
  return {{"mp_state", Blob(v.mp_state)},
          {"reg_ids", BlobArray(v.reg_ids)},
          {"reg_values", Json::binary(v.reg_values)},
          {"events", Blob(v.events)}};
}

absl::StatusOr<VcpuState> ParseVcpu(const Json& j, const std::string& where) {
  EV_RETURN_IF_ERROR(CheckObject(j, where, {"mp_state", "reg_ids", "reg_values", "events"}));
  VcpuState v;
  EV_RETURN_IF_ERROR(GetBlob(j, where, "mp_state", &v.mp_state));
  EV_RETURN_IF_ERROR(GetBlobArray(j, where, "reg_ids", kMaxRegs, &v.reg_ids));
  if (v.reg_ids.empty()) return Bad(Field(where, "reg_ids"), "must not be empty");
  size_t total = 0;
  for (size_t i = 0; i < v.reg_ids.size(); ++i) {
    const uint64_t id = v.reg_ids[i];
    if ((id & KVM_REG_ARCH_MASK) != KVM_REG_ARM64 || OneRegSize(id) > 256) {
      return Bad(
          Field(where, "reg_ids"),
          absl::StrFormat("entry %d (0x%x) is not an arm64 register of at most 2048 bits", i, id));
    }
    total += OneRegSize(id);
  }
  EV_ASSIGN_OR_RETURN(const std::vector<uint8_t>* values, GetBinary(j, where, "reg_values"));
  if (values->size() != total) {
    return Bad(Field(where, "reg_values"),
               absl::StrFormat("must be %d bytes (the sizes reg_ids name)", total));
  }
  v.reg_values = *values;
  EV_RETURN_IF_ERROR(GetBlob(j, where, "events", &v.events));
  return v;
}

// Each attribute in a group this version's vGIC (or the ITS) has, its value in that group's
// width: KVM checks the offsets themselves.
absl::Status CheckGicAttrs(const std::vector<GicAttr>& attrs, const std::string& field,
                           const std::vector<uint64_t>& groups) {
  for (size_t i = 0; i < attrs.size(); ++i) {
    const GicAttr& a = attrs[i];
    if (std::find(groups.begin(), groups.end(), a.group) == groups.end()) {
      return Bad(field,
                 absl::StrFormat("entry %d: group %d is not one this device has", i, a.group));
    }
    if (GicAttrBits(a.group) == 32 && a.value > 0xffffffffu) {
      return Bad(field, absl::StrFormat("entry %d: 0x%x is wider than 32 bits", i, a.value));
    }
  }
  return absl::OkStatus();
}

Json GicJson(const GicState& g) {
  return {{"version", g.version},
          {"regs", BlobArray(g.regs)},
          {"its", g.its},
          {"its_regs", BlobArray(g.its_regs)},
          {"its_ctlr", g.its_ctlr}};
}

absl::StatusOr<GicState> ParseGic(const Json& j, int config_gic) {
  const std::string where = "gic";
  EV_RETURN_IF_ERROR(CheckObject(j, where, {"version", "regs", "its", "its_regs", "its_ctlr"}));
  GicState g;
  EV_ASSIGN_OR_RETURN(uint64_t version, GetUint(j, where, "version", 2, 3));
  g.version = static_cast<uint32_t>(version);
  if (config_gic != 0 && static_cast<uint32_t>(config_gic) != g.version) {
    return Bad(Field(where, "version"),
               absl::StrFormat("%d, but config.gic is %d", g.version, config_gic));
  }
  EV_RETURN_IF_ERROR(GetBlobArray(j, where, "regs", kMaxGicAttrs, &g.regs));
  if (g.regs.empty()) return Bad(Field(where, "regs"), "must not be empty");
  const std::vector<uint64_t> groups =
      g.version == 3
          ? std::vector<uint64_t>{KVM_DEV_ARM_VGIC_GRP_DIST_REGS, KVM_DEV_ARM_VGIC_GRP_REDIST_REGS,
                                  KVM_DEV_ARM_VGIC_GRP_CPU_SYSREGS, KVM_DEV_ARM_VGIC_GRP_LEVEL_INFO}
          : std::vector<uint64_t>{KVM_DEV_ARM_VGIC_GRP_DIST_REGS, KVM_DEV_ARM_VGIC_GRP_CPU_REGS};
  EV_RETURN_IF_ERROR(CheckGicAttrs(g.regs, Field(where, "regs"), groups));
  EV_ASSIGN_OR_RETURN(g.its, GetBool(j, where, "its", true, false));
  if (g.its && g.version != 3) return Bad(Field(where, "its"), "a GICv2 has no ITS");
  EV_RETURN_IF_ERROR(GetBlobArray(j, where, "its_regs", 64, &g.its_regs));
  if (g.its == g.its_regs.empty()) {
    return Bad(Field(where, "its_regs"), g.its ? "must not be empty" : "must be empty without its");
  }
  EV_RETURN_IF_ERROR(
      CheckGicAttrs(g.its_regs, Field(where, "its_regs"), {KVM_DEV_ARM_VGIC_GRP_ITS_REGS}));
  EV_ASSIGN_OR_RETURN(g.its_ctlr, GetUint(j, where, "its_ctlr", 0, ~uint64_t{0}));
  return g;
}
#endif

}  // namespace

Json ToJson(const VmState& s) {
  Json j = {{"config", ConfigJson(s.config)},
            {"mem_bytes", s.mem_bytes},
            {"uart", s.uart},
            {"i8042", s.i8042},
            {"rtc", s.rtc},
            {"virtio", s.virtio}};
  Json vcpus = Json::array();
  for (const VcpuState& v : s.vcpus) vcpus.push_back(VcpuJson(v));
  j["vcpus"] = std::move(vcpus);
#if defined(__x86_64__)
  j["irqchip"] = IrqchipJson(s.irqchip);
#elif defined(__aarch64__)
  j["gic"] = GicJson(s.gic);
#endif
  return j;
}

absl::StatusOr<VmState> Parse(const Json& j) {
  EV_RETURN_IF_ERROR(CheckObject(
      j, "", {"config", "mem_bytes", "uart", "i8042", "rtc", "virtio", "vcpus", "irqchip", "gic"}));
  VmState s;
  if (!j.contains("config")) return Bad("config", "missing required field");
  EV_ASSIGN_OR_RETURN(s.config, ParseConfig(j["config"]));
  EV_ASSIGN_OR_RETURN(s.mem_bytes, GetUint(j, "", "mem_bytes", 1, uint64_t{1} << 44));
  if (s.mem_bytes != s.config.machine.mem_mib << 20) {
    return Bad("mem_bytes", absl::StrFormat("%d does not match config.mem_mib %d", s.mem_bytes,
                                            s.config.machine.mem_mib));
  }
  for (const char* key : {"uart", "i8042"}) {
    if (!j.contains(key)) return Bad(key, "missing required field");
  }
  s.uart = j["uart"];
  s.i8042 = j["i8042"];
  if (j.contains("rtc")) s.rtc = j["rtc"];
  const size_t devices = VirtioDeviceCount(s.config);
  if (!j.contains("virtio") || !j["virtio"].is_array() || j["virtio"].size() != devices) {
    return Bad("virtio", absl::StrFormat("must be an array of %d device states (one per drive, "
                                         "network interface, entropy device and balloon)",
                                         devices));
  }
  for (const Json& d : j["virtio"]) s.virtio.push_back(d);
  if (!j.contains("vcpus") || !j["vcpus"].is_array() ||
      j["vcpus"].size() != static_cast<size_t>(s.config.machine.vcpus)) {
    return Bad("vcpus", absl::StrFormat("must be an array of %d vCPU states (config.vcpus)",
                                        s.config.machine.vcpus));
  }
  for (size_t i = 0; i < j["vcpus"].size(); ++i) {
    EV_ASSIGN_OR_RETURN(VcpuState v, ParseVcpu(j["vcpus"][i], absl::StrFormat("vcpus[%d]", i)));
    s.vcpus.push_back(std::move(v));
  }
#if defined(__x86_64__)
  if (!j.contains("irqchip")) return Bad("irqchip", "missing required field");
  EV_ASSIGN_OR_RETURN(s.irqchip, ParseIrqchip(j["irqchip"]));
#elif defined(__aarch64__)
  if (!j.contains("gic")) return Bad("gic", "missing required field");
  EV_ASSIGN_OR_RETURN(s.gic, ParseGic(j["gic"], s.config.machine.gic));
#endif
  return s;
}

#if defined(__x86_64__)
std::vector<std::string> MissingCpuFeatures(const std::vector<kvm_cpuid_entry2>& guest,
                                            const std::vector<kvm_cpuid_entry2>& host) {
  struct Word {
    uint32_t function, index;
    uint32_t kvm_cpuid_entry2::*reg;
    const char* name;
    uint32_t ours;  // bits edgevisor sets itself (FixupCpuid)
  };
  static const Word kWords[] = {
      {0x1, 0, &kvm_cpuid_entry2::ecx, "ecx", 1u << 31},  // hypervisor
      {0x1, 0, &kvm_cpuid_entry2::edx, "edx", 1u << 28},  // HTT
      {0x7, 0, &kvm_cpuid_entry2::ebx, "ebx", 0},
      {0x7, 0, &kvm_cpuid_entry2::ecx, "ecx", 0},
      {0x7, 0, &kvm_cpuid_entry2::edx, "edx", 0},
      {0x7, 1, &kvm_cpuid_entry2::eax, "eax", 0},
      {0xd, 0, &kvm_cpuid_entry2::eax, "eax", 0},  // XSAVE components
      {0xd, 1, &kvm_cpuid_entry2::eax, "eax", 0},
      {0x80000001, 0, &kvm_cpuid_entry2::ecx, "ecx", 0},
      {0x80000001, 0, &kvm_cpuid_entry2::edx, "edx", 0},
  };
  auto find = [](const std::vector<kvm_cpuid_entry2>& v, uint32_t f,
                 uint32_t i) -> const kvm_cpuid_entry2* {
    for (const kvm_cpuid_entry2& e : v) {
      if (e.function == f && e.index == i) return &e;
    }
    return nullptr;
  };
  std::vector<std::string> missing;
  for (const Word& w : kWords) {
    const kvm_cpuid_entry2* g = find(guest, w.function, w.index);
    if (g == nullptr) continue;
    const kvm_cpuid_entry2* h = find(host, w.function, w.index);
    const uint32_t have = h ? h->*w.reg : 0;
    const uint32_t lack = (g->*w.reg) & ~have & ~w.ours;
    if (lack != 0) {
      missing.push_back(
          absl::StrFormat("leaf 0x%x.%d %s: 0x%08x", w.function, w.index, w.name, lack));
    }
  }
  return missing;
}
#endif

}  // namespace edgevisor::snapshot
