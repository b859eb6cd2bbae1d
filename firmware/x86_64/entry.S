/*
 * PVH entry for edgevisor payloads (x86_64).
 *
 * Entered at _start (advertised through the XEN_ELFNOTE_PHYS32_ENTRY note) in 32-bit protected
 * mode, paging off, flat CS/DS/ES/SS, EBX = physical address of struct hvm_start_info. GDTR and
 * IDTR are unspecified. We:
 *   1. load our own GDT and reload every segment register,
 *   2. point CR3 at the identity map of the low 4 GiB with 2 MiB pages, which the assembler
 *      builds as initialized data (the top GiB, the MMIO hole, is mapped uncached),
 *   3. rely on the ELF loader to have zeroed .bss (the stack lives there),
 *   4. enable PAE, EFER.LME and paging, far-jump to 64-bit code,
 *   5. switch to the 64 KiB boot stack and call runtime_start(start_info).
 * Interrupts stay disabled throughout.
 */

#define SEL_CODE64 0x08
#define SEL_DATA 0x10
#define SEL_CODE32 0x18

#define CR0_PE 0x00000001
#define CR0_PG 0x80000000
#define CR4_PAE 0x00000020
#define MSR_EFER 0xc0000080
#define EFER_LME 0x00000100

#define PTE_P 0x001
#define PTE_RW 0x002
#define PTE_PWT 0x008
#define PTE_PCD 0x010
#define PTE_PS 0x080

#define BOOT_STACK_SIZE 0x10000

/* ---- PVH ELF note ------------------------------------------------------------------------ */
	.section .note.Xen, "a", @note
	.balign 4
	.long 4                 /* n_namesz: "Xen\0" */
	.long 4                 /* n_descsz: 32-bit physical entry */
	.long 18                /* n_type: XEN_ELFNOTE_PHYS32_ENTRY */
	.asciz "Xen"
	.balign 4
	.long _start
	.balign 4

/* ---- 32-bit entry ------------------------------------------------------------------------ */
	.section .text.entry, "ax", @progbits
	.code32
	.globl _start
	.type _start, @function
_start:
	cli
	cld
	/* EBX (start_info) is preserved in EBX until the call into C. */

	lgdt gdt_desc
	ljmp $SEL_CODE32, $1f
1:
	movl $SEL_DATA, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss
	movl %eax, %fs
	movl %eax, %gs

	/*
	 * No guest-side .bss zeroing and no page-table loops: every ELF loader (edgevisor's, QEMU's)
	 * zeroes p_memsz beyond p_filesz, and the tables below are built by the assembler. Before
	 * paging is on, a software-virtualized host (PVM) emulates each instruction, so the 98 KiB
	 * `rep stosb` plus the 2048-entry loop cost ~35 ms there; now this path is a dozen
	 * instructions.
	 */

	/* PAE on, CR3 = PML4, EFER.LME on, then paging (-> compatibility mode). */
	movl %cr4, %eax
	orl $CR4_PAE, %eax
	movl %eax, %cr4

	movl $rt_boot_pml4, %eax
	movl %eax, %cr3

	movl $MSR_EFER, %ecx
	rdmsr
	orl $EFER_LME, %eax
	wrmsr

	movl %cr0, %eax
	orl $(CR0_PG | CR0_PE), %eax
	movl %eax, %cr0

	ljmp $SEL_CODE64, $long_mode_entry
	.size _start, . - _start

/* ---- 64-bit entry ------------------------------------------------------------------------ */
	.code64
	.type long_mode_entry, @function
long_mode_entry:
	movl $SEL_DATA, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss
	movl %eax, %fs
	movl %eax, %gs

	movq $rt_boot_stack_top, %rsp
	xorl %ebp, %ebp
	movl %ebx, %edi          /* zero-extends: start_info is a 32-bit physical address */
	call runtime_start
5:
	cli
	hlt
	jmp 5b
	.size long_mode_entry, . - long_mode_entry

/* ---- GDT --------------------------------------------------------------------------------- */
	.section .rodata
	.balign 16
gdt:
	.quad 0x0000000000000000  /* 0x00 null */
	.quad 0x00af9b000000ffff  /* 0x08 64-bit code, DPL0, accessed */
	.quad 0x00cf93000000ffff  /* 0x10 flat data, DPL0, accessed */
	.quad 0x00cf9b000000ffff  /* 0x18 flat 32-bit code, DPL0, accessed */
gdt_end:

	.balign 8
	.globl rt_boot_gdt_desc
rt_boot_gdt_desc:
gdt_desc:
	.word gdt_end - gdt - 1
	.quad gdt

/* ---- Page tables: initialized data, so entry does not have to build them ----------------- */
	.section .data.pagetables, "aw", @progbits
	.balign 4096
	.globl rt_boot_pml4, rt_boot_pdpt, rt_boot_pd
rt_boot_pml4:
	.quad rt_boot_pdpt + (PTE_P | PTE_RW)
	.fill 511, 8, 0
rt_boot_pdpt:
	.quad rt_boot_pd + (PTE_P | PTE_RW)
	.quad rt_boot_pd + 0x1000 + (PTE_P | PTE_RW)
	.quad rt_boot_pd + 0x2000 + (PTE_P | PTE_RW)
	.quad rt_boot_pd + 0x3000 + (PTE_P | PTE_RW)
	.fill 508, 8, 0
rt_boot_pd:
	/* [0, 3 GiB): RAM, write-back. */
	.set pde, 0
	.rept 1536
	.quad (pde << 21) | (PTE_P | PTE_RW | PTE_PS)
	.set pde, pde + 1
	.endr
	/* [3 GiB, 4 GiB): the MMIO hole, uncached. */
	.rept 512
	.quad (pde << 21) | (PTE_P | PTE_RW | PTE_PS | PTE_PWT | PTE_PCD)
	.set pde, pde + 1
	.endr

	.section .bss.stack, "aw", @nobits
	.balign 16
	.globl rt_boot_stack_bottom, rt_boot_stack_top
rt_boot_stack_bottom:
	.skip BOOT_STACK_SIZE
rt_boot_stack_top:

	.section .note.GNU-stack, "", @progbits
