/*
 * The shared part of the syscall hooks (see syscall_hook.h). A site's
 * trampoline steps over the red zone and calls syscall_hook_stub with the
 * original registers; the stub saves what the syscall reads (and the C
 * calls clobber) in a struct syscall_frame, reports the entry, makes the
 * call from its own syscall instruction, reports the result and returns into
 * the trampoline with every register as the syscall left it (rcx and r11 are
 * clobbered by any syscall; the arithmetic flags are the original ones, as
 * sysret leaves them; DF is clear at a syscall site, as the ABI has it).
 *
 * A call interrupted and restarted by the kernel re-executes our syscall
 * instruction (rip - 2) with rax = orig_rax: the frame is still there.
 *
 * clone, clone3 and vfork do not come back here: the stub restores every
 * register and the original stack pointer and jumps to the site's own copy of
 * the syscall for them (syscall_hook.c), which keeps nothing on the stack.
 * exit, exit_group and rt_sigreturn are made from syscall_hook_noreturn with
 * the original stack pointer (rt_sigreturn reads its frame there).
 */
	.text
	.globl syscall_hook_text_start
	.hidden syscall_hook_text_start
syscall_hook_text_start:

	.globl syscall_hook_stub
	.hidden syscall_hook_stub
	.type syscall_hook_stub, @function
	.p2align 4
syscall_hook_stub:
	/* rsp = original - 136; (rsp) = return into the site's trampoline */
	push %rbp
	mov %rsp, %rbp
	/* The arithmetic flags (lahf; seto): cheaper than pushfq/popfq. rcx, r11: free. */
	mov %rax, %r11
	lahf
	seto %al
	push %rax
	push %r11
	push %r9
	push %r8
	push %r10
	push %rdx
	push %rsi
	push %rdi
	mov %rsp, %rdi          /* struct syscall_frame * */
	and $-16, %rsp
	call syscall_hook_on_enter
	lea -64(%rbp), %rsp
	test %rax, %rax
	jnz .Lspecial
	pop %rdi
	pop %rsi
	pop %rdx
	pop %r10
	pop %r8
	pop %r9
	mov (%rsp), %rax        /* nr: the frame stays below the red zone during the call */
	.globl syscall_hook_insn
	.hidden syscall_hook_insn
syscall_hook_insn:
	syscall
	push %r9
	push %r8
	push %r10
	push %rdx
	push %rsi
	push %rdi
	mov 48(%rsp), %rdi      /* nr */
	mov %rax, 48(%rsp)      /* the result, for the original code */
	mov %rax, %rsi
	mov %rsp, %rdx          /* the arguments, as they are given back */
	and $-16, %rsp
	call syscall_hook_on_exit
	lea -64(%rbp), %rsp
	pop %rdi
	pop %rsi
	pop %rdx
	pop %r10
	pop %r8
	pop %r9
	pop %rcx                /* the result */
	pop %rax                /* the flags: OF from al, the others from ah */
	add $0x7f, %al
	sahf
	mov %rcx, %rax
	pop %rbp
	/*
	 * Back into the trampoline by jump, not ret: the first ret after a system
	 * call mispredicts (the kernel refills the return stack buffer), and the
	 * application's own return after its syscall pays for that already. r11
	 * is clobbered by any syscall.
	 */
	pop %r11
	jmp *%r11

.Lspecial:
	mov %rax, %r11          /* r11 and rcx: clobbered by the syscall anyway */
	pop %rdi
	pop %rsi
	pop %rdx
	pop %r10
	pop %r8
	pop %r9
	/* rsp: nr, flags, rbp, return into the site's trampoline */
	cmp $1, %r11
	je .Lnoreturn
	/* the site's special path i: return address + 13 + 32 * i */
	sub $2, %r11
	shl $5, %r11
	add 24(%rsp), %r11
	add $13, %r11
	mov 8(%rsp), %rax
	add $0x7f, %al
	sahf
	mov (%rsp), %rax
	mov 16(%rsp), %rbp
	lea 160(%rsp), %rsp     /* the original stack pointer */
	/* the special path's syscall is outside the range Syscall User Dispatch always allows */
	mov syscall_hook_sud_selector@gottpoff(%rip), %rcx
	movb $0, %fs:(%rcx)
	jmp *%r11
.Lnoreturn:
	mov (%rsp), %rax
	mov 16(%rsp), %rbp
	lea 160(%rsp), %rsp
	.globl syscall_hook_noreturn
	.hidden syscall_hook_noreturn
syscall_hook_noreturn:
	syscall
	ud2
	.size syscall_hook_stub, . - syscall_hook_stub

/*
 * After a special path's syscall: rsp = original - 144, (rsp) = return into
 * the special path, 8(rsp) = nr; rax = the result. Reports it and returns with
 * every register and the flags kept.
 */
	.globl syscall_hook_exit_stub
	.hidden syscall_hook_exit_stub
	.type syscall_hook_exit_stub, @function
	.p2align 4
syscall_hook_exit_stub:
	mov syscall_hook_sud_selector@gottpoff(%rip), %rcx
	movb $1, %fs:(%rcx)     /* back to blocking (meaningful only where dispatch is on) */
	push %rbp
	mov %rsp, %rbp
	pushfq
	push %rax
	push %r9
	push %r8
	push %r10
	push %rdx
	push %rsi
	push %rdi
	mov 16(%rbp), %rdi
	mov %rax, %rsi
	xor %edx, %edx
	and $-16, %rsp
	call syscall_hook_on_exit
	lea -64(%rbp), %rsp
	pop %rdi
	pop %rsi
	pop %rdx
	pop %r10
	pop %r8
	pop %r9
	pop %rax
	popfq
	pop %rbp
	ret
	.size syscall_hook_exit_stub, . - syscall_hook_exit_stub

/* long syscall_hook_raw(nr, a, b, c, d, e): a syscall of the module's own, never rewritten. */
	.globl syscall_hook_raw
	.hidden syscall_hook_raw
	.type syscall_hook_raw, @function
	.p2align 4
syscall_hook_raw:
	mov %rdi, %rax
	mov %rsi, %rdi
	mov %rdx, %rsi
	mov %rcx, %rdx
	mov %r8, %r10
	mov %r9, %r8
	syscall
	ret
	.size syscall_hook_raw, . - syscall_hook_raw

/*
 * The sa_restorer of the patcher's signal handlers (SIGTRAP, the fixup
 * signal): returning from them must not go through libc's __restore_rt,
 * which may itself hold an int3 while it is being rewritten (a SIGTRAP there,
 * inside the SIGTRAP handler, would kill the process). Counted as the
 * module's own rt_sigreturn (its exit: nr -1, at SYSCALL_HOOK_MAX_NR - 1).
 */
	.globl syscall_hook_restorer
	.hidden syscall_hook_restorer
	.type syscall_hook_restorer, @function
	.p2align 4
	nop                     /* unwinders look up the return address - 1 */
syscall_hook_restorer:
	call syscall_hook_restorer_count /* rsp is 16-byte aligned here; every register comes from the frame */
	mov $15, %eax
	syscall
	ud2
	.size syscall_hook_restorer, . - syscall_hook_restorer

	.globl syscall_hook_text_end
	.hidden syscall_hook_text_end
syscall_hook_text_end:
	.section .note.GNU-stack, "", @progbits
