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
 *
 * The fast path (probe_fast.h): bpftime_probe_fast_stub and the return stubs
 * run a site's only program themselves when they can (FAST_RUN), and call C
 * for everything else.
 */
#include "probe_fast.h"

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
 * Runs the program of the struct probe_fast in r11 on the struct pt_regs at
 * rsp, with [rsp + 168] free (r11 is kept there), as C would
 * (probes.c, probe_exec.h): to \skip when a probe already runs on this thread
 * (in_probe: a program's own code, or a signal handler inside it, called a
 * hooked function), to \slow (nothing changed yet) when C must run it (a run
 * in progress, this thread's context not set up for the program), to \rare
 * with rax = r0 after a run that faulted, tail-called or asked to override
 * (in_probe still held), on past the macro otherwise. Keeps rdi, rbp and
 * r12-r15; clobbers the other registers and the flags (all saved).
 * calls=0: the program calls nothing (no helper can ask for an override).
 */
.macro FAST_RUN slow, rare, skip, calls=1
	mov rax, QWORD PTR in_probe@gottpoff[rip]
	cmp DWORD PTR fs:[rax], 0
	jne \skip
	mov rcx, QWORD PTR current_run@gottpoff[rip]
	cmp QWORD PTR fs:[rcx], 0
	jne \slow
	mov rdx, [r11 + PF_SERIAL_TPOFF]
	mov rsi, [r11 + PF_SERIAL]
	cmp QWORD PTR fs:[rdx], rsi
	jne \slow
	mov rdx, [r11 + PF_CTX_TPOFF]
	cmp QWORD PTR fs:[rdx + CTX_MEM_LIMIT0], PT_REGS_SIZE
	jne \slow
	/* This thread's context was set up for the program: only these fields differ (probe_exec.h). */
	mov DWORD PTR fs:[rax], 1
	add rdx, QWORD PTR fs:0
	mov [rdx + CTX_MEM_LO], rsp
	mov rsi, [r11 + PF_INFO]
	mov [rdx + CTX_ATTACH], rsi
	mov QWORD PTR [rdx + CTX_OUTER], 0
	mov QWORD PTR fs:[rcx], rdx
	.if \calls
	mov rax, QWORD PTR override_request@gottpoff[rip]
	mov BYTE PTR fs:[rax + OVERRIDE_REQUESTED], 0
	.endif
	mov [rsp + 168], r11
	mov rdi, rsp
	mov esi, PT_REGS_SIZE
	mov rbx, rsp
	and rsp, -16
	call [r11 + PF_ENTRY]
	mov rsp, rbx
	mov rcx, QWORD PTR current_run@gottpoff[rip]
	mov QWORD PTR fs:[rcx], 0
	mov r11, [rsp + 168]
	mov rdx, [r11 + PF_CTX_TPOFF]
	cmp QWORD PTR fs:[rdx + CTX_FAULTED], 0
	jne \rare
	.if \calls
	mov rcx, QWORD PTR override_request@gottpoff[rip]
	cmp BYTE PTR fs:[rcx + OVERRIDE_REQUESTED], 0
	jne \rare
	.endif
	mov rcx, QWORD PTR in_probe@gottpoff[rip]
	mov DWORD PTR fs:[rcx], 0
.endm

/*
 * C runs the programs (bpftime_probe_enter) for a fast stub (frame: the
 * struct pt_regs, complete, and FAST_RUN's slot; the hook at [rsp + 184]),
 * and the stub returns, to the probed code or, when a program returned for
 * the function, to its caller (see bpftime_probe_entry_stub).
 */
.macro ENTER_SLOW_176
	mov rdi, [rsp + 184]
	mov rsi, rsp
	mov rbx, rsp
	and rsp, -16
	call bpftime_probe_enter
	mov rsp, rbx
	test rax, rax
	jnz 91f
	RESTORE_REGS
	lea rsp, [rsp + 176]
	ret
91:	RESTORE_REGS
	lea rsp, [rsp + 176 + 144]
	ret
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
 * The entry stub of a hook with entry programs only, which the fast path may
 * run (site->fast, probe_fast.h; NULL: C runs them as for the stub above).
 * Its frame is the struct pt_regs and FAST_RUN's slot: the hook at
 * [rsp + 184], the probed code's rsp = our rsp + 320.
 */
	.globl bpftime_probe_fast_stub
	.hidden bpftime_probe_fast_stub
	.type bpftime_probe_fast_stub, @function
bpftime_probe_fast_stub:
	lea rsp, [rsp - 176]
	SAVE_REGS
	lea rax, [rsp + 320]
	mov [rsp + 152], rax
	mov rdi, [rsp + 184]
	mov r11, [rdi + HOOK_OWNER]
	mov r11, [r11 + SITE_FAST]
	test r11, r11
	jz 2f
	mov rax, [r11 + PF_IP]
	mov [rsp + 128], rax
	FAST_RUN 2f, 3f, 1f
1:	RESTORE_REGS
	lea rsp, [rsp + 176]
	ret
3:	mov rdi, r11
	mov rsi, rsp
	mov rdx, rax
	mov rbx, rsp
	and rsp, -16
	call bpftime_probe_fast_after
	mov rsp, rbx
	test rax, rax
	jz 1b
	RESTORE_REGS
	lea rsp, [rsp + 176 + 144]
	ret
2:	ENTER_SLOW_176
	.size bpftime_probe_fast_stub, . - bpftime_probe_fast_stub

/*
 * bpftime_probe_fast_stub for a program that reads no context (probe_fast.h,
 * no_ctx): only the registers the JIT code may change are kept, in their
 * struct pt_regs places, and the arithmetic flags as lahf and seto give them
 * at [rsp + 160]. The rest of the struct is filled in only for C.
 */
	.globl bpftime_probe_fast_noctx_stub
	.hidden bpftime_probe_fast_noctx_stub
	.type bpftime_probe_fast_noctx_stub, @function
bpftime_probe_fast_noctx_stub:
	lea rsp, [rsp - 176]
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
	lahf
	seto al
	mov [rsp + 160], rax
	mov rdi, [rsp + 184]
	mov r11, [rdi + HOOK_OWNER]
	mov r11, [r11 + SITE_FAST]
	test r11, r11
	jz 2f
	/* A descriptor published since this stub was chosen may be for a program that reads it. */
	cmp QWORD PTR [r11 + PF_NO_CTX], 0
	je 2f
	FAST_RUN 2f, 3f, 1f, 0  /* no_ctx: it calls nothing either (probe_fast.c) */
1:	mov rax, [rsp + 160]
	add al, 0x7f             /* OF again */
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
	lea rsp, [rsp + 176]
	ret
	/* C: the whole struct pt_regs, flags in its format. */
2:	mov [rsp + 32], rbp
	mov [rsp + 24], r12
	mov [rsp + 16], r13
	mov [rsp + 8], r14
	mov [rsp + 0], r15
	movzx ecx, BYTE PTR [rsp + 160]
	shl ecx, 11
	movzx eax, BYTE PTR [rsp + 161]
	or eax, ecx
	or eax, 0x202
	mov [rsp + 144], rax
	mov QWORD PTR [rsp + 120], -1
	mov QWORD PTR [rsp + 136], 0x33
	mov QWORD PTR [rsp + 160], 0x2b
	lea rax, [rsp + 320]
	mov [rsp + 152], rax
	ENTER_SLOW_176
	/* After a run that faulted or asked to override (regs->ax is in its place). */
3:	mov rdi, r11
	mov rsi, rsp
	mov rdx, rax
	mov rbx, rsp
	and rsp, -16
	call bpftime_probe_fast_after
	mov rsp, rbx
	test rax, rax
	jz 1b
	mov rax, [rsp + 160]
	add al, 0x7f
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
	lea rsp, [rsp + 176 + 144]
	ret
	.size bpftime_probe_fast_stub, . - bpftime_probe_fast_stub

/*
 * The entry of a hook with only return probes: no struct pt_regs. The
 * function's return address (at the probed code's rsp, our rsp + 144 on
 * entry) goes on this thread's shadow stack and is replaced by the return
 * stub's, here (saving only what that touches), or by C for a thread's first
 * use of its shadow stack. Frame: rax rcx rdx rsi rdi r8 r9 r10 r11, the
 * flags (ah = SF ZF AF PF CF, al = OF), rbx; the hook at [rsp + 96].
 */
	.globl bpftime_probe_retonly_stub
	.hidden bpftime_probe_retonly_stub
	.type bpftime_probe_retonly_stub, @function
bpftime_probe_retonly_stub:
	lea rsp, [rsp - 88]
	mov [rsp + 0], rax
	mov [rsp + 8], rcx
	mov [rsp + 16], rdx
	lahf
	seto al
	mov [rsp + 72], rax
	mov rax, QWORD PTR in_probe@gottpoff[rip]
	cmp DWORD PTR fs:[rax], 0
	jne 1f                   /* a probe's own code: no return probe (as in C) */
	mov rax, QWORD PTR shadow@gottpoff[rip]
	mov rcx, QWORD PTR fs:[rax]
	test rcx, rcx
	jz 2f
	mov edx, [rcx]
	cmp edx, SHADOW_DEPTH
	jae 1f                   /* too deep: this call goes without its return probe */
	lea eax, [rdx + 1]
	mov [rcx], eax
	lea rdx, [rdx + rdx * 2]
	lea rdx, [rcx + rdx * 8 + SHADOW_ENTRIES]
	mov rax, [rsp + 232]
	mov [rdx], rax           /* ret */
	lea rax, [rsp + 232]
	mov [rdx + 8], rax       /* entry_sp */
	mov rax, [rsp + 96]
	mov rax, [rax + HOOK_OWNER]
	mov [rdx + 16], rax      /* site */
	lea rax, [rip + bpftime_probe_return_stub]
	mov [rsp + 232], rax
1:	mov rax, [rsp + 72]
	add al, 0x7f             /* OF again */
	sahf
	mov rax, [rsp + 0]
	mov rcx, [rsp + 8]
	mov rdx, [rsp + 16]
	lea rsp, [rsp + 88]
	ret
2:	mov [rsp + 24], rsi
	mov [rsp + 32], rdi
	mov [rsp + 40], r8
	mov [rsp + 48], r9
	mov [rsp + 56], r10
	mov [rsp + 64], r11
	mov [rsp + 80], rbx
	mov rdi, [rsp + 96]      /* the hook */
	lea rsi, [rsp + 232]     /* the slot holding the return address */
	mov rbx, rsp
	and rsp, -16
	call bpftime_probe_push_return
	mov rsp, rbx
	mov rbx, [rsp + 80]
	mov rsi, [rsp + 24]
	mov rdi, [rsp + 32]
	mov r8, [rsp + 40]
	mov r9, [rsp + 48]
	mov r10, [rsp + 56]
	mov r11, [rsp + 64]
	jmp 1b
	.size bpftime_probe_retonly_stub, . - bpftime_probe_retonly_stub

/*
 * Where a probed function with a uretprobe returns to (its return address
 * was replaced on entry). The real return address is popped from this
 * thread's shadow stack, and we jump there through r11, which no
 * function returns a value in: a `ret` would pop a return-stack-buffer
 * entry that belongs to the caller and mispredict its own return too.
 */
	.globl bpftime_probe_return_stub
	.hidden bpftime_probe_return_stub
	.type bpftime_probe_return_stub, @function
bpftime_probe_return_stub:
	lea rsp, [rsp - 184]
	SAVE_REGS
	lea rax, [rsp + 184]
	mov [rsp + 152], rax
	/*
	 * The shadow entry on top is this call's when its entry sp (8 below ours
	 * now) matches: popped here when the fast path may run the site's return
	 * program. Otherwise (frames skipped by longjmp, other programs) C does it.
	 */
	mov rax, QWORD PTR shadow@gottpoff[rip]
	mov rcx, QWORD PTR fs:[rax]
	mov edx, [rcx]
	lea rdx, [rdx + rdx * 2]
	lea rdx, [rcx + rdx * 8 + SHADOW_ENTRIES - SHADOW_ENTRY_SIZE]
	lea rsi, [rsp + 176]
	cmp [rdx + 8], rsi
	jne 5f
	mov rdi, [rdx + 16]        /* the site */
	mov r11, [rdi + SITE_RET_FAST]
	test r11, r11
	jz 5f
	sub DWORD PTR [rcx], 1
	mov rax, [rdx]
	mov [rsp + 176], rax       /* the real return address */
	mov [rsp + 128], rax
	FAST_RUN 2f, 3f, 1f
1:	mov rax, [rsp + 176]
	mov [rsp + 48], rax        /* r11 := the real return address */
	RESTORE_REGS
	lea rsp, [rsp + 184]
	jmp r11
2:	mov rsi, rsp               /* rdi: the site (FAST_RUN leaves it until the run) */
	mov rbx, rsp
	and rsp, -16
	call bpftime_probe_return_run
	mov rsp, rbx
	jmp 1b
3:	mov rdi, r11
	mov rsi, rsp
	mov rdx, rax
	mov rbx, rsp
	and rsp, -16
	call bpftime_probe_fast_after
	mov rsp, rbx
	jmp 1b
5:	mov rdi, rsp
	mov rbx, rsp
	and rsp, -16
	call bpftime_probe_return
	mov rsp, rbx
	mov [rsp + 176], rax
	jmp 1b
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
