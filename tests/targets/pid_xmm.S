/*
 * For the pid/tgid cache test (pid_target.c): xmm_round(pid, tid) fills xmm0-15 with known
 * patterns, calls xmm_probed (probed at entry and return), and returns 1 when any of them
 * changed across the call, else 0. xmm_probed(pid, tid) adds 1 to xmm_entry_bad when any
 * differs at its entry, touches no vector register, and returns pid << 32 | tid.
 */
	.section .rodata
	.balign 16
xmm_patterns:
	.set i, 1
	.rept 32
	.quad 0x5a5a5a5a00000000 + i * 0x01010101
	.set i, i + 1
	.endr

	.bss
	.balign 8
	.globl xmm_entry_bad
xmm_entry_bad:
	.quad 0

	.text
/* eax = 1 when the 256 bytes at rsp+8 differ from xmm_patterns, else 0; clobbers rcx, rdx, r8. */
differs:
	lea xmm_patterns(%rip), %rcx
	xor %eax, %eax
	xor %edx, %edx
1:	mov 8(%rsp,%rdx,8), %r8
	xor (%rcx,%rdx,8), %r8
	or %r8, %rax
	inc %rdx
	cmp $32, %rdx
	jne 1b
	test %rax, %rax
	setne %al
	movzx %al, %eax
	ret

.macro STORE_XMM
	.irp n, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15
	movdqu %xmm\n, 16 * \n(%rsp)
	.endr
.endm

	.globl xmm_probed
	.type xmm_probed, @function
xmm_probed:
	sub $264, %rsp
	STORE_XMM
	call differs
	add %rax, xmm_entry_bad(%rip)
	add $264, %rsp
	mov %rdi, %rax
	shl $32, %rax
	mov %esi, %esi
	or %rsi, %rax
	ret
	.size xmm_probed, . - xmm_probed

	.globl xmm_round
	.type xmm_round, @function
xmm_round:
	push %rbx
	lea xmm_patterns(%rip), %rcx
	.irp n, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15
	movdqu 16 * \n(%rcx), %xmm\n
	.endr
	call xmm_probed
	sub $256, %rsp
	STORE_XMM
	call differs
	add $256, %rsp
	pop %rbx
	ret
	.size xmm_round, . - xmm_round

	.section .note.GNU-stack, "", @progbits
