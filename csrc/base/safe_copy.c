/*
 * Memory copies that never fault, for probe_read and friends: the kernel's exception-table idea.
 *
 * Two copy routines written in assembly (below) are the only code that touches a possibly-bad
 * address. A SIGSEGV/SIGBUS handler recognises a fault by its program counter: inside a routine,
 * it moves the program counter to that routine's recovery label, which returns a failure; the
 * caller zeroes the destination. A fault anywhere else goes on to the handler that was installed
 * before ours, or to the old disposition, exactly as if we were not there (see chain()).
 *
 * The handler is installed on the first copy (an atomic state, no lock: a thread that finds the
 * installation under way uses the old system-call path meanwhile), so a process that never reads
 * user memory keeps its handlers untouched. Valid memory costs no system call.
 */
#define _GNU_SOURCE
#include "safe_copy.h"
#include "fault_fixup.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/uio.h>
#include <ucontext.h>
#include <unistd.h>

/*
 * safe_copy_asm(dst, src, n): 0, or -EFAULT if a load or store faulted (the destination then
 * holds an unspecified prefix). Whole 8-byte words, then 4, 2 and 1 bytes as n needs them (the
 * order the JIT's inline reads copy in, jit_probe_read.c: the same bytes even when src and dst
 * overlap).
 *
 * safe_str_asm(dst, src, size > 0): the kernel's strncpy_from_user, step for step: 8-byte
 * words while 8 bytes are left (read at any alignment; the word holding the NUL is stored with
 * the bytes after the NUL zeroed), then bytes. Returns the NUL's offset, or size when there is
 * none in size bytes; on a fault, -1 - (the offset of the read that faulted): the kernel then
 * goes on byte by byte from there (finish_str), so a word that crosses into a bad page does not
 * hide a NUL before it.
 */
HIDDEN long safe_str_asm(char *dst, uint64_t src, uint64_t size);
extern const char safe_copy_asm_end[], safe_copy_asm_fixup[];
extern const char safe_str_asm_end[], safe_str_asm_fixup[];
__asm__(".text\n"
	".p2align 4\n"
	".globl safe_copy_asm\n"
	".hidden safe_copy_asm\n"
	".type safe_copy_asm, @function\n"
	"safe_copy_asm:\n"
	"	cmp $8, %rdx\n"
	"	jne 0f\n" /* exactly 8 bytes, the most common read: one load, one store */
	"	mov (%rsi), %rax\n"
	"	mov %rax, (%rdi)\n"
	"	xor %eax, %eax\n"
	"	ret\n"
	"0:	jb 2f\n"
	"1:	mov (%rsi), %rax\n"
	"	mov %rax, (%rdi)\n"
	"	add $8, %rsi\n"
	"	add $8, %rdi\n"
	"	sub $8, %rdx\n"
	"	cmp $8, %rdx\n"
	"	jae 1b\n"
	"2:	test $4, %dl\n" /* the last 0-7 bytes: 4, 2, 1 (as the JIT's inline reads do) */
	"	jz 5f\n"
	"	mov (%rsi), %eax\n"
	"	mov %eax, (%rdi)\n"
	"	add $4, %rsi\n"
	"	add $4, %rdi\n"
	"5:	test $2, %dl\n"
	"	jz 6f\n"
	"	movzwl (%rsi), %eax\n"
	"	mov %ax, (%rdi)\n"
	"	add $2, %rsi\n"
	"	add $2, %rdi\n"
	"6:	test $1, %dl\n"
	"	jz 4f\n"
	"	movzbl (%rsi), %eax\n"
	"	mov %al, (%rdi)\n"
	"4:	xor %eax, %eax\n"
	"	ret\n"
	".globl safe_copy_asm_end\n"
	".hidden safe_copy_asm_end\n"
	"safe_copy_asm_end:\n"
	".globl safe_copy_asm_fixup\n"
	".hidden safe_copy_asm_fixup\n"
	"safe_copy_asm_fixup:\n"
	"	mov $-14, %eax\n" /* -EFAULT */
	"	ret\n"
	".size safe_copy_asm, . - safe_copy_asm\n"
	"\n"
	".p2align 4\n"
	".globl safe_str_asm\n"
	".hidden safe_str_asm\n"
	".type safe_str_asm, @function\n"
	"safe_str_asm:\n"
	"	mov %rdi, %r8\n"
	"	movabs $0x0101010101010101, %r9\n"
	"	movabs $0x8080808080808080, %r10\n"
	"1:	cmp $8, %rdx\n" /* words (at any alignment) while 8 bytes are left */
	"	jb 2f\n"
	"	mov (%rsi), %rax\n"
	"	mov %rax, %rcx\n"
	"	sub %r9, %rcx\n"
	"	mov %rax, %r11\n"
	"	not %r11\n"
	"	and %r11, %rcx\n"
	"	and %r10, %rcx\n"
	"	jnz 4f\n" /* a NUL in this word */
	"	mov %rax, (%rdi)\n"
	"	add $8, %rdi\n"
	"	add $8, %rsi\n"
	"	sub $8, %rdx\n"
	"	jmp 1b\n"
	"2:	test %rdx, %rdx\n" /* then bytes */
	"	jz 5f\n"
	"3:	movzbl (%rsi), %eax\n"
	"	mov %al, (%rdi)\n"
	"	test %al, %al\n"
	"	jz 5f\n"
	"	inc %rdi\n"
	"	inc %rsi\n"
	"	dec %rdx\n"
	"	jnz 3b\n"
	"5:	mov %rdi, %rax\n" /* the NUL's offset, or size */
	"	sub %r8, %rax\n"
	"	ret\n"
	/* The word holding the NUL is stored with the bytes after the NUL zeroed, as the kernel
	 * does. The lowest flag in rcx marks the first NUL exactly. */
	"4:	bsf %rcx, %rcx\n" /* 8 * k + 7 for a NUL at byte k */
	"	mov %ecx, %r11d\n"
	"	neg %ecx\n"
	"	add $63, %ecx\n"
	"	mov $-1, %r9\n"
	"	shr %cl, %r9\n" /* bytes 0..k */
	"	and %r9, %rax\n"
	"	mov %rax, (%rdi)\n"
	"	shr $3, %r11d\n"
	"	lea (%rdi,%r11), %rax\n"
	"	sub %r8, %rax\n"
	"	ret\n"
	".globl safe_str_asm_end\n"
	".hidden safe_str_asm_end\n"
	"safe_str_asm_end:\n"
	".globl safe_str_asm_fixup\n"
	".hidden safe_str_asm_fixup\n"
	"safe_str_asm_fixup:\n"
	"	mov %rdi, %rax\n"
	"	sub %r8, %rax\n"
	"	not %rax\n"
	"	ret\n"
	".size safe_str_asm, . - safe_str_asm\n");

/* glibc's sigaction under its other name: ours (below) interposes the public one. */
extern int __sigaction(int sig, const struct sigaction *act, struct sigaction *old);

/* 0: not installed, 1: being installed, 2: installed. */
_Atomic int safe_copy_state;
static struct sigaction old_segv, old_bus;

/*
 * A fault outside the copy routines: what would have happened without us. A previous handler
 * is called as the kernel would call it (its mask, plus the signal unless SA_NODEFER); a default
 * or ignored disposition is put back and the fault re-runs (or a sent signal is raised again).
 */
static void chain(int sig, siginfo_t *si, void *uc)
{
	struct sigaction *old = sig == SIGSEGV ? &old_segv : &old_bus;
	if (!(old->sa_flags & SA_SIGINFO) && old->sa_handler == SIG_IGN && si->si_code <= 0)
		return; /* a sent signal, ignored as before */
	if (!(old->sa_flags & SA_SIGINFO) && (old->sa_handler == SIG_DFL || old->sa_handler == SIG_IGN)) {
		__sigaction(sig, old, NULL);
		if (si->si_code <= 0) /* sent by kill/tgkill/sigqueue, not a fault: send it again */
			raise(sig);
		return;
	}
	sigset_t mask = old->sa_mask, was;
	if (!(old->sa_flags & SA_NODEFER))
		sigaddset(&mask, sig);
	pthread_sigmask(SIG_BLOCK, &mask, &was);
	if (old->sa_flags & SA_SIGINFO)
		old->sa_sigaction(sig, si, uc);
	else
		old->sa_handler(sig);
	pthread_sigmask(SIG_SETMASK, &was, NULL);
}

static void on_fault(int sig, siginfo_t *si, void *ucv)
{
	ucontext_t *uc = ucv;
	uintptr_t ip = (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
	if (ip >= (uintptr_t)safe_copy_asm && ip < (uintptr_t)safe_copy_asm_end) {
		uc->uc_mcontext.gregs[REG_RIP] = (greg_t)(uintptr_t)safe_copy_asm_fixup;
		return;
	}
	if (ip >= (uintptr_t)safe_str_asm && ip < (uintptr_t)safe_str_asm_end) {
		uc->uc_mcontext.gregs[REG_RIP] = (greg_t)(uintptr_t)safe_str_asm_fixup;
		return;
	}
	uintptr_t resume = fault_fixup_find(ip); /* an inline read of compiled code */
	if (resume) {
		uc->uc_mcontext.gregs[REG_RIP] = (greg_t)resume;
		return;
	}
	chain(sig, si, ucv);
}

/*
 * SA_NODEFER: a fault in a copy made from a handler that the previous handler's chain runs (a
 * probe inside the application's own SIGSEGV handler) is still ours to recover; chain() blocks
 * the signal for the previous handler as the kernel would have. SA_ONSTACK: faults from stack
 * overflow reach the application's handler on its alternate stack, as before.
 */
int safe_copy_init(void)
{
	int expect = 0;
	if (!atomic_compare_exchange_strong(&safe_copy_state, &expect, 1))
		return expect == 2 ? 0 : -EAGAIN;
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_fault;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER | SA_RESTART;
	sigemptyset(&sa.sa_mask);
	/* old_* are written before the handler can run (it only runs after sigaction returns). */
	if (__sigaction(SIGSEGV, &sa, &old_segv) < 0 || __sigaction(SIGBUS, &sa, &old_bus) < 0) {
		atomic_store(&safe_copy_state, 0);
		return -errno;
	}
	atomic_store_explicit(&safe_copy_state, 2, memory_order_release);
	return 0;
}

/*
 * The application's sigaction and signal, where they bind to ours (a program linked with
 * libbpftime, the preloaded agent and server; not a process that dlopen()s the library, nor raw
 * rt_sigaction system calls). Once our handler is installed, a SIGSEGV/SIGBUS handler the
 * application sets becomes the previous handler ours chains to, and the application reads back
 * what it set: our handler stays first. (The chained-to action is replaced in place: a fault
 * outside the copies that arrives while another thread sets a new handler may see a mix.)
 */
__attribute__((visibility("default"))) int sigaction(int sig, const struct sigaction *act,
						    struct sigaction *old)
{
	if ((sig != SIGSEGV && sig != SIGBUS) ||
	    atomic_load_explicit(&safe_copy_state, memory_order_acquire) != 2)
		return __sigaction(sig, act, old);
	struct sigaction *prev = sig == SIGSEGV ? &old_segv : &old_bus, was = *prev;
	if (act)
		*prev = *act;
	if (old)
		*old = was;
	return 0;
}

__attribute__((visibility("default"))) sighandler_t signal(int sig, sighandler_t handler)
{
	struct sigaction sa, old;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = handler;
	sa.sa_flags = SA_RESTART; /* glibc's signal(): BSD semantics */
	sigemptyset(&sa.sa_mask);
	sigaddset(&sa.sa_mask, sig);
	if (sigaction(sig, &sa, &old) < 0)
		return SIG_ERR;
	return old.sa_handler;
}

static inline bool handler_ready(void)
{
	if (likely(atomic_load_explicit(&safe_copy_state, memory_order_acquire) == 2))
		return true;
	return safe_copy_init() == 0;
}

/* The fallback while the handler is not (yet) installed: the kernel copies for us. */
static int syscall_read(void *dst, uint64_t src, uint64_t size)
{
	struct iovec local = {dst, size}, remote = {(void *)(uintptr_t)src, size};
	ssize_t n = process_vm_readv(getpid(), &local, 1, &remote, 1, 0);
	return n == (ssize_t)size ? 0 : -EFAULT;
}

int safe_read_slow(void *dst, uint64_t src, uint64_t size)
{
	if (size == 0)
		return 0;
	int r = handler_ready() ? safe_copy_asm(dst, src, size) : syscall_read(dst, src, size);
	if (unlikely(r < 0)) {
		memset(dst, 0, size);
		return -EFAULT;
	}
	return 0;
}

int safe_write(uint64_t dst, const void *src, uint64_t size)
{
	if (size == 0)
		return 0;
	if (handler_ready())
		return safe_copy_asm((void *)(uintptr_t)dst, (uint64_t)(uintptr_t)src, size);
	struct iovec local = {(void *)src, size}, remote = {(void *)(uintptr_t)dst, size};
	ssize_t n = process_vm_writev(getpid(), &local, 1, &remote, 1, 0);
	return n == (ssize_t)size ? 0 : -EFAULT;
}

/* A fault no byte-by-byte reading can get past (syscall_str's): the string is -EFAULT. */
#define STR_FAULTED LONG_MIN

/* Byte by byte through the system call: the NUL's offset, size, or STR_FAULTED. */
static long syscall_str(char *dst, uint64_t src, uint64_t size)
{
	for (uint64_t i = 0; i < size; i++) {
		if (syscall_read(dst + i, src + i, 1) < 0)
			return STR_FAULTED;
		if (dst[i] == 0)
			return (long)i;
	}
	return (long)size;
}

/*
 * Zeroes [dst, dst + n) with general registers only (memset may use vector registers), and
 * without string instructions (a probe may run where the direction flag is set): for the copies
 * compiled code calls directly, which must leave the vector registers alone. Only bad reads
 * take this path; volatile keeps the compiler from making it a memset call.
 */
static NO_VECTORS void zero_gpr(void *dst, uint64_t n)
{
	volatile uint8_t *p = dst;
	for (uint64_t i = 0; i < n; i++)
		p[i] = 0;
}

/*
 * bpf_probe_read_user_str's result from safe_str_asm's (or syscall_str's) r, as the kernel's
 * strncpy_from_user_nofault and the helper make it: a read that faulted is retried byte by byte
 * (a fault then: -EFAULT, all of dst zeroed); no NUL in size bytes: size, the last byte made
 * NUL; else the length with the NUL.
 */
static NO_VECTORS long finish_str(char *dst, uint64_t src, uint64_t size, long r)
{
	if (unlikely(r < 0)) {
		bool faulted = r == STR_FAULTED;
		if (!faulted) { /* a read faulted at -1 - r: the kernel goes on byte by byte from there */
			uint64_t i = (uint64_t)(-1 - r);
			for (; i < size; i++) {
				if (safe_copy_asm(dst + i, src + i, 1) < 0) {
					faulted = true;
					break;
				}
				if (dst[i] == 0)
					break;
			}
			r = (long)i;
		}
		if (faulted) {
			zero_gpr(dst, size);
			return -EFAULT;
		}
	}
	if ((uint64_t)r >= size) {
		dst[size - 1] = 0;
		return (long)size;
	}
	return r + 1;
}

long safe_read_str(char *dst, uint64_t src, uint64_t size)
{
	if (size == 0)
		return -EINVAL;
	return finish_str(dst, src, size, handler_ready() ? safe_str_asm(dst, src, size) : syscall_str(dst, src, size));
}

bool safe_copy_ready(void)
{
	return handler_ready();
}

NO_VECTORS uint64_t safe_read_direct(uint64_t dst, uint64_t size, uint64_t src)
{
	if (likely(safe_copy_asm((void *)(uintptr_t)dst, src, size) == 0))
		return 0;
	zero_gpr((void *)(uintptr_t)dst, size);
	return (uint64_t)-EFAULT;
}

NO_VECTORS uint64_t safe_read_str_direct(uint64_t dst, uint64_t size, uint64_t src)
{
	return (uint64_t)finish_str((char *)(uintptr_t)dst, src, size, safe_str_asm((char *)(uintptr_t)dst, src, size));
}
