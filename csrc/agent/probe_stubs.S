/*
 * The two shared entry stubs of every inline hook (x86-64, SysV).
 *
 * Both save all registers as a kernel `struct pt_regs` on the stack, call C,
 * restore everything including the flags, and never touch the red zone of
 * the probed code (the per-hook trampoline steps over it first).
 *
 * Vector registers must be kept too (floating-point arguments and results,
 * and, with GCC's interprocedural register allocation, any register a caller
 * knows its local callee leaves alone). The stubs do not touch them and the
 * C they call is built general-regs-only; programs that may reach C or libc
 * (helpers) or clear frames with xmm0 run inside bpftime_vectors_saved_call,
 * which keeps xmm0-15. The upper halves of ymm/zmm registers are not kept.
 *
 * struct pt_regs offsets: r15 0, r14 8, r13 16, r12 24, bp 32, bx 40, r11 48,
 * r10 56, r9 64, r8 72, ax 80, cx 88, dx 96, si 104, di 112, orig_ax 120,
 * ip 128, cs 136, flags 144, sp 152, ss 160; 168 bytes.
 */
	.text
	.intel_syntax noprefix

.macro SAVE_REGS
	mov [rsp + 112], rdi
	mov [rsp + 104], rsi
	mov [rsp + 96], rdx
	mov [rsp + 88], rcx
	mov [rsp + 80], rax
	mov [rsp + 72], r8
	mov [rsp + 64], r9
	mov [rsp + 56], r10
	mov [rsp + 48], r11
	mov [rsp + 40], rbx
	mov [rsp + 32], rbp
	mov [rsp + 24], r12
	mov [rsp + 16], r13
	mov [rsp + 8], r14
	mov [rsp + 0], r15
	/* flags = the arithmetic flags (lahf, seto) | IF | the reserved bit; pushfq costs more. */
	lahf
	seto al
	movzx ecx, al
	shl ecx, 11
	movzx eax, ah
	or eax, ecx
	or eax, 0x202
	mov [rsp + 144], rax
	mov qword ptr [rsp + 120], -1
	mov qword ptr [rsp + 136], 0x33
	mov qword ptr [rsp + 160], 0x2b
.endm

/*
 * The arithmetic flags come back through sahf (SF ZF AF PF CF, the low byte
 * of the saved flags) and an add that overflows exactly when OF (bit 11) was
 * set: popfq costs far more, and the other flags (DF, IF, TF) are never
 * changed by the C code. Programs cannot write pt_regs (read-only context).
 */
.macro RESTORE_REGS
	mov al, [rsp + 145]
	and al, 8
	add al, 0x7f
	mov ah, [rsp + 144]
	sahf
	mov rdi, [rsp + 112]
	mov rsi, [rsp + 104]
	mov rdx, [rsp + 96]
	mov rcx, [rsp + 88]
	mov rax, [rsp + 80]
	mov r8, [rsp + 72]
	mov r9, [rsp + 64]
	mov r10, [rsp + 56]
	mov r11, [rsp + 48]
	mov rbx, [rsp + 40]
	/* rbp and r12-r15 are callee-saved: the C code gave them back unchanged. */
.endm

/*
 * Called from a hook's trampoline: [rsp] = return into the trampoline,
 * [rsp + 8] = struct hook *, then the 128-byte red zone, then the probed
 * code's stack (its rsp = our rsp + 144 on entry).
 */
	.globl bpftime_probe_entry_stub
	.hidden bpftime_probe_entry_stub
	.type bpftime_probe_entry_stub, @function
bpftime_probe_entry_stub:
	lea rsp, [rsp - 168]
	SAVE_REGS
	lea rax, [rsp + 312]
	mov [rsp + 152], rax
	mov rdi, [rsp + 176]
	mov rsi, rsp
	mov rbx, rsp
	and rsp, -16
	call bpftime_probe_enter
	mov rsp, rbx
	test rax, rax
	jnz 1f
	RESTORE_REGS
	lea rsp, [rsp + 168]
	ret
	/*
	 * A program returned for the function (bpf_override_return, a replace
	 * link; C put the value in the saved rax): every register back, then
	 * return to the function's caller from the probed code's stack (our frame,
	 * the trampoline's return and hook slots, the 128-byte red zone skipped).
	 */
1:	RESTORE_REGS
	lea rsp, [rsp + 168 + 144]
	ret
	.size bpftime_probe_entry_stub, . - bpftime_probe_entry_stub

/*
 * The entry of a hook with only return probes: no struct pt_regs, just the
 * registers C may change (and the arithmetic flags), then C swaps the
 * return address at the probed code's rsp (our rsp + 144 on entry).
 */
	.globl bpftime_probe_retonly_stub
	.hidden bpftime_probe_retonly_stub
	.type bpftime_probe_retonly_stub, @function
bpftime_probe_retonly_stub:
	lea rsp, [rsp - 88]
	mov [rsp + 0], rax
	mov [rsp + 8], rcx
	mov [rsp + 16], rdx
	mov [rsp + 24], rsi
	mov [rsp + 32], rdi
	mov [rsp + 40], r8
	mov [rsp + 48], r9
	mov [rsp + 56], r10
	mov [rsp + 64], r11
	lahf
	seto al
	mov [rsp + 72], rax      /* ah = SF ZF AF PF CF, al = OF */
	mov rdi, [rsp + 96]      /* the hook */
	lea rsi, [rsp + 232]     /* the slot holding the return address */
	mov [rsp + 80], rbx
	mov rbx, rsp
	and rsp, -16
	call bpftime_probe_push_return
	mov rsp, rbx
	mov rbx, [rsp + 80]
	mov rax, [rsp + 72]
	add al, 0x7f             /* OF again */
	sahf
	mov rax, [rsp + 0]
	mov rcx, [rsp + 8]
	mov rdx, [rsp + 16]
	mov rsi, [rsp + 24]
	mov rdi, [rsp + 32]
	mov r8, [rsp + 40]
	mov r9, [rsp + 48]
	mov r10, [rsp + 56]
	mov r11, [rsp + 64]
	lea rsp, [rsp + 88]
	ret
	.size bpftime_probe_retonly_stub, . - bpftime_probe_retonly_stub

/*
 * Where a probed function with a uretprobe returns to (its return address
 * was replaced on entry). C hands back the real return address, found on
 * this thread's shadow stack, and we jump there through r11, which no
 * function returns a value in: a `ret` would pop a return-stack-buffer
 * entry that belongs to the caller and mispredict its own return too.
 */
	.globl bpftime_probe_return_stub
	.hidden bpftime_probe_return_stub
	.type bpftime_probe_return_stub, @function
bpftime_probe_return_stub:
	lea rsp, [rsp - 168]
	SAVE_REGS
	lea rax, [rsp + 168]
	mov [rsp + 152], rax
	mov rdi, rsp
	mov rbx, rsp
	and rsp, -16
	call bpftime_probe_return
	mov rsp, rbx
	mov [rsp + 48], rax        /* r11 := the real return address */
	RESTORE_REGS
	lea rsp, [rsp + 168]
	jmp r11
	.size bpftime_probe_return_stub, . - bpftime_probe_return_stub

/*
 * uint64_t bpftime_vectors_saved_call(uint64_t (*fn)(void *), void *arg):
 * fn(arg) with xmm0-15 as they were before, for C that may use them.
 */
	.globl bpftime_vectors_saved_call
	.hidden bpftime_vectors_saved_call
	.type bpftime_vectors_saved_call, @function
bpftime_vectors_saved_call:
	push rbp
	mov rbp, rsp
	sub rsp, 256
	and rsp, -16
	.irp i, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15
	movdqa [rsp + 16 * \i], xmm\i
	.endr
	mov rax, rdi
	mov rdi, rsi
	call rax
	.irp i, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15
	movdqa xmm\i, [rsp + 16 * \i]
	.endr
	mov rsp, rbp
	pop rbp
	ret
	.size bpftime_vectors_saved_call, . - bpftime_vectors_saved_call

	.section .note.GNU-stack, "", @progbits
