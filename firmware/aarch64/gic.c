// The generic interrupt controller, as much of it as a payload needs to sleep until one device
// interrupt (an SPI) arrives: GICv3 (distributor, this CPU's redistributor, the system-register
// CPU interface) or GICv2 (distributor, memory-mapped CPU interface), found in the device tree.
// Interrupts stay masked at the CPU; WFI ends when one is pending at the CPU interface, and the
// payload acknowledges it with rt_gic_ack / rt_gic_eoi. One security state (KVM's vGIC): group
// 1 on GICv3, group 0 on GICv2, both signalled as IRQ.
#include "rt.h"
#include "rt_aarch64.h"
#include "rt_mmio.h"

// Distributor (both versions).
#define GICD_CTLR 0x0000
#define GICD_IGROUPR 0x0080
#define GICD_ISENABLER 0x0100
#define GICD_IPRIORITYR 0x0400
#define GICD_ITARGETSR 0x0800  // v2
#define GICD_ICFGR 0x0c00
#define GICD_IROUTER 0x6000  // v3, 64 bits per INTID
#define GICD_CTLR_RWP (1u << 31)
#define GICD_CTLR_V3_ENABLE_G1 (1u << 1)
#define GICD_CTLR_V3_ARE (1u << 4)
// v3 redistributor: RD_base frame, then the SGI frame; a VLPI-capable one has two more.
#define GICR_TYPER 0x0008
#define GICR_WAKER 0x0014
#define GICR_TYPER_VLPIS (1ull << 1)
#define GICR_TYPER_LAST (1ull << 4)
#define GICR_WAKER_SLEEP (1u << 1)
#define GICR_WAKER_ASLEEP (1u << 2)
// v2 CPU interface.
#define GICC_CTLR 0x0000
#define GICC_PMR 0x0004
#define GICC_IAR 0x000c
#define GICC_EOIR 0x0010

// GICv3 CPU interface registers by encoding (any assembler takes these).
#define ICC_PMR_EL1 "S3_0_C4_C6_0"
#define ICC_IAR1_EL1 "S3_0_C12_C12_0"
#define ICC_EOIR1_EL1 "S3_0_C12_C12_1"
#define ICC_BPR1_EL1 "S3_0_C12_C12_3"
#define ICC_SRE_EL1 "S3_0_C12_C12_5"
#define ICC_IGRPEN1_EL1 "S3_0_C12_C12_7"

#define SPIN_LIMIT 1000000u

static int g_version;     // 0 until rt_gic_enable_spi found one
static uintptr_t g_gicc;  // v2 CPU interface

#define WRITE_ICC(reg, v) __asm__ volatile("msr " reg ", %0" ::"r"((uint64_t)(v)) : "memory")
#define READ_ICC(reg)                                      \
  ({                                                       \
    uint64_t v_;                                           \
    __asm__ volatile("mrs %0, " reg : "=r"(v_)::"memory"); \
    v_;                                                    \
  })

static bool wait_clear32(uintptr_t reg, uint32_t mask) {
  for (unsigned i = 0; i < SPIN_LIMIT; i++) {
    if ((rt_mmio_read32(reg) & mask) == 0) return true;
  }
  return false;
}

// The SPI's distributor settings common to both versions: level-triggered, middle priority,
// enabled last.
static void spi_common(uintptr_t d, uint32_t intid) {
  const uintptr_t cfg = d + GICD_ICFGR + 4 * (intid / 16);
  rt_mmio_write32(cfg, rt_mmio_read32(cfg) & ~(3u << (2 * (intid % 16))));
  rt_mmio_write8(d + GICD_IPRIORITYR + intid, 0xa0);
}

// This CPU's redistributor (its TYPER affinity is our MPIDR's), 0 if none of the frames is.
static uintptr_t find_redistributor(uintptr_t base, uint64_t size) {
  const uint64_t mpidr = RT_READ_SYSREG(mpidr_el1);
  const uint32_t aff = (uint32_t)(((mpidr >> 32) & 0xff) << 24 | (mpidr & 0xffffff));
  for (uint64_t off = 0; off + 0x20000 <= size;) {
    const uint64_t typer = rt_mmio_read64(base + off + GICR_TYPER);
    if ((uint32_t)(typer >> 32) == aff) return base + off;
    if (typer & GICR_TYPER_LAST) break;
    off += (typer & GICR_TYPER_VLPIS) ? 0x40000 : 0x20000;
  }
  return 0;
}

static int enable_v3(uint32_t intid) {
  uint64_t d, dsize, r, rsize;
  if (!rt_device_reg("arm,gic-v3", 0, &d, &dsize) || !rt_device_reg("arm,gic-v3", 1, &r, &rsize)) {
    return 0;
  }
  const uintptr_t rd = find_redistributor((uintptr_t)r, rsize);
  if (rd == 0) {
    rt_printf("gic: no redistributor for this CPU\n");
    return 0;
  }
  // Wake the redistributor (KVM's reads as awake already).
  rt_mmio_write32(rd + GICR_WAKER, rt_mmio_read32(rd + GICR_WAKER) & ~GICR_WAKER_SLEEP);
  if (!wait_clear32(rd + GICR_WAKER, GICR_WAKER_ASLEEP)) return 0;
  rt_mmio_write32(d + GICD_CTLR, GICD_CTLR_V3_ARE | GICD_CTLR_V3_ENABLE_G1);
  if (!wait_clear32(d + GICD_CTLR, GICD_CTLR_RWP)) return 0;
  const uintptr_t grp = d + GICD_IGROUPR + 4 * (intid / 32);
  rt_mmio_write32(grp, rt_mmio_read32(grp) | 1u << (intid % 32));  // group 1
  spi_common(d, intid);
  const uint64_t mpidr = RT_READ_SYSREG(mpidr_el1);
  rt_mmio_write64(d + GICD_IROUTER + 8 * intid, mpidr & 0xff00ffffffull);  // to this CPU
  rt_mmio_write32(d + GICD_ISENABLER + 4 * (intid / 32), 1u << (intid % 32));
  if (!wait_clear32(d + GICD_CTLR, GICD_CTLR_RWP)) return 0;
  // The CPU interface through system registers: every priority unmasked, group 1 on.
  WRITE_ICC(ICC_SRE_EL1, READ_ICC(ICC_SRE_EL1) | 1);
  __asm__ volatile("isb" ::: "memory");
  WRITE_ICC(ICC_PMR_EL1, 0xff);
  WRITE_ICC(ICC_BPR1_EL1, 0);
  WRITE_ICC(ICC_IGRPEN1_EL1, 1);
  __asm__ volatile("isb" ::: "memory");
  return 3;
}

static int enable_v2(uint32_t intid) {
  uint64_t d, dsize, c, csize;
  if (!rt_device_reg("arm,cortex-a15-gic", 0, &d, &dsize) ||
      !rt_device_reg("arm,cortex-a15-gic", 1, &c, &csize)) {
    return 0;
  }
  g_gicc = (uintptr_t)c;
  rt_mmio_write32(d + GICD_CTLR, 0);
  spi_common(d, intid);
  rt_mmio_write8(d + GICD_ITARGETSR + intid, 0x01);  // CPU interface 0: the payload's one vCPU
  rt_mmio_write32(d + GICD_ISENABLER + 4 * (intid / 32), 1u << (intid % 32));
  rt_mmio_write32(d + GICD_CTLR, 1);
  rt_mmio_write32(g_gicc + GICC_PMR, 0xff);
  rt_mmio_write32(g_gicc + GICC_CTLR, 1);
  return 2;
}

int rt_gic_enable_spi(uint32_t intid) {
  if (intid < 32 || intid >= 1020) return 0;
  g_version = enable_v3(intid);
  if (g_version == 0) g_version = enable_v2(intid);
  return g_version;
}

uint32_t rt_gic_ack(void) {
  if (g_version == 3) return (uint32_t)READ_ICC(ICC_IAR1_EL1) & 0xffffff;
  if (g_version == 2) return rt_mmio_read32(g_gicc + GICC_IAR) & 0x3ff;
  return 1023;
}

void rt_gic_eoi(uint32_t intid) {
  if (intid >= 1020) return;  // spurious: nothing to end
  if (g_version == 3) {
    WRITE_ICC(ICC_EOIR1_EL1, intid);
    __asm__ volatile("isb" ::: "memory");
  } else if (g_version == 2) {
    rt_mmio_write32(g_gicc + GICC_EOIR, intid);
  }
}
