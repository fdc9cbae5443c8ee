/*
 * For tests/probe_fast_test.ts: functions to probe, and regs_call, which
 * calls one with every general register and the flags set and tells what came
 * back changed.
 */
	.intel_syntax noprefix
	.text

/* Functions of a 5-byte nop and a ret: they change nothing themselves. */
.macro PROBED name
	.globl \name
	.type \name, @function
\name:
	nop DWORD PTR [rax + rax * 1 + 0]
	ret
	.size \name, . - \name
.endm
	PROBED fast_probed
	PROBED fast_probed_noctx
	PROBED fast_probed_ret
	PROBED fast_probed_fault
	PROBED fast_probed_fault_ctx

/*
 * uint64_t regs_call(void (*fn)(void), uint64_t seed, uint64_t flags, uint64_t check_r11):
 * calls fn with rax = seed + 1, rbx = seed + 2, rcx + 3, rdx + 4, rdi + 5, rbp + 6,
 * r8..r15 + 7..14, rsi = seed, and the flags register = flags (CF PF AF ZF SF DF OF
 * are compared). 0 when all came back unchanged, else a bit per register that changed
 * (the order above, rsi bit 15) and bit 16 for the flags. r11 is left out unless
 * check_r11 (a return probe hands the function's return to its caller through r11).
 */
.macro CHECK reg, idx, bit
	lea rax, [\reg - \idx]
	cmp rax, [rsp + 24]
	je 1f
	or QWORD PTR [rsp + 48], \bit
1:
.endm
	.globl regs_call
	.type regs_call, @function
regs_call:
	push rbx
	push rbp
	push r12
	push r13
	push r14
	push r15
	sub rsp, 72                /* [0] fn, [8] flags, [16] seed, [24] check_r11, [32] rax, [40] mask */
	mov [rsp], rdi
	mov [rsp + 8], rdx
	mov [rsp + 16], rsi
	mov [rsp + 24], rcx
	mov QWORD PTR [rsp + 40], 0
	push QWORD PTR [rsp + 8]
	popfq
	lea rax, [rsi + 1]
	lea rbx, [rsi + 2]
	lea rcx, [rsi + 3]
	lea rdx, [rsi + 4]
	lea rdi, [rsi + 5]
	lea rbp, [rsi + 6]
	lea r8, [rsi + 7]
	lea r9, [rsi + 8]
	lea r10, [rsi + 9]
	lea r11, [rsi + 10]
	lea r12, [rsi + 11]
	lea r13, [rsi + 12]
	lea r14, [rsi + 13]
	lea r15, [rsi + 14]
	call QWORD PTR [rsp]
	pushfq                     /* from here on the frame is 8 further */
	mov [rsp + 40], rax
	CHECK rbx, 2, 0x2
	CHECK rcx, 3, 0x4
	CHECK rdx, 4, 0x8
	CHECK rdi, 5, 0x10
	CHECK rbp, 6, 0x20
	CHECK r8, 7, 0x40
	CHECK r9, 8, 0x80
	CHECK r10, 9, 0x100
	cmp QWORD PTR [rsp + 32], 0
	je 2f
	CHECK r11, 10, 0x200
2:	CHECK r12, 11, 0x400
	CHECK r13, 12, 0x800
	CHECK r14, 13, 0x1000
	CHECK r15, 14, 0x2000
	CHECK rsi, 0, 0x8000
	mov rax, [rsp + 40]
	CHECK rax, 1, 0x1
	pop rax                    /* the flags after the call */
	cld
	xor rax, [rsp + 8]
	and rax, 0xcd5             /* CF PF AF ZF SF DF OF */
	jz 3f
	or QWORD PTR [rsp + 40], 0x10000
3:	mov rax, [rsp + 40]
	add rsp, 72
	pop r15
	pop r14
	pop r13
	pop r12
	pop rbp
	pop rbx
	ret
	.size regs_call, . - regs_call

	.section .note.GNU-stack, "", @progbits
