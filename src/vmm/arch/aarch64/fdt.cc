#include "src/vmm/arch/aarch64/fdt.h"

extern "C" {
#include <libfdt.h>
}

#include "absl/strings/str_format.h"
#include "src/base/errors.h"
#include "src/vmm/arch/aarch64/layout.h"

namespace edgevisor::aarch64 {
namespace {

constexpr uint32_t kPhandleGic = 1;
constexpr uint32_t kPhandleApbClock = 2;
constexpr uint32_t kPhandleIts = 3;
// Interrupt specifier cells (bindings/interrupt-controller/arm,gic*.yaml).
constexpr uint32_t kGicSpi = 0;
constexpr uint32_t kGicPpi = 1;
constexpr uint32_t kIrqEdgeRising = 1;
constexpr uint32_t kIrqLevelHigh = 4;
constexpr uint32_t kIrqLevelLow = 8;

// Collects the first libfdt error; every call after it is skipped.
class Writer {
 public:
  explicit Writer(size_t size) : buf_(size) { Check(fdt_create(buf_.data(), size), "create"); }

  void Check(int rc, const char* what) {
    if (rc < 0 && err_.empty()) err_ = absl::StrFormat("fdt %s: %s", what, fdt_strerror(rc));
  }
  void Begin(const std::string& name) {
    if (err_.empty()) Check(fdt_begin_node(buf_.data(), name.c_str()), name.c_str());
  }
  void End() {
    if (err_.empty()) Check(fdt_end_node(buf_.data()), "end_node");
  }
  void Str(const char* name, const std::string& v) {
    if (err_.empty()) Check(fdt_property_string(buf_.data(), name, v.c_str()), name);
  }
  // A string list: "a\0b\0".
  void Strs(const char* name, std::initializer_list<const char*> vs) {
    std::string all;
    for (const char* v : vs) all.append(v).push_back('\0');
    if (err_.empty()) Check(fdt_property(buf_.data(), name, all.data(), all.size()), name);
  }
  void U32(const char* name, uint32_t v) {
    if (err_.empty()) Check(fdt_property_u32(buf_.data(), name, v), name);
  }
  void U64(const char* name, uint64_t v) {
    if (err_.empty()) Check(fdt_property_u64(buf_.data(), name, v), name);
  }
  void Cells(const char* name, const std::vector<uint32_t>& cells) {
    std::vector<fdt32_t> be;
    for (uint32_t c : cells) be.push_back(cpu_to_fdt32(c));
    if (err_.empty()) {
      Check(fdt_property(buf_.data(), name, be.data(), static_cast<int>(be.size() * 4)), name);
    }
  }
  // reg = <addr size> pairs with #address-cells = #size-cells = 2.
  void Reg(std::initializer_list<std::pair<uint64_t, uint64_t>> ranges) {
    std::vector<uint32_t> c;
    for (auto [a, s] : ranges) {
      c.insert(c.end(), {static_cast<uint32_t>(a >> 32), static_cast<uint32_t>(a),
                         static_cast<uint32_t>(s >> 32), static_cast<uint32_t>(s)});
    }
    Cells("reg", c);
  }
  void Empty(const char* name) {
    if (err_.empty()) Check(fdt_property(buf_.data(), name, nullptr, 0), name);
  }

  absl::StatusOr<std::vector<uint8_t>> Finish() {
    if (err_.empty()) Check(fdt_finish(buf_.data()), "finish");
    if (!err_.empty()) return absl::InternalError(err_);
    buf_.resize(fdt_totalsize(buf_.data()));
    return std::move(buf_);
  }
  void* data() { return buf_.data(); }

 private:
  std::vector<uint8_t> buf_;
  std::string err_;
};

std::string Hex(uint64_t v) { return absl::StrFormat("%x", v); }

}  // namespace

uint64_t DefaultMpidr(int index) {
  const auto i = static_cast<uint64_t>(index);
  return (i & 0xf) | (((i >> 4) & 0xff) << 8);
}

namespace {

// /memory, /cpus (one per vCPU, PSCI to start them) and /psci.
void AddMemoryAndCpus(Writer& w, const FdtConfig& c) {
  w.Begin("memory@" + Hex(c.ram_base));
  w.Str("device_type", "memory");
  w.Reg({{c.ram_base, c.ram_size}});
  w.End();

  w.Begin("cpus");
  w.U32("#address-cells", 1);
  w.U32("#size-cells", 0);
  for (int i = 0; i < c.vcpus; ++i) {
    const uint64_t mpidr = DefaultMpidr(i);
    w.Begin("cpu@" + Hex(mpidr));
    w.Str("device_type", "cpu");
    w.Str("compatible", "arm,arm-v8");
    w.Str("enable-method", "psci");
    w.U32("reg", static_cast<uint32_t>(mpidr));
    w.End();
  }
  w.End();

  w.Begin("psci");
  w.Strs("compatible", {"arm,psci-0.2", "arm,psci"});
  w.Str("method", "hvc");
  w.End();
}

// The architected timer's PPIs, the PMU's, and the interrupt controller (GICv3 with its
// redistributors and ITS where there is one, or GICv2).
void AddTimerAndGic(Writer& w, const FdtConfig& c) {
  w.Begin("timer");
  w.Str("compatible", "arm,armv8-timer");
  // On a GICv2, a PPI's flags also carry the CPUs it is wired to, one bit each in bits 15:8
  // (the GICv2 binding); a GICv3's must be 0 there.
  const uint32_t cpus = c.gic_version == 2 ? ((1u << c.vcpus) - 1) << 8 : 0;
  std::vector<uint32_t> timer;
  for (uint32_t ppi : kTimerPpis) timer.insert(timer.end(), {kGicPpi, ppi, kIrqLevelLow | cpus});
  w.Cells("interrupts", timer);
  w.Empty("always-on");
  w.End();

  if (c.pmu) {  // PMUv3, its overflow interrupt a level-high PPI (the arm,armv8-pmuv3 binding)
    w.Begin("pmu");
    w.Str("compatible", "arm,armv8-pmuv3");
    w.Cells("interrupts", {kGicPpi, kPmuPpi, kIrqLevelHigh | cpus});
    w.End();
  }

  w.Begin("intc@" + Hex(kGicDistBase));
  if (c.gic_version == 3) {
    w.Str("compatible", "arm,gic-v3");
    w.Reg({{kGicDistBase, kGicDistSize},
           {kGicRedistBase, kGicRedistSizePerCpu * static_cast<uint64_t>(c.vcpus)}});
    // Maintenance interrupt: PPI 9.
    w.Cells("interrupts", {kGicPpi, 9, kIrqLevelHigh});
  } else {
    w.Str("compatible", "arm,cortex-a15-gic");
    w.Reg({{kGicDistBase, kGicV2DistSize}, {kGicCpuBase, kGicCpuSize}});
  }
  w.U32("#interrupt-cells", 3);
  w.Empty("interrupt-controller");
  w.U32("#address-cells", 2);
  w.U32("#size-cells", 2);
  w.U32("phandle", kPhandleGic);
  if (c.gic_version == 3 && c.gic_its) {
    w.Empty("ranges");  // the ITS's reg is in the parent's address space
    w.Begin("msi-controller@" + Hex(kGicItsBase));
    w.Str("compatible", "arm,gic-v3-its");
    w.Empty("msi-controller");
    w.U32("#msi-cells", 1);
    w.Reg({{kGicItsBase, kGicItsSize}});
    w.U32("phandle", kPhandleIts);
    w.End();
  }
  w.End();
}

// The platform devices (the APB clock, the ns16550a console, the PL031 RTC) and the virtio-mmio
// slots.
void AddDevices(Writer& w, const FdtConfig& c) {
  w.Begin("apb-pclk");
  w.Str("compatible", "fixed-clock");
  w.U32("#clock-cells", 0);
  w.U32("clock-frequency", 24000000);
  w.Str("clock-output-names", "clk24mhz");
  w.U32("phandle", kPhandleApbClock);
  w.End();

  w.Begin("uart@" + Hex(kUartBase));
  w.Str("compatible", "ns16550a");
  w.Reg({{kUartBase, kDeviceWindowSize}});
  w.Cells("interrupts", {kGicSpi, kUartSpi, kIrqLevelHigh});
  w.U32("clock-frequency", kUartClockHz);
  w.End();

  w.Begin("rtc@" + Hex(kRtcBase));
  w.Strs("compatible", {"arm,pl031", "arm,primecell"});
  w.Reg({{kRtcBase, kDeviceWindowSize}});
  w.Cells("interrupts", {kGicSpi, kRtcSpi, kIrqLevelHigh});
  w.U32("clocks", kPhandleApbClock);
  w.Str("clock-names", "apb_pclk");
  w.End();

  for (const FdtVirtioMmio& v : c.virtio) {
    w.Begin("virtio_mmio@" + Hex(v.base));
    w.Str("compatible", "virtio,mmio");
    w.Reg({{v.base, v.size}});
    w.Cells("interrupts", {kGicSpi, v.spi, kIrqEdgeRising});
    w.Empty("dma-coherent");
    w.End();
  }
}

}  // namespace

absl::StatusOr<std::vector<uint8_t>> BuildFdt(const FdtConfig& c) {
  if (c.gic_version != 2 && c.gic_version != 3) {
    return absl::InvalidArgumentError(absl::StrFormat("GIC version %d", c.gic_version));
  }
  if (c.gic_version == 2 && c.vcpus > 8) {
    return UsageError(absl::StrFormat("--vcpus %d: a GICv2 serves at most 8 CPUs", c.vcpus));
  }
  Writer w(kFdtMaxSize);
  w.Check(fdt_finish_reservemap(w.data()), "reservemap");
  w.Begin("");
  w.Str("compatible", "linux,dummy-virt");
  w.U32("#address-cells", 2);
  w.U32("#size-cells", 2);
  w.U32("interrupt-parent", kPhandleGic);

  w.Begin("chosen");
  w.Str("bootargs", c.cmdline);
  w.Str("stdout-path", "/uart@" + Hex(kUartBase));
  if (c.initrd_size != 0) {
    w.U64("linux,initrd-start", c.initrd_addr);
    w.U64("linux,initrd-end", c.initrd_addr + c.initrd_size);
  }
  w.End();

  AddMemoryAndCpus(w, c);
  AddTimerAndGic(w, c);
  AddDevices(w, c);
  w.End();  // root
  return w.Finish();
}

}  // namespace edgevisor::aarch64
