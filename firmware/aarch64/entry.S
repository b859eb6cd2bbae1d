/*
 * arm64 entry for edgevisor payloads: the image is a Linux arm64 Image (booting.rst), so a VMM
 * loads it as it loads a kernel: at RAM base + text_offset (0), with x0 = the device tree's
 * physical address, the MMU and D-cache off, at EL1 (or EL2), interrupts masked. We:
 *   1. check that we run where we were linked (0x80000000: edgevisor's RAM base),
 *   2. enable FP/SIMD (CPACR_EL1.FPEN) so that compiler-generated code may use it,
 *   3. point TTBR0_EL1 at an identity map of the low 512 GiB with 1 GiB blocks, built by the
 *      assembler as initialized data: [0, 2 GiB) Device-nGnRnE (the devices), the rest normal
 *      write-back memory (RAM). Normal cacheable memory is what makes our view of the virtqueues
 *      coherent with the VMM's: with the MMU off every access is non-cacheable, while the host
 *      reads and writes guest RAM through its cache,
 *   4. turn on the MMU and caches, install the exception vectors, zero .bss,
 *   5. switch to the 64 KiB boot stack and call runtime_start(fdt).
 * Only CPU 0 runs: secondaries stay off until someone sends PSCI CPU_ON, which we never do.
 */

#define BOOT_STACK_SIZE 0x10000

/* Block descriptors (level 1, 1 GiB): valid block, AttrIndx, SH inner, AF, PXN/UXN. */
#define DESC_BLOCK 0x1
#define DESC_ATTR(i) ((i) << 2)
#define DESC_SH_INNER (3 << 8)
#define DESC_AF (1 << 10)
#define DESC_XN (3 << 53)
#define MAIR_VALUE 0xff00 /* attr0 Device-nGnRnE, attr1 Normal inner/outer write-back */
#define DEVICE_BLOCK (DESC_BLOCK | DESC_ATTR(0) | DESC_AF | DESC_XN)
#define NORMAL_BLOCK (DESC_BLOCK | DESC_ATTR(1) | DESC_SH_INNER | DESC_AF)

/* TCR_EL1: T0SZ 25 (39-bit VA, walks start at level 1), inner/outer WB-WA walks, inner shareable,
 * 4 KiB granule; TTBR1 walks off (EPD1) with a valid TG1 encoding; IPS filled in from
 * ID_AA64MMFR0_EL1.PARange at run time. */
#define TCR_VALUE ((25 << 0) | (1 << 8) | (1 << 10) | (3 << 12) | (1 << 23) | (2 << 30))

#define SCTLR_M (1 << 0)
#define SCTLR_A (1 << 1)
#define SCTLR_C (1 << 2)
#define SCTLR_I (1 << 12)
#define SCTLR_WXN (1 << 19)
#define SCTLR_EE (1 << 25)

	.section .text.entry, "ax", %progbits
	.globl _start
	.type _start, %function
_start:
	/* The Image header (64 bytes). code0 branches over it. */
	b primary_entry                 /* code0 */
	.long 0                         /* code1 */
	.quad 0                         /* text_offset */
	.quad __image_size              /* image_size: everything, .bss and the stack included */
	.quad (1 << 1)                  /* flags: little-endian, 4 KiB pages, near the RAM base */
	.quad 0, 0, 0                   /* res2-res4 */
	.ascii "ARM\x64"                /* magic */
	.long 0                         /* res5: no PE/COFF header */

primary_entry:
	msr daifset, #0xf
	mov x19, x0                     /* the device tree, kept for runtime_start */

	/* Linked at 0x80000000 and not position-independent: refuse to run anywhere else. */
	adr x1, _start
	ldr x2, =_start
	cmp x1, x2
	b.ne wrong_address

	/* An EL2 entry (a VMM may give us one) drops to EL1; KVM guests start at EL1. */
	mrs x1, CurrentEL
	cmp x1, #(2 << 2)
	b.ne 1f
	mov x1, #(1 << 31)              /* HCR_EL2.RW: EL1 is AArch64 */
	msr hcr_el2, x1
	mov x1, #0x3c5                  /* SPSR: EL1h, DAIF masked */
	msr spsr_el2, x1
	adr x1, 1f
	msr elr_el2, x1
	eret
1:
	mov x1, #(3 << 20)              /* CPACR_EL1.FPEN: no FP/SIMD traps */
	msr cpacr_el1, x1

	ldr x1, =MAIR_VALUE
	msr mair_el1, x1
	mrs x2, id_aa64mmfr0_el1
	and x2, x2, #0x7                /* PARange -> TCR_EL1.IPS */
	cmp x2, #5
	mov x3, #5
	csel x2, x2, x3, ls
	ldr x1, =TCR_VALUE
	orr x1, x1, x2, lsl #32
	msr tcr_el1, x1
	adr x1, rt_boot_l1
	msr ttbr0_el1, x1
	isb
	tlbi vmalle1
	ic iallu
	dsb nsh
	isb
	mrs x1, sctlr_el1
	ldr x2, =(SCTLR_A | SCTLR_WXN | SCTLR_EE)
	bic x1, x1, x2
	ldr x2, =(SCTLR_M | SCTLR_C | SCTLR_I)
	orr x1, x1, x2
	msr sctlr_el1, x1
	isb

	adr x1, rt_vectors
	msr vbar_el1, x1
	isb

	/* Zero .bss (the stack included; nothing is on it yet). */
	ldr x1, =__bss_start
	ldr x2, =__bss_end
2:	cmp x1, x2
	b.hs 3f
	stp xzr, xzr, [x1], #16
	b 2b
3:
	ldr x1, =rt_boot_stack_top
	mov sp, x1
	mov x29, #0
	mov x30, #0
	mov x0, x19
	bl runtime_start
	b rt_halt

	/* Loaded somewhere else: nothing here may be touched; power off through PSCI. */
wrong_address:
	ldr w0, =0x84000008             /* PSCI SYSTEM_OFF */
	hvc #0
4:	wfi
	b 4b
	.size _start, . - _start
	.ltorg

/* ---- Exception vectors: every one reports and exits ------------------------------------- */
	.section .text.vectors, "ax", %progbits
	.balign 2048
	.globl rt_vectors
rt_vectors:
	.irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
	.balign 128
	stp x29, x30, [sp, #-16]!
	mov x0, #\n
	mov x1, sp
	b rt_aarch64_trap
	.endr

/* ---- Page tables: initialized data ---------------------------------------------------------- */
	.section .data.pagetables, "aw", %progbits
	.balign 4096
	.globl rt_boot_l1
rt_boot_l1:
	.set gib, 0
	.rept 512
	.if gib < 2
	.quad (gib << 30) | DEVICE_BLOCK
	.else
	.quad (gib << 30) | NORMAL_BLOCK
	.endif
	.set gib, gib + 1
	.endr

	.section .bss.stack, "aw", %nobits
	.balign 16
	.globl rt_boot_stack_bottom, rt_boot_stack_top
rt_boot_stack_bottom:
	.skip BOOT_STACK_SIZE
rt_boot_stack_top:

	.section .note.GNU-stack, "", %progbits
