/*
 * Exception stubs for vectors 0..31. Each stub pushes a dummy error code (when the CPU does not
 * push one) and the vector number, then the common path saves the general registers and calls
 * rt_trap(struct rt_trap_frame *), which prints a report and exits with code 0x7f.
 */

	.text
	.code64

.macro TRAP_STUB vec, has_err
	.balign 16
trap_stub_\vec:
	.if \has_err == 0
	pushq $0
	.endif
	pushq $\vec
	jmp trap_common
.endm

/* Vectors for which the CPU pushes an error code: 8, 10-14, 17, 21, 29, 30. */
	.irp vec, 0,1,2,3,4,5,6,7,9,15,16,18,19,20,22,23,24,25,26,27,28,31
	TRAP_STUB \vec, 0
	.endr
	.irp vec, 8,10,11,12,13,14,17,21,29,30
	TRAP_STUB \vec, 1
	.endr

	.balign 16
	.type trap_common, @function
trap_common:
	/* Layout must match struct rt_trap_frame in arch.c (lowest address first). */
	pushq %rax
	pushq %rbx
	pushq %rcx
	pushq %rdx
	pushq %rsi
	pushq %rdi
	pushq %rbp
	pushq %r8
	pushq %r9
	pushq %r10
	pushq %r11
	pushq %r12
	pushq %r13
	pushq %r14
	pushq %r15
	movq %rsp, %rdi
	andq $-16, %rsp
	call rt_trap
1:
	cli
	hlt
	jmp 1b
	.size trap_common, . - trap_common

	.section .rodata
	.balign 8
	.globl rt_trap_stubs
rt_trap_stubs:
	.irp vec, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
	.quad trap_stub_\vec
	.endr

	.section .note.GNU-stack, "", @progbits
