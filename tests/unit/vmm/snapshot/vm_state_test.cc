// VmState's JSON form (src/vmm/snapshot/vm_state.cc): a state built by hand survives ToJson, the
// state file's CBOR and Parse; every malformed field is refused with an error that names it; and
// MissingCpuFeatures reports the guest's CPUID bits the host lacks.
#include "src/vmm/snapshot/vm_state.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_format.h"
#include "src/vmm/snapshot/file.h"

namespace edgevisor::snapshot {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::StartsWith;

#if defined(__x86_64__)
kvm_cpuid_entry2 Leaf(uint32_t function, uint32_t index, uint32_t eax, uint32_t ebx, uint32_t ecx,
                      uint32_t edx) {
  kvm_cpuid_entry2 e{};
  e.function = function;
  e.index = index;
  e.eax = eax;
  e.ebx = ebx;
  e.ecx = ecx;
  e.edx = edx;
  return e;
}

VcpuState ValidVcpu() {
  VcpuState v;
  v.cpuid = {Leaf(0, 0, 0xd, 0x756e6547, 0x6c65746e, 0x49656e69), Leaf(1, 0, 0x806c1, 0, 1, 2),
             Leaf(7, 0, 0, 0x20, 0, 0)};
  v.mp_state.mp_state = KVM_MP_STATE_RUNNABLE;
  v.regs.rip = 0x100000;
  v.regs.rsp = 0x8000;
  v.regs.rflags = 0x2;
  v.sregs.cr0 = 0x80050033;
  v.xsave.resize(4096);
  for (size_t i = 0; i < v.xsave.size(); ++i) v.xsave[i] = static_cast<uint8_t>(i * 7);
  v.xcrs.nr_xcrs = 1;
  v.xcrs.xcrs[0].value = 0x7;
  v.lapic.regs[0x20] = 0x01;
  v.msrs = {{0x10, 0, 123456789}, {0xc0000080, 0, 0xd01}};
  v.events.exception.nr = 3;
  v.debugregs.dr7 = 0x400;
  v.tsc_khz = 2995200;
  return v;
}
#elif defined(__aarch64__)
// X0 (core, 64-bit), V0 (core, 128-bit), CNTV_CTL_EL0 (the timer).
constexpr uint64_t kX0 = KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_CORE;
constexpr uint64_t kV0 = KVM_REG_ARM64 | KVM_REG_SIZE_U128 | KVM_REG_ARM_CORE | 0x44;

VcpuState ValidVcpu() {
  VcpuState v;
  v.mp_state.mp_state = KVM_MP_STATE_STOPPED;
  v.reg_ids = {kX0, kV0, KVM_REG_ARM_TIMER_CTL};
  v.reg_values.resize(8 + 16 + 8);
  for (size_t i = 0; i < v.reg_values.size(); ++i) v.reg_values[i] = static_cast<uint8_t>(i * 3);
  v.events.exception.serror_pending = 1;
  return v;
}
#endif

VmState Valid() {
  VmState s;
  s.config.machine.vcpus = 1;
  s.config.machine.mem_mib = 64;
  s.config.reboot_exit_code = 3;
  s.config.debug_exit = true;
  DriveConfig d;
  d.id = "rootfs";
  d.path = "/srv/rootfs.ext4";
  d.read_only = true;
  d.queues = 2;
  d.engine = DriveConfig::Engine::kSync;
  s.config.drives.push_back(d);
  NetConfig n;
  n.id = "eth0";
  n.tap = "tap0";
  n.mac = {0x06, 0xed, 0x9e, 0x00, 0x00, 0x01};
  s.config.nets.push_back(n);
  s.mem_bytes = uint64_t{64} << 20;
#if defined(__x86_64__)
  s.vcpus.push_back(ValidVcpu());
  s.irqchip.pic_master.chip_id = KVM_IRQCHIP_PIC_MASTER;
  s.irqchip.pic_slave.chip_id = KVM_IRQCHIP_PIC_SLAVE;
  s.irqchip.ioapic.chip_id = KVM_IRQCHIP_IOAPIC;
  s.irqchip.ioapic.chip.ioapic.base_address = 0xfec00000;
  s.irqchip.pit.channels[0].count = 0x1234;
  s.irqchip.clock.clock = 987654321;
#elif defined(__aarch64__)
  s.vcpus.push_back(ValidVcpu());
  s.gic.version = 3;
  s.gic.regs = {{KVM_DEV_ARM_VGIC_GRP_DIST_REGS, 0x0, 0x12},
                {KVM_DEV_ARM_VGIC_GRP_REDIST_REGS, 0x10100, 0xffff},
                {KVM_DEV_ARM_VGIC_GRP_CPU_SYSREGS, 0xc665, 0x8000000000000007},
                {KVM_DEV_ARM_VGIC_GRP_LEVEL_INFO, 32, 0x2}};
  s.gic.its = true;
  s.gic.its_regs = {{KVM_DEV_ARM_VGIC_GRP_ITS_REGS, 0x80, 0xb80000004002a000}};
  s.gic.its_ctlr = 1;
  s.rtc = {{"match", 7}};
#endif
  s.uart = {{"scr", 5}, {"rx", {1, 2}}};
  s.i8042 = {{"ctr", 1}};
  s.virtio = {Json::object(), Json::object()};
  return s;
}

// The JSON as Parse gets it from a state file: through CBOR, as Encode and Decode carry it.
Json ThroughCbor(const Json& j) { return Json::from_cbor(Json::to_cbor(j)); }

template <typename T>
bool SameBytes(const T& a, const T& b) {
  return std::memcmp(&a, &b, sizeof(T)) == 0;
}

TEST(VmStateTest, RoundTripThroughTheStateFile) {
  const VmState in = Valid();
  const std::string file = Encode(ToJson(in), "test");
  auto d = Decode(absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(file.data()), file.size()));
  ASSERT_TRUE(d.ok()) << d.status();
  auto out = Parse(d->state);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(ToJson(*out), ToJson(in));
}

TEST(VmStateTest, RoundTripKeepsEveryField) {
  const VmState in = Valid();
  auto out = Parse(ThroughCbor(ToJson(in)));
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->config.machine.vcpus, 1);
  EXPECT_EQ(out->config.machine.mem_mib, 64u);
  EXPECT_EQ(out->config.reboot_exit_code, 3);
  EXPECT_TRUE(out->config.debug_exit);
  ASSERT_EQ(out->config.drives.size(), 1u);
  EXPECT_EQ(out->config.drives[0].id, "rootfs");
  EXPECT_EQ(out->config.drives[0].path, "/srv/rootfs.ext4");
  EXPECT_TRUE(out->config.drives[0].read_only);
  EXPECT_FALSE(out->config.drives[0].direct);
  EXPECT_EQ(out->config.drives[0].queues, 2);
  EXPECT_EQ(out->config.drives[0].engine, DriveConfig::Engine::kSync);
  ASSERT_EQ(out->config.nets.size(), 1u);
  EXPECT_EQ(out->config.nets[0].id, "eth0");
  EXPECT_EQ(out->config.nets[0].tap, "tap0");
  EXPECT_EQ(out->config.nets[0].mac, in.config.nets[0].mac);
  EXPECT_EQ(out->mem_bytes, uint64_t{64} << 20);
  EXPECT_EQ(out->uart, in.uart);
  EXPECT_EQ(out->i8042, in.i8042);
  EXPECT_EQ(out->virtio, in.virtio);
#if defined(__x86_64__)
  ASSERT_EQ(out->vcpus.size(), 1u);
  const VcpuState& v = out->vcpus[0];
  const VcpuState& w = in.vcpus[0];
  ASSERT_EQ(v.cpuid.size(), 3u);
  for (size_t i = 0; i < 3; ++i) EXPECT_TRUE(SameBytes(v.cpuid[i], w.cpuid[i])) << i;
  EXPECT_TRUE(SameBytes(v.mp_state, w.mp_state));
  EXPECT_TRUE(SameBytes(v.regs, w.regs));
  EXPECT_EQ(v.regs.rip, 0x100000u);
  EXPECT_TRUE(SameBytes(v.sregs, w.sregs));
  EXPECT_EQ(v.xsave, w.xsave);
  EXPECT_TRUE(SameBytes(v.xcrs, w.xcrs));
  EXPECT_TRUE(SameBytes(v.lapic, w.lapic));
  ASSERT_EQ(v.msrs.size(), 2u);
  EXPECT_EQ(v.msrs[1].index, 0xc0000080u);
  EXPECT_EQ(v.msrs[1].data, 0xd01u);
  EXPECT_TRUE(SameBytes(v.events, w.events));
  EXPECT_TRUE(SameBytes(v.debugregs, w.debugregs));
  EXPECT_EQ(v.tsc_khz, 2995200u);
  EXPECT_TRUE(SameBytes(out->irqchip.pic_master, in.irqchip.pic_master));
  EXPECT_TRUE(SameBytes(out->irqchip.pic_slave, in.irqchip.pic_slave));
  EXPECT_TRUE(SameBytes(out->irqchip.ioapic, in.irqchip.ioapic));
  EXPECT_TRUE(SameBytes(out->irqchip.pit, in.irqchip.pit));
  EXPECT_TRUE(SameBytes(out->irqchip.clock, in.irqchip.clock));
#elif defined(__aarch64__)
  ASSERT_EQ(out->vcpus.size(), 1u);
  EXPECT_TRUE(SameBytes(out->vcpus[0].mp_state, in.vcpus[0].mp_state));
  EXPECT_EQ(out->vcpus[0].reg_ids, in.vcpus[0].reg_ids);
  EXPECT_EQ(out->vcpus[0].reg_values, in.vcpus[0].reg_values);
  EXPECT_TRUE(SameBytes(out->vcpus[0].events, in.vcpus[0].events));
  EXPECT_EQ(out->gic.version, 3u);
  ASSERT_EQ(out->gic.regs.size(), 4u);
  EXPECT_EQ(out->gic.regs[2].attr, 0xc665u);
  EXPECT_EQ(out->gic.regs[2].value, 0x8000000000000007u);
  EXPECT_TRUE(out->gic.its);
  ASSERT_EQ(out->gic.its_regs.size(), 1u);
  EXPECT_EQ(out->gic.its_regs[0].value, 0xb80000004002a000u);
  EXPECT_EQ(out->gic.its_ctlr, 1u);
  EXPECT_EQ(out->rtc, in.rtc);
#endif
}

// ToJson writes unsigned numbers, as Parse reads them, without CBOR in between.
TEST(VmStateTest, RoundTripWithoutCbor) {
  auto out = Parse(ToJson(Valid()));
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(ToJson(*out), ToJson(Valid()));
}

TEST(VmStateTest, EveryEngineRoundTrips) {
  for (auto e :
       {DriveConfig::Engine::kAuto, DriveConfig::Engine::kUring, DriveConfig::Engine::kSync}) {
    VmState in = Valid();
    in.config.drives[0].engine = e;
    auto out = Parse(ThroughCbor(ToJson(in)));
    ASSERT_TRUE(out.ok()) << out.status();
    EXPECT_EQ(out->config.drives[0].engine, e);
  }
}

TEST(VmStateTest, TheEntropyDeviceAndItsRateLimiterRoundTrip) {
  VmState in = Valid();
  in.config.entropy = EntropyConfig{};
  in.config.entropy->rate_limiter.ops = {.size = 10, .one_time_burst = 5, .refill_time_ms = 250};
  EXPECT_FALSE(Parse(ThroughCbor(ToJson(in))).ok())
      << "the entropy device needs a device state of its own";
  in.virtio.push_back(in.virtio.back());
  auto out = Parse(ThroughCbor(ToJson(in)));
  ASSERT_TRUE(out.ok()) << out.status();
  ASSERT_TRUE(out->config.entropy.has_value());
  EXPECT_EQ(out->config.entropy->rate_limiter, in.config.entropy->rate_limiter);
  EXPECT_FALSE(Parse(ThroughCbor(ToJson(Valid())))->config.entropy.has_value());
}

TEST(VmStateTest, TheArm64CpuFeaturesRoundTripAndAnOldSnapshotHasNone) {
  VmState in = Valid();
  in.config.machine.arm64 = {.pmu = true, .sve = false, .ptrauth = true};
  auto out = Parse(ThroughCbor(ToJson(in)));
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->config.machine.arm64, in.config.machine.arm64);
  Json j = ToJson(in);
  j["config"].erase("arm64");
  auto old = Parse(ThroughCbor(j));
  ASSERT_TRUE(old.ok()) << old.status();
  EXPECT_EQ(old->config.machine.arm64,
            (Arm64CpuFeatures{.pmu = false, .sve = false, .ptrauth = false}));
  j["config"]["arm64"] = {{"pmu", 1}, {"sve", false}, {"ptrauth", false}};
  auto bad = Parse(ThroughCbor(j));
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("config.arm64.pmu"));
}

TEST(VmStateTest, TheBalloonRoundTripsAndMustFitTheGuest) {
  VmState in = Valid();
  in.config.balloon = BalloonConfig{.amount_mib = 3,
                                    .deflate_on_oom = true,
                                    .stats_polling_interval_s = 7,
                                    .free_page_reporting = true};
  in.virtio.push_back(in.virtio.back());
  auto out = Parse(ThroughCbor(ToJson(in)));
  ASSERT_TRUE(out.ok()) << out.status();
  ASSERT_TRUE(out->config.balloon.has_value());
  EXPECT_EQ(out->config.balloon->amount_mib, 3u);
  EXPECT_EQ(out->config.balloon->stats_polling_interval_s, 7u);
  EXPECT_TRUE(out->config.balloon->free_page_reporting);
  in.config.balloon->amount_mib = static_cast<uint32_t>(in.config.machine.mem_mib + 1);
  auto big = Parse(ThroughCbor(ToJson(in)));
  ASSERT_FALSE(big.ok());
  EXPECT_THAT(std::string(big.status().message()), HasSubstr("config.balloon.amount_mib"));
}

TEST(VmStateTest, TheVsockDeviceRoundTripsAndIsChecked) {
  VmState in = Valid();
  in.config.vsock = VsockConfig{.vsock_id = "v0", .guest_cid = 9, .uds_path = "/run/v.sock"};
  in.virtio.push_back(in.virtio.back());
  auto out = Parse(ThroughCbor(ToJson(in)));
  ASSERT_TRUE(out.ok()) << out.status();
  ASSERT_TRUE(out->config.vsock.has_value());
  EXPECT_EQ(out->config.vsock->guest_cid, 9u);
  EXPECT_EQ(out->config.vsock->uds_path, "/run/v.sock");
  EXPECT_EQ(out->config.vsock->vsock_id, "v0");
  in.config.vsock->guest_cid = 1;
  auto bad = Parse(ThroughCbor(ToJson(in)));
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("config.vsock.guest_cid"));
}

TEST(VmStateTest, TheMmdsConfigRoundTripsAndNamesItsInterfaces) {
  VmState in = Valid();
  ASSERT_FALSE(in.config.nets.empty());
  in.config.mmds = MmdsConfig{.version = MmdsConfig::Version::kV2,
                              .network_interfaces = {in.config.nets[0].id},
                              .ipv4_address = {169, 254, 1, 2},
                              .imds_compat = false};
  auto out = Parse(ThroughCbor(ToJson(in)));
  ASSERT_TRUE(out.ok()) << out.status();
  ASSERT_TRUE(out->config.mmds.has_value());
  EXPECT_EQ(*out->config.mmds, *in.config.mmds);
  in.config.mmds->network_interfaces = {"nope"};
  auto bad = Parse(ThroughCbor(ToJson(in)));
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("config.mmds.network_interfaces"));
}

TEST(VmStateTest, DriveAndInterfaceRateLimitersRoundTrip) {
  VmState in = Valid();
  in.config.drives[0].rate_limiter.bandwidth = {
      .size = 1 << 20, .one_time_burst = 0, .refill_time_ms = 100};
  in.config.nets[0].rx_rate_limiter.ops = {.size = 7, .one_time_burst = 1, .refill_time_ms = 9};
  in.config.nets[0].tx_rate_limiter.bandwidth = {
      .size = 3, .one_time_burst = 0, .refill_time_ms = 4};
  auto out = Parse(ThroughCbor(ToJson(in)));
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->config.drives[0].rate_limiter, in.config.drives[0].rate_limiter);
  EXPECT_EQ(out->config.nets[0].rx_rate_limiter, in.config.nets[0].rx_rate_limiter);
  EXPECT_EQ(out->config.nets[0].tx_rate_limiter, in.config.nets[0].tx_rate_limiter);
}

// One malformed field: MUTATE spoils the valid state's JSON, and Parse's error must begin with
// FIELD (the field's path) and say WHY.
struct BadField {
  std::string name;
  std::function<void(Json&)> mutate;
  std::string field;
  std::string why;
};

[[maybe_unused]] Json Bin(size_t n) { return Json::binary(std::vector<uint8_t>(n, 0)); }

std::vector<BadField> BadFields() {
  std::vector<BadField> v = {
      {"unknown top-level key", [](Json& j) { j["memory"] = 1; }, "memory", "unknown field"},
      {"not an object", [](Json& j) { j = Json::array(); }, "body", "must be a JSON object"},
      {"missing config", [](Json& j) { j.erase("config"); }, "config", "missing required field"},
      {"config not an object", [](Json& j) { j["config"] = 1; }, "config", "must be a JSON object"},
      {"unknown config key", [](Json& j) { j["config"]["smt"] = true; }, "config.smt",
       "unknown field"},
      {"config.vcpus 0", [](Json& j) { j["config"]["vcpus"] = 0u; }, "config.vcpus",
       "0 is outside [1, 256]"},
      {"missing mem_bytes", [](Json& j) { j.erase("mem_bytes"); }, "mem_bytes",
       "missing required field"},
      {"mem_bytes not matching mem_mib", [](Json& j) { j["mem_bytes"] = uint64_t{65} << 20; },
       "mem_bytes", "68157440 does not match config.mem_mib 64"},
      {"drive with empty path", [](Json& j) { j["config"]["drives"][0]["path"] = ""; },
       "config.drives[0].path", "must not be empty"},
      {"drive path not a string", [](Json& j) { j["config"]["drives"][0]["path"] = 1; },
       "config.drives[0].path", "must be a string"},
      {"drive engine fast", [](Json& j) { j["config"]["drives"][0]["engine"] = "fast"; },
       "config.drives[0].engine", "must be auto, uring or sync"},
      {"drive queues 0", [](Json& j) { j["config"]["drives"][0]["queues"] = 0u; },
       "config.drives[0].queues", "0 is outside [1, 16]"},
      {"drive id too long", [](Json& j) { j["config"]["drives"][0]["id"] = std::string(65, 'd'); },
       "config.drives[0].id", "must be 1 to 64 characters"},
      {"net tap 16 chars", [](Json& j) { j["config"]["nets"][0]["tap"] = std::string(16, 't'); },
       "config.nets[0].tap", "must be a TAP name of 1 to 15 characters"},
      {"net tap empty", [](Json& j) { j["config"]["nets"][0]["tap"] = ""; }, "config.nets[0].tap",
       "must be a TAP name of 1 to 15 characters"},
      {"net bad mac", [](Json& j) { j["config"]["nets"][0]["mac"] = "06:ed:9e:00:00"; },
       "config.nets[0].mac", "must look like 52:54:00:12:34:56"},
      {"net multicast mac", [](Json& j) { j["config"]["nets"][0]["mac"] = "01:00:5e:00:00:01"; },
       "config.nets[0].mac", "must be unicast"},
      {"entropy bucket negative",
       [](Json& j) {
         j["config"]["entropy"] = {{"rate_limiter", {{"ops", {{"size", -1}, {"refill_time", 1}}}}}};
       },
       "config.entropy.rate_limiter.ops.size", "must be a non-negative integer"},
      {"too many drives",
       [](Json& j) {
         Json& drives = j["config"]["drives"];
         while (drives.size() < 17) drives.push_back(drives[0]);
       },
       "config.drives", "must be an array of at most 16 devices"},
      {"too many devices in all",
       [](Json& j) {
         Json& drives = j["config"]["drives"];
         Json& nets = j["config"]["nets"];
         while (drives.size() < 9) drives.push_back(drives[0]);
         while (nets.size() < 8) nets.push_back(nets[0]);
       },
       "config", "more than 16 virtio devices"},
      {"virtio array size mismatch", [](Json& j) { j["virtio"].erase(1); }, "virtio",
       "must be an array of 2 device states"},
      {"virtio not an array", [](Json& j) { j["virtio"] = Json::object(); }, "virtio",
       "must be an array of 2 device states"},
      {"missing uart", [](Json& j) { j.erase("uart"); }, "uart", "missing required field"},
  };
#if defined(__x86_64__)
  auto vcpu = [](Json& j) -> Json& { return j["vcpus"][0]; };
  const std::string kRegs = absl::StrFormat("must be a %d-byte binary", sizeof(kvm_regs));
  const std::string kXsave = "must be 4096 to 65536 bytes, a multiple of 4";
  std::vector<BadField> x86 = {
      {"vcpus count != config.vcpus", [](Json& j) { j["vcpus"].push_back(j["vcpus"][0]); }, "vcpus",
       "must be an array of 1 vCPU states (config.vcpus)"},
      {"no vcpus", [](Json& j) { j["vcpus"] = Json::array(); }, "vcpus",
       "must be an array of 1 vCPU states"},
      {"missing vcpus", [](Json& j) { j.erase("vcpus"); }, "vcpus",
       "must be an array of 1 vCPU states"},
      {"unknown vcpu key", [vcpu](Json& j) { vcpu(j)["pkru"] = 0u; }, "vcpus[0].pkru",
       "unknown field"},
      {"regs blob too short", [vcpu](Json& j) { vcpu(j)["regs"] = Bin(sizeof(kvm_regs) - 1); },
       "vcpus[0].regs", kRegs},
      {"regs blob too long", [vcpu](Json& j) { vcpu(j)["regs"] = Bin(sizeof(kvm_regs) + 1); },
       "vcpus[0].regs", kRegs},
      {"regs not binary",
       [vcpu](Json& j) { vcpu(j)["regs"] = std::vector<int>(sizeof(kvm_regs), 0); },
       "vcpus[0].regs", "must be a binary string"},
      {"missing regs", [vcpu](Json& j) { vcpu(j).erase("regs"); }, "vcpus[0].regs",
       "missing required field"},
      {"sregs wrong size", [vcpu](Json& j) { vcpu(j)["sregs"] = Bin(8); }, "vcpus[0].sregs",
       absl::StrFormat("must be a %d-byte binary", sizeof(kvm_sregs))},
      {"xsave too small", [vcpu](Json& j) { vcpu(j)["xsave"] = Bin(4092); }, "vcpus[0].xsave",
       kXsave},
      {"xsave too big", [vcpu](Json& j) { vcpu(j)["xsave"] = Bin((64 << 10) + 4); },
       "vcpus[0].xsave", kXsave},
      {"xsave not a multiple of 4", [vcpu](Json& j) { vcpu(j)["xsave"] = Bin(4098); },
       "vcpus[0].xsave", kXsave},
      {"cpuid empty", [vcpu](Json& j) { vcpu(j)["cpuid"] = Bin(0); }, "vcpus[0].cpuid",
       "must not be empty"},
      {"cpuid not a multiple of the entry size",
       [vcpu](Json& j) { vcpu(j)["cpuid"] = Bin(sizeof(kvm_cpuid_entry2) + 1); }, "vcpus[0].cpuid",
       absl::StrFormat("must hold at most 256 entries of %d bytes", sizeof(kvm_cpuid_entry2))},
      {"cpuid over 256 entries",
       [vcpu](Json& j) { vcpu(j)["cpuid"] = Bin(257 * sizeof(kvm_cpuid_entry2)); },
       "vcpus[0].cpuid", "must hold at most 256 entries"},
      {"msrs over 1024 entries",
       [vcpu](Json& j) { vcpu(j)["msrs"] = Bin(1025 * sizeof(kvm_msr_entry)); }, "vcpus[0].msrs",
       absl::StrFormat("must hold at most 1024 entries of %d bytes", sizeof(kvm_msr_entry))},
      {"tsc_khz negative", [vcpu](Json& j) { vcpu(j)["tsc_khz"] = -1; }, "vcpus[0].tsc_khz",
       "must be a non-negative integer"},
      {"tsc_khz a string", [vcpu](Json& j) { vcpu(j)["tsc_khz"] = "2995200"; }, "vcpus[0].tsc_khz",
       "must be a non-negative integer"},
      {"tsc_khz over 32 bits", [vcpu](Json& j) { vcpu(j)["tsc_khz"] = uint64_t{1} << 32; },
       "vcpus[0].tsc_khz", "is outside [0, 4294967295]"},
      {"irqchip chip ids swapped",
       [](Json& j) { std::swap(j["irqchip"]["pic_master"], j["irqchip"]["pic_slave"]); }, "irqchip",
       "the chip ids are not PIC master, PIC slave and IOAPIC"},
      {"irqchip ioapic given the master's id",
       [](Json& j) { j["irqchip"]["ioapic"] = j["irqchip"]["pic_master"]; }, "irqchip",
       "the chip ids are not PIC master, PIC slave and IOAPIC"},
      {"missing irqchip", [](Json& j) { j.erase("irqchip"); }, "irqchip", "missing required field"},
      {"pit wrong size", [](Json& j) { j["irqchip"]["pit"] = Bin(1); }, "irqchip.pit",
       absl::StrFormat("must be a %d-byte binary", sizeof(kvm_pit_state2))},
  };
  v.insert(v.end(), x86.begin(), x86.end());
#elif defined(__aarch64__)
  auto vcpu = [](Json& j) -> Json& { return j["vcpus"][0]; };
  // GIC attribute records, 24 bytes each: group, attr, value.
  auto attrs = [](std::vector<GicAttr> a) {
    const auto* p = reinterpret_cast<const uint8_t*>(a.data());
    return Json::binary(std::vector<uint8_t>(p, p + a.size() * sizeof(GicAttr)));
  };
  auto ids = [](std::vector<uint64_t> a) {
    const auto* p = reinterpret_cast<const uint8_t*>(a.data());
    return Json::binary(std::vector<uint8_t>(p, p + a.size() * 8));
  };
  std::vector<BadField> arm = {
      {"vcpus count != config.vcpus", [](Json& j) { j["vcpus"].push_back(j["vcpus"][0]); }, "vcpus",
       "must be an array of 1 vCPU states (config.vcpus)"},
      {"unknown vcpu key", [vcpu](Json& j) { vcpu(j)["sve"] = 0u; }, "vcpus[0].sve",
       "unknown field"},
      {"no registers", [vcpu](Json& j) { vcpu(j)["reg_ids"] = Bin(0); }, "vcpus[0].reg_ids",
       "must not be empty"},
      {"reg_ids not a multiple of 8", [vcpu](Json& j) { vcpu(j)["reg_ids"] = Bin(12); },
       "vcpus[0].reg_ids", "must hold at most 4096 entries of 8 bytes"},
      {"over 4096 registers", [vcpu](Json& j) { vcpu(j)["reg_ids"] = Bin(4097 * 8); },
       "vcpus[0].reg_ids", "must hold at most 4096 entries of 8 bytes"},
      {"an x86 register id",
       [vcpu, ids](Json& j) {
         vcpu(j)["reg_ids"] = ids({kX0, KVM_REG_X86 | KVM_REG_SIZE_U64});
       },
       "vcpus[0].reg_ids", "entry 1 (0x2030000000000000) is not an arm64 register"},
      {"a 4096-bit register",
       [vcpu, ids](Json& j) { vcpu(j)["reg_ids"] = ids({KVM_REG_ARM64 | (9ULL << 52)}); },
       "vcpus[0].reg_ids", "entry 0 (0x6090000000000000) is not an arm64 register of at most"},
      {"values shorter than the ids say", [vcpu](Json& j) { vcpu(j)["reg_values"] = Bin(31); },
       "vcpus[0].reg_values", "must be 32 bytes (the sizes reg_ids name)"},
      {"values longer than the ids say", [vcpu](Json& j) { vcpu(j)["reg_values"] = Bin(33); },
       "vcpus[0].reg_values", "must be 32 bytes"},
      {"mp_state wrong size", [vcpu](Json& j) { vcpu(j)["mp_state"] = Bin(8); },
       "vcpus[0].mp_state", "must be a 4-byte binary"},
      {"missing gic", [](Json& j) { j.erase("gic"); }, "gic", "missing required field"},
      {"gic version 4", [](Json& j) { j["gic"]["version"] = 4u; }, "gic.version",
       "4 is outside [2, 3]"},
      {"gic version not the config's",
       [](Json& j) {
         j["config"]["gic"] = 2u;
         j["gic"]["its"] = false;
       },
       "gic.version", "3, but config.gic is 2"},
      {"gic regs empty", [](Json& j) { j["gic"]["regs"] = Bin(0); }, "gic.regs",
       "must not be empty"},
      {"gic regs cut", [](Json& j) { j["gic"]["regs"] = Bin(25); }, "gic.regs",
       "entries of 24 bytes"},
      {"gic control group (would init or save tables)",
       [attrs](Json& j) {
         j["gic"]["regs"] = attrs({{KVM_DEV_ARM_VGIC_GRP_CTRL, 0, 0}});
       },
       "gic.regs", "entry 0: group 4 is not one this device has"},
      {"gic address group",
       [attrs](Json& j) {
         j["gic"]["regs"] = attrs({{KVM_DEV_ARM_VGIC_GRP_ADDR, 0, 0}});
       },
       "gic.regs", "entry 0: group 0 is not one this device has"},
      {"GICv2 CPU registers on a GICv3",
       [attrs](Json& j) {
         j["gic"]["regs"] = attrs({{KVM_DEV_ARM_VGIC_GRP_CPU_REGS, 0, 0}});
       },
       "gic.regs", "group 2 is not one this device has"},
      {"GICv3 redistributor on a GICv2",
       [attrs](Json& j) {
         j["gic"]["version"] = 2u;
         j["gic"]["its"] = false;
         j["gic"]["its_regs"] = Bin(0);
         j["gic"]["regs"] = attrs({{KVM_DEV_ARM_VGIC_GRP_REDIST_REGS, 0, 0}});
       },
       "gic.regs", "group 5 is not one this device has"},
      {"a 32-bit register with a 64-bit value",
       [attrs](Json& j) {
         j["gic"]["regs"] = attrs({{KVM_DEV_ARM_VGIC_GRP_DIST_REGS, 0, uint64_t{1} << 32}});
       },
       "gic.regs", "entry 0: 0x100000000 is wider than 32 bits"},
      {"an ITS on a GICv2",
       [attrs](Json& j) {
         j["gic"]["version"] = 2u;
         j["gic"]["regs"] = attrs({{KVM_DEV_ARM_VGIC_GRP_DIST_REGS, 0, 0}});
       },
       "gic.its", "a GICv2 has no ITS"},
      {"its without registers", [](Json& j) { j["gic"]["its_regs"] = Bin(0); }, "gic.its_regs",
       "must not be empty"},
      {"its registers without its", [](Json& j) { j["gic"]["its"] = false; }, "gic.its_regs",
       "must be empty without its"},
      {"a distributor register among the ITS's",
       [attrs](Json& j) {
         j["gic"]["its_regs"] = attrs({{KVM_DEV_ARM_VGIC_GRP_DIST_REGS, 0, 0}});
       },
       "gic.its_regs", "entry 0: group 1 is not one this device has"},
      {"its_ctlr negative", [](Json& j) { j["gic"]["its_ctlr"] = -1; }, "gic.its_ctlr",
       "must be a non-negative integer"},
  };
  v.insert(v.end(), arm.begin(), arm.end());
#endif
  return v;
}

TEST(VmStateTest, MalformedFieldsAreNamed) {
  const Json good = ThroughCbor(ToJson(Valid()));
  ASSERT_TRUE(Parse(good).ok()) << Parse(good).status();
  for (const BadField& b : BadFields()) {
    SCOPED_TRACE(b.name);
    Json j = good;
    b.mutate(j);
    auto s = Parse(j);
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
    const std::string message(s.status().message());
    EXPECT_THAT(message, StartsWith(b.field + ": "));
    EXPECT_THAT(message, HasSubstr(b.why));
  }
}

// A config without drives or nets is refused by name (the const operator[] on a missing key
// would abort).
TEST(VmStateTest, MissingDrivesOrNetsIsNamed) {
  for (const char* key : {"drives", "nets"}) {
    SCOPED_TRACE(key);
    Json j = ThroughCbor(ToJson(Valid()));
    j["config"].erase(key);
    auto s = Parse(j);
    ASSERT_FALSE(s.ok());
    EXPECT_THAT(std::string(s.status().message()), StartsWith(std::string("config.") + key));
  }
}

#if defined(__x86_64__)
TEST(MissingCpuFeaturesTest, NoneWhenTheHostHasEveryBit) {
  const std::vector<kvm_cpuid_entry2> guest = {Leaf(7, 0, 0, 0x29, 0x4, 0x10)};
  const std::vector<kvm_cpuid_entry2> host = {Leaf(7, 0, 0, 0xff, 0xff, 0xff)};
  EXPECT_THAT(MissingCpuFeatures(guest, host), IsEmpty());
}

TEST(MissingCpuFeaturesTest, AGuestBitTheHostLacksIsReportedWithLeafAndRegister) {
  const std::vector<kvm_cpuid_entry2> guest = {Leaf(7, 0, 0, 0x20 | 0x200, 0, 0),
                                               Leaf(0x80000001, 0, 0, 0, 0, 1u << 27)};
  const std::vector<kvm_cpuid_entry2> host = {Leaf(7, 0, 0, 0x200, 0, 0),
                                              Leaf(0x80000001, 0, 0, 0, 0, 0)};
  EXPECT_THAT(MissingCpuFeatures(guest, host),
              ElementsAre("leaf 0x7.0 ebx: 0x00000020", "leaf 0x80000001.0 edx: 0x08000000"));
}

TEST(MissingCpuFeaturesTest, SubleafAndAbsentHostLeaf) {
  // Leaf 0x7.1 is a different word from 0x7.0; a leaf the host lacks lacks every bit.
  const std::vector<kvm_cpuid_entry2> guest = {Leaf(7, 1, 0x30, 0, 0, 0),
                                               Leaf(0xd, 0, 0xe7, 0, 0, 0)};
  const std::vector<kvm_cpuid_entry2> host = {Leaf(7, 0, 0x30, 0, 0, 0)};
  EXPECT_THAT(MissingCpuFeatures(guest, host),
              ElementsAre("leaf 0x7.1 eax: 0x00000030", "leaf 0xd.0 eax: 0x000000e7"));
}

TEST(MissingCpuFeaturesTest, HypervisorAndHttBitsAreIgnored) {
  // edgevisor sets leaf 1 ecx bit 31 (hypervisor) and edx bit 28 (HTT) itself.
  const std::vector<kvm_cpuid_entry2> host = {Leaf(1, 0, 0, 0, 0, 0)};
  EXPECT_THAT(MissingCpuFeatures({Leaf(1, 0, 0, 0, 1u << 31, 1u << 28)}, host), IsEmpty());
  EXPECT_THAT(MissingCpuFeatures({Leaf(1, 0, 0, 0, 1u << 31, 1u << 28)}, {}), IsEmpty());
  // The other bits of the same registers are still checked.
  EXPECT_THAT(MissingCpuFeatures({Leaf(1, 0, 0, 0, (1u << 31) | 1, (1u << 28) | (1u << 26))}, host),
              ElementsAre("leaf 0x1.0 ecx: 0x00000001", "leaf 0x1.0 edx: 0x04000000"));
}

TEST(MissingCpuFeaturesTest, UncheckedLeavesAndRegistersAreIgnored) {
  // Leaf 0 (vendor) and leaf 1 eax/ebx (signature, APIC id) are not feature words.
  const std::vector<kvm_cpuid_entry2> guest = {Leaf(0, 0, 0xd, 1, 2, 3),
                                               Leaf(1, 0, 0x806c1, 0xff, 0, 0)};
  EXPECT_THAT(MissingCpuFeatures(guest, {}), IsEmpty());
}
#endif

}  // namespace
}  // namespace edgevisor::snapshot
