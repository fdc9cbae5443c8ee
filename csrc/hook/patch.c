/*
 * Writing and removing a hook's jump while other threads run the code,
 * with the protocol x86 requires for cross-modifying code:
 *  1. an int3 on the first byte (one atomic byte store); a thread that hits
 *     it is sent to the displaced copy of the original code;
 *  2. when patching, every other thread is interrupted once and, if it was
 *     stopped in the middle of the bytes being replaced, moved to the same
 *     instruction in the trampoline;
 *  3. the jump's displacement, then its opcode over the int3;
 * with a core-serializing barrier (membarrier SYNC_CORE) between the steps.
 *
 * From the int3 to the jump's last byte the patching thread calls nothing
 * that may itself be hooked (malloc, opendir, memcpy, nanosleep...): it would
 * run into the half-written hook. Only raw system calls and memory it owns
 * (static buffers, under patch_lock) are used in that window.
 *
 * The int3 protocol needs the int3 to be ours: where another tool's int3 (a
 * kernel uprobe's) already sits, the kernel sends the threads that hit it to
 * the next original instruction, inside the bytes being replaced. Such a hook
 * is written only while no other thread runs (HOOK_LATER otherwise).
 */
#define _GNU_SOURCE
#include "hook.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/membarrier.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#define FIXUP_SIGNAL (SIGRTMAX - 1)

static pthread_mutex_t patch_lock = PTHREAD_MUTEX_INITIALIZER;
static struct hook *volatile in_progress; /* the hook being patched or unpatched */
static struct sigaction old_trap, old_ill;
static volatile int acks;
static bool handlers_installed, sync_core_ok;

/* A system call without libc (whose wrappers may be hooked): the kernel's result, -errno on failure. */
static long sys4(long nr, long a, long b, long c, long d)
{
	long ret;
	register long r10 __asm__("r10") = d;
	__asm__ volatile("syscall" : "=a"(ret) : "a"(nr), "D"(a), "S"(b), "d"(c), "r"(r10) : "rcx", "r11", "memory");
	return ret;
}

static void sync_cores(void)
{
	if (sync_core_ok)
		sys4(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE, 0, 0, 0);
	else
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
}

/*
 * Every hook ever patched, newest first (hooks are never freed). A thread
 * that hit an int3 may run this handler after the patch is finished, so the
 * handler looks the address up here rather than in `in_progress`.
 */
static struct hook *all_hooks;

/*
 * The trap byte of hooks where a kernel uprobe is registered (struct hook.kernel_probe_here):
 * push es, invalid in 64-bit mode, so a thread meeting it faults (#UD, SIGILL, rip at the byte)
 * and the kernel's uprobe code never sees it.
 */
#define TRAP_UD 0x06

static void on_trap(int sig, siginfo_t *si, void *uc_)
{
	ucontext_t *uc = uc_;
	uint64_t rip = (uint64_t)uc->uc_mcontext.gregs[REG_RIP];
	for (struct hook *h = __atomic_load_n(&all_hooks, __ATOMIC_ACQUIRE); h; h = h->next) {
		if ((sig == SIGTRAP && rip - 1 == h->addr) ||
		    (sig == SIGILL && h->kernel_probe_here && rip == h->addr)) {
			uc->uc_mcontext.gregs[REG_RIP] = (greg_t)h->displaced;
			return;
		}
	}
	/* Not ours: behave as if we had never been installed. */
	struct sigaction *old = sig == SIGILL ? &old_ill : &old_trap;
	if (old->sa_flags & SA_SIGINFO && old->sa_sigaction) {
		old->sa_sigaction(sig, si, uc_);
	} else if (old->sa_handler != SIG_IGN && old->sa_handler != SIG_DFL) {
		old->sa_handler(sig);
	} else if (old->sa_handler == SIG_DFL) {
		sigaction(sig, old, NULL);
		raise(sig);
	}
}

static void on_fixup(int sig, siginfo_t *si, void *uc_)
{
	(void)sig, (void)si;
	ucontext_t *uc = uc_;
	struct hook *h = in_progress;
	if (h) {
		uint64_t rip = (uint64_t)uc->uc_mcontext.gregs[REG_RIP];
		for (int i = 1; i < h->n_insns; i++)
			if (rip == h->addr + h->orig_off[i])
				uc->uc_mcontext.gregs[REG_RIP] = (greg_t)(h->displaced + h->tramp_off[i]);
	}
	__atomic_add_fetch(&acks, 1, __ATOMIC_RELEASE);
}

static void install_handlers(void)
{
	if (handlers_installed)
		return;
	handlers_installed = true;
	struct sigaction sa = {0};
	sa.sa_sigaction = on_trap;
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	/*
	 * Every signal waits while on_trap runs: a handler of the program's own
	 * (a timer's) running inside it could call the hooked function, hit the
	 * int3 again with SIGTRAP blocked, and the kernel would kill the process.
	 */
	sigfillset(&sa.sa_mask);
	sigaction(SIGTRAP, &sa, &old_trap);
	sigemptyset(&sa.sa_mask);
	sa.sa_sigaction = on_fixup;
	sigaction(FIXUP_SIGNAL, &sa, NULL);
	sync_core_ok = syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE, 0, 0) == 0;
}

struct dirent64 {
	uint64_t ino;
	int64_t off;
	unsigned short reclen;
	unsigned char type;
	char name[];
};

/* /proc/self/task's entries, a thread's state file name and text; only used under patch_lock. */
static char task_entries[4096] __attribute__((aligned(8)));
static char state_path[64], state_text[256];

static pid_t parse_tid(const char *s)
{
	long v = 0;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || v > (1l << 31))
			return 0;
		v = v * 10 + (*s - '0');
	}
	return (pid_t)v;
}

/*
 * Whether thread `tid` must be interrupted: it may be inside the bytes being
 * replaced. A thread blocked in the kernel (in a system call, or a page fault)
 * shows its user pc in /proc/self/task/TID/syscall ("NR args... sp pc", or
 * "-1 sp pc"); it resumes at that pc (or, for a restarted system call, 2 bytes
 * before), and reaches the hook's other bytes only through the first one, an
 * int3 by now. Signalling it would cut its call short: nanosleep, poll,
 * epoll_wait and timed futex waits return EINTR (or the time left) even with
 * SA_RESTART. So only a thread that is running (pc unknown), or parked near
 * the hook, is signalled.
 */
static bool must_interrupt(const struct hook *h, pid_t tid)
{
	static const char pre[] = "/proc/self/task/", post[] = "/syscall";
	char digits[12];
	int nd = 0, at = 0;
	for (pid_t t = tid; t > 0 && nd < (int)sizeof(digits); t /= 10)
		digits[nd++] = (char)('0' + t % 10);
	for (int i = 0; pre[i]; i++)
		state_path[at++] = pre[i];
	while (nd)
		state_path[at++] = digits[--nd];
	for (int i = 0; post[i]; i++)
		state_path[at++] = post[i];
	state_path[at] = 0;
	int fd = (int)sys4(SYS_openat, AT_FDCWD, (long)state_path, O_RDONLY | O_CLOEXEC, 0);
	if (fd < 0)
		return true;
	long n = sys4(SYS_read, fd, (long)state_text, sizeof(state_text) - 1, 0);
	sys4(SYS_close, fd, 0, 0, 0);
	if (n <= 0 || state_text[0] == 'r') /* "running" */
		return true;
	/* The last field: the pc, in hex. */
	while (n > 0 && (state_text[n - 1] == '\n' || state_text[n - 1] == ' '))
		n--;
	long start = n;
	while (start > 0 && state_text[start - 1] != ' ')
		start--;
	if (n - start < 3 || state_text[start] != '0' || state_text[start + 1] != 'x')
		return true;
	uint64_t pc = 0;
	for (long i = start + 2; i < n; i++) {
		char c = state_text[i];
		int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
		if (d < 0)
			return true;
		pc = pc << 4 | (uint64_t)d;
	}
	return pc > h->addr && pc <= h->addr + h->displaced_len;
}

void hook_thread_signals(void)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTRAP);
	sigaddset(&set, FIXUP_SIGNAL);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
}

/*
 * Interrupts every other thread that may be inside the bytes being replaced
 * (on_fixup moves it out of them). A thread seen running is interrupted: its
 * pc cannot be known otherwise. It is in user code or a system call's fast
 * path, so only one that enters a blocking wait in the microseconds between
 * the look and the signal has that wait cut short.
 */
static void fixup_threads(const struct hook *h)
{
	int fd = (int)sys4(SYS_openat, AT_FDCWD, (long)"/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
	if (fd < 0)
		return;
	pid_t self = (pid_t)sys4(SYS_gettid, 0, 0, 0, 0), pid = (pid_t)sys4(SYS_getpid, 0, 0, 0, 0);
	int sent = 0;
	__atomic_store_n(&acks, 0, __ATOMIC_RELEASE);
	long n;
	while ((n = sys4(SYS_getdents64, fd, (long)task_entries, sizeof(task_entries), 0)) > 0) {
		for (long at = 0; at < n;) {
			const struct dirent64 *de = (const struct dirent64 *)(task_entries + at);
			at += de->reclen;
			pid_t tid = parse_tid(de->name);
			if (tid <= 0 || tid == self || !must_interrupt(h, tid))
				continue;
			if (sys4(SYS_tgkill, pid, tid, FIXUP_SIGNAL, 0) == 0)
				sent++;
		}
	}
	sys4(SYS_close, fd, 0, 0, 0);
	/* A thread that blocks the signal never answers: wait at most 200 ms. */
	struct timespec ts = {0, 100000};
	for (int i = 0; i < 2000 && __atomic_load_n(&acks, __ATOMIC_ACQUIRE) < sent; i++)
		sys4(SYS_nanosleep, (long)&ts, 0, 0, 0);
}

static int set_writable(uint64_t addr, bool writable, char *err, uint64_t errlen)
{
	uint64_t page = addr & ~4095ull;
	uint64_t len = ((addr + HOOK_PATCH_LEN + 4095) & ~4095ull) - page;
	int prot = PROT_READ | PROT_EXEC | (writable ? PROT_WRITE : 0);
	if (mprotect((void *)page, len, prot) < 0) {
		snprintf(err, errlen, "mprotect 0x%llx: %s", (unsigned long long)page, strerror(errno));
		return -1;
	}
	return 0;
}

/* Whether the calling thread is the process's only one (no other can run the code meanwhile). */
static bool only_thread(void)
{
	int fd = (int)sys4(SYS_openat, AT_FDCWD, (long)"/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
	if (fd < 0)
		return false;
	pid_t self = (pid_t)sys4(SYS_gettid, 0, 0, 0, 0);
	bool alone = true;
	long n;
	while (alone && (n = sys4(SYS_getdents64, fd, (long)task_entries, sizeof(task_entries), 0)) > 0) {
		for (long at = 0; at < n;) {
			const struct dirent64 *de = (const struct dirent64 *)(task_entries + at);
			at += de->reclen;
			pid_t tid = parse_tid(de->name);
			if (tid > 0 && tid != self)
				alone = false;
		}
	}
	sys4(SYS_close, fd, 0, 0, 0);
	return alone;
}

/*
 * Another tool's int3 (a kernel uprobe's, a debugger's) on one of the
 * instructions being replaced. The kernel, not on_trap, takes the threads
 * that hit it, and resumes them at the next original instruction, inside
 * the bytes being replaced: with other threads running, the hook cannot be
 * written safely while it is there.
 */
static bool foreign_int3(const struct hook *h)
{
	for (int i = 0; i < h->n_insns; i++) {
		uint8_t at = h->orig_off[i];
		if (((const volatile uint8_t *)h->addr)[at] == 0xcc && h->original[at] != 0xcc)
			return true;
	}
	return false;
}

int hook_drop_kernel_int3(struct hook *h, char *err, uint64_t errlen)
{
	volatile uint8_t *p = (volatile uint8_t *)h->addr;
	h->kernel_probe_here = true;
	if (h->patched || p[0] != 0xcc || h->original[0] == 0xcc)
		return 0;
	pthread_mutex_lock(&patch_lock);
	int rc = set_writable(h->addr, true, err, errlen);
	if (rc == 0) {
		__atomic_store_n(p, h->original[0], __ATOMIC_SEQ_CST);
		sync_cores();
		rc = set_writable(h->addr, false, err, errlen) < 0 ? -1 : 1;
	}
	pthread_mutex_unlock(&patch_lock);
	return rc;
}

static int write_jump(struct hook *h, const uint8_t *bytes, bool moving_threads, char *err, uint64_t errlen)
{
	volatile uint8_t *p = (volatile uint8_t *)h->addr;
	pthread_mutex_lock(&patch_lock);
	if (moving_threads && (foreign_int3(h) || h->foreign_gone) && !only_thread()) {
		/*
		 * For a while after a kernel uprobe is removed (its int3 gone), the
		 * kernel still takes an int3 there as its own: wait a second more.
		 */
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		uint64_t now = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
		if (foreign_int3(h) || !h->foreign_gone)
			h->foreign_gone = now; /* still there: gone, at the earliest, now */
		if (now - h->foreign_gone < 1000000000ull) {
			pthread_mutex_unlock(&patch_lock);
			snprintf(err, errlen,
				 "another tool's breakpoint (a kernel uprobe or a debugger) is on the code at "
				 "0x%llx; hooked once it is gone",
				 (unsigned long long)h->addr);
			return HOOK_LATER;
		}
	}
	h->foreign_gone = 0;
	install_handlers();
	static bool ill_installed; /* only in processes with a hook over a kernel uprobe */
	if (h->kernel_probe_here && !ill_installed) {
		ill_installed = true;
		struct sigaction sa = {0};
		sa.sa_sigaction = on_trap;
		sa.sa_flags = SA_SIGINFO | SA_RESTART;
		sigemptyset(&sa.sa_mask);
		sigaction(SIGILL, &sa, &old_ill);
	}
	if (set_writable(h->addr, true, err, errlen) < 0) {
		pthread_mutex_unlock(&patch_lock);
		return -1;
	}
	if (!h->registered) {
		h->registered = true;
		h->next = all_hooks;
		__atomic_store_n(&all_hooks, h, __ATOMIC_RELEASE);
	}
	in_progress = h;
	__atomic_store_n(p, h->kernel_probe_here ? TRAP_UD : 0xcc, __ATOMIC_SEQ_CST);
	sync_cores();
	if (moving_threads)
		fixup_threads(h);
	for (int i = 1; i < HOOK_PATCH_LEN; i++)
		p[i] = bytes[i];
	sync_cores();
	__atomic_store_n(p, bytes[0], __ATOMIC_SEQ_CST);
	sync_cores();
	in_progress = NULL;
	int rc = set_writable(h->addr, false, err, errlen);
	pthread_mutex_unlock(&patch_lock);
	return rc;
}

int hook_patch(struct hook *h, char *err, uint64_t errlen)
{
	if (h->patched)
		return 0;
	uint8_t jmp[HOOK_PATCH_LEN] = {0xe9};
	int32_t rel = (int32_t)((int64_t)h->trampoline - (int64_t)(h->addr + HOOK_PATCH_LEN));
	memcpy(jmp + 1, &rel, 4);
	int rc = write_jump(h, jmp, true, err, errlen);
	if (rc < 0)
		return rc;
	h->patched = true;
	return 0;
}

int hook_unpatch(struct hook *h, char *err, uint64_t errlen)
{
	if (!h->patched)
		return 0;
	/* Nobody can be stopped inside a jmp's operand bytes: no thread needs moving. */
	if (write_jump(h, h->original, false, err, errlen) < 0)
		return -1;
	h->patched = false;
	return 0;
}
