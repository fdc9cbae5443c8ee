/*
 * Syscall hooks (syscall_hook.h): finding the sites, choosing a window of
 * instructions around each that a 5-byte jump may replace, building the
 * site's trampoline and patching it with hook_patch (patch.c's protocol).
 *
 * Finding: dl_iterate_phdr gives every loaded object (main binary, ld.so,
 * libraries, vDSO); its PT_GNU_EH_FRAME gives .eh_frame_hdr, whose table
 * gives the start of every function with an FDE and the FDE its length.
 * Every function of an object is decoded (Zydis, linear sweep) once to
 * collect the targets of direct branches (a bitmap over the executable
 * segments) and its syscall instructions.
 *
 * A window is a run of whole instructions of one function, at least 5 bytes,
 * holding the site and no other syscall, with no branch target strictly
 * inside it and no instruction after a ret/jmp/ud2 (an indirect target, e.g.
 * of a jump table, can only be such an instruction). Windows ending at the
 * syscall (mov $nr,%eax; syscall) are preferred: a thread blocked in the call
 * returns past the window. Anything else is tried: after it, or both.
 *
 * A site's trampoline (HOOK_TRAMPOLINE_SIZE bytes):
 *   entry: the window's instructions before the syscall, relocated
 *          lea -128(%rsp),%rsp; call *stub          (syscall_stubs.S)
 *   R:     lea 128(%rsp),%rsp; jmp post
 *   R+13:  three special paths of 32 bytes, for clone, vfork, clone3:
 *          syscall; lea -128(%rsp),%rsp; push $nr; call *exit_stub;
 *          lea 136(%rsp),%rsp; jmp post
 *   post:  the window's instructions after the syscall, relocated; jmp back
 *   two literals: stub, exit_stub
 * The hook is patched with patch.c's hook_patch (int3, threads moved out of
 * the window through the hook's instruction map, then the jump); a thread
 * that hits the int3 is sent to the trampoline, which already works.
 *
 * Not rewritten (logged by name: object+offset, symbol): sites with no safe
 * window, bytes outside any FDE, objects whose code cannot be made writable
 * (the vDSO), executable memory that is no loaded object (JIT code). With
 * syscall_hooks_sud_enable, Syscall User Dispatch covers them: the allowed
 * range is the module's own text (syscall_stubs.S), where every rewritten
 * site's syscall is made; anything else raises SIGSYS, and its handler sends
 * the thread through a trampoline without a window built for that return
 * address. (SYSCALL_HOOK_DEBUG=1 in the environment prints every window.)
 */
#define _GNU_SOURCE
#include "syscall_hook.h"

#include <Zydis/Zydis.h>
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#define SPECIAL_OFF 13 /* from the stub's return address to the first special path */
#define SPECIAL_SIZE 32
#define N_SPECIAL 3
static const uint32_t special_nr[N_SPECIAL] = {SYS_clone, SYS_vfork, SYS_clone3};

static struct syscall_handler handler;
static bool installed;
static pthread_mutex_t scan_lock = PTHREAD_MUTEX_INITIALIZER;
static struct syscall_hook_stats stats;
static uint64_t pools_seen[64]; /* 64 KiB regions holding our trampolines (trampoline_alloc's pools) */
static int n_pools_seen;

static void note_pool(const uint8_t *t)
{
	uint64_t r = (uint64_t)t & ~0xffffull;
	for (int i = 0; i < n_pools_seen; i++)
		if (pools_seen[i] == r)
			return;
	if (n_pools_seen < 64)
		pools_seen[n_pools_seen++] = r;
}
uint64_t syscall_hook_own_enter[SYSCALL_HOOK_MAX_NR], syscall_hook_own_exit[SYSCALL_HOOK_MAX_NR];
#define own_enter syscall_hook_own_enter
#define own_exit syscall_hook_own_exit
static __thread int guard __attribute__((tls_model("initial-exec")));

/* ---- the path of every hooked syscall ---- */

NO_VECTORS static inline void count_own(uint64_t *tab, uint64_t nr)
{
	__atomic_add_fetch(&tab[nr % SYSCALL_HOOK_MAX_NR], 1, __ATOMIC_RELAXED);
	if (handler.own)
		handler.own(handler.ctx, nr, tab != own_enter);
}

/* Returning from the module's own signal handlers (syscall_hook_restorer). */
NO_VECTORS void syscall_hook_restorer_count(void)
{
	count_own(own_enter, SYS_rt_sigreturn);
	count_own(own_exit, (uint64_t)-1);
}

/* Syscall User Dispatch: BLOCK (1) wherever it is on, but in the module's own text. */
__thread volatile char syscall_hook_sud_selector __attribute__((tls_model("initial-exec"))) = 1;
static bool sud_on;
static void sud_enable_thread(void);

/*
 * rt_sigreturn back into our syscall instruction: the kernel had interrupted
 * the call there, reported its exit (-ERESTART*), moved rip back onto it and
 * rax back to the number (restart_syscall for -ERESTART_RESTARTBLOCK); it
 * will report a new entry when the call is made again. (A signal taken just
 * before the instruction, never made, looks the same: that is not told apart.)
 */
NO_VECTORS static void restart_events(struct syscall_frame *f)
{
	const ucontext_t *uc = (const ucontext_t *)((uint8_t *)f + sizeof(*f) + 128);
	const greg_t *g = uc->uc_mcontext.gregs;
	if ((uint64_t)g[REG_RIP] != (uint64_t)syscall_hook_insn)
		return;
	struct syscall_frame *old = (struct syscall_frame *)((uint64_t)g[REG_RBP] - 64);
	uint64_t again = (uint64_t)g[REG_RAX];
	int64_t ret = again == SYS_restart_syscall ? -516 /* ERESTART_RESTARTBLOCK */ : -512 /* ERESTARTSYS */;
	if (handler.exit)
		handler.exit(handler.ctx, old->nr, ret);
	uint64_t args[6] = {(uint64_t)g[REG_RDI], (uint64_t)g[REG_RSI], (uint64_t)g[REG_RDX],
			    (uint64_t)g[REG_R10], (uint64_t)g[REG_R8],  (uint64_t)g[REG_R9]};
	if (handler.enter)
		handler.enter(handler.ctx, again, args);
	old->nr = again; /* what the exit event will report */
}

/* ---- signal handlers, wrapped ---- */

struct ksigaction {
	uint64_t handler, flags, restorer, mask;
};
#define KSA_SIGINFO 4ull
#define KSA_NODEFER 0x40000000ull
#define KSA_RESTORER 0x04000000ull
#define N_SIGNALS 65
#define SIGSYS_BIT (1ull << (SIGSYS - 1))

static struct {
	uint64_t handler, flags;
} real_handlers[N_SIGNALS];

/* One rt_sigaction or rt_sigprocmask in flight on this thread: the copy the kernel is given. */
static __thread struct {
	struct syscall_frame *frame; /* of the call that swapped; NULL: none */
	int sig;
	uint64_t arg; /* the application's */
	uint64_t prev_handler, prev_flags;
	struct ksigaction copy;
	uint64_t mask;
} sa_swap __attribute__((tls_model("initial-exec")));

static void on_sigsys(int sig, siginfo_t *si, void *uc);
static long own_raw(long nr, long a, long b, long c, long d, long e);

static void call_real(int sig, siginfo_t *si, void *uc)
{
	uint64_t h = __atomic_load_n(&real_handlers[sig].handler, __ATOMIC_ACQUIRE);
	uint64_t fl = real_handlers[sig].flags;
	if (h <= 1)
		return;
	if (fl & KSA_SIGINFO)
		((void (*)(int, siginfo_t *, void *))h)(sig, si, uc);
	else
		((void (*)(int))h)(sig);
}

static void signal_wrapper(int sig, siginfo_t *si, void *uc)
{
	int saved = guard;
	guard = 0;
	call_real(sig, si, uc);
	guard = saved;
}

NO_VECTORS static void sigaction_enter(struct syscall_frame *f)
{
	int sig = (int)f->args[0];
	const struct ksigaction *act = (const struct ksigaction *)f->args[1];
	if (sig <= 0 || sig >= N_SIGNALS || f->args[3] != 8 || sa_swap.frame)
		return;
	sa_swap.frame = f;
	sa_swap.sig = sig;
	sa_swap.arg = f->args[1];
	sa_swap.prev_handler = real_handlers[sig].handler;
	sa_swap.prev_flags = real_handlers[sig].flags;
	if (!act)
		return;
	bool ours_stays = sig == SIGSYS && sud_on; /* dispatch needs our SIGSYS handler */
	if (act->handler <= 1 /* SIG_DFL, SIG_IGN */ && !ours_stays) {
		__atomic_store_n(&real_handlers[sig].handler, 0, __ATOMIC_RELEASE);
		return;
	}
	real_handlers[sig].flags = act->flags;
	__atomic_store_n(&real_handlers[sig].handler, act->handler, __ATOMIC_RELEASE);
	sa_swap.copy = *act;
	sa_swap.copy.handler = ours_stays ? (uint64_t)on_sigsys : (uint64_t)signal_wrapper;
	sa_swap.copy.flags |= KSA_SIGINFO | (ours_stays ? KSA_NODEFER : 0);
	if (sud_on)
		sa_swap.copy.mask &= ~SIGSYS_BIT;
	f->args[1] = (uint64_t)&sa_swap.copy;
}

NO_VECTORS static void sigaction_exit(int64_t ret, struct syscall_frame *f)
{
	int sig = sa_swap.sig;
	f->args[1] = sa_swap.arg;
	if (ret < 0) {
		real_handlers[sig].flags = sa_swap.prev_flags;
		__atomic_store_n(&real_handlers[sig].handler, sa_swap.prev_handler, __ATOMIC_RELEASE);
		return;
	}
	struct ksigaction *oact = (struct ksigaction *)f->args[2];
	if (oact && (oact->handler == (uint64_t)signal_wrapper || oact->handler == (uint64_t)on_sigsys)) {
		oact->handler = sa_swap.prev_handler;
		oact->flags = sa_swap.prev_flags;
	}
}

/* rt_sigprocmask blocking SIGSYS while dispatch is on: the kernel gets a copy without it. */
NO_VECTORS static void sigprocmask_enter(struct syscall_frame *f)
{
	const uint64_t *set = (const uint64_t *)f->args[1];
	if (!sud_on || !set || f->args[0] == SIG_UNBLOCK || !(*set & SIGSYS_BIT) || sa_swap.frame)
		return;
	sa_swap.frame = f;
	sa_swap.arg = f->args[1];
	sa_swap.mask = *set & ~SIGSYS_BIT;
	f->args[1] = (uint64_t)&sa_swap.mask;
}

/* ---- Syscall User Dispatch ---- */

#define MAX_SUD_SITES 1024
static struct {
	uint64_t back;
	uint8_t *tramp;
} sud_sites[MAX_SUD_SITES];
static int n_sud_sites;
static int sud_lock;
static uint64_t uncovered_at[256]; /* syscall instructions not rewritten */
static int n_uncovered_at;

NO_VECTORS static void sud_enable_thread(void)
{
	syscall_hook_sud_selector = 1;
	own_raw(SYS_prctl, 59 /* PR_SET_SYSCALL_USER_DISPATCH */, 1 /* PR_SYS_DISPATCH_ON */,
		(long)syscall_hook_text_start, (long)(syscall_hook_text_end - syscall_hook_text_start),
		(long)&syscall_hook_sud_selector);
}

struct insn;
static void logf_(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int build_trampoline(uint8_t *t, const struct insn *pre, int npre, const struct insn *sc,
			    const struct insn *post, int npost, uint64_t a, uint64_t back, struct hook *h,
			    char *why, size_t whylen);

/* The trampoline for a syscall instruction ending at `back`, built once. */
static uint8_t *sud_tramp(uint64_t back)
{
	int n = __atomic_load_n(&n_sud_sites, __ATOMIC_ACQUIRE);
	for (int i = 0; i < n; i++)
		if (sud_sites[i].back == back)
			return sud_sites[i].tramp;
	while (__atomic_exchange_n(&sud_lock, 1, __ATOMIC_ACQUIRE))
		;
	uint8_t *t = NULL;
	for (int i = 0; i < n_sud_sites && !t; i++)
		if (sud_sites[i].back == back)
			t = sud_sites[i].tramp;
	if (!t && n_sud_sites < MAX_SUD_SITES && (t = trampoline_alloc(back, HOOK_TRAMPOLINE_SIZE))) {
		char why[128];
		note_pool(t);
		if (build_trampoline(t, NULL, 0, NULL, NULL, 0, back - 2, back, NULL, why, sizeof(why)) < 0) {
			t = NULL;
		} else {
			sud_sites[n_sud_sites].back = back;
			sud_sites[n_sud_sites].tramp = t;
			__atomic_store_n(&n_sud_sites, n_sud_sites + 1, __ATOMIC_RELEASE);
		}
	}
	__atomic_store_n(&sud_lock, 0, __ATOMIC_RELEASE);
	return t;
}

static void on_sigsys(int sig, siginfo_t *si, void *uc_)
{
	ucontext_t *uc = uc_;
	if (si->si_code != 2 /* SYS_USER_DISPATCH */) {
		/* Someone else's (seccomp's): the application's handler, or the default action. */
		if (real_handlers[sig].handler > 1) {
			call_real(sig, si, uc_);
		} else {
			struct ksigaction dfl = {0, 0, 0, 0};
			own_raw(SYS_rt_sigaction, SIGSYS, (long)&dfl, 0, 8, 0);
			own_raw(SYS_tgkill, own_raw(SYS_getpid, 0, 0, 0, 0, 0), own_raw(SYS_gettid, 0, 0, 0, 0, 0),
				SIGSYS, 0, 0);
		}
		return;
	}
	uint8_t *t = sud_tramp((uint64_t)uc->uc_mcontext.gregs[REG_RIP]);
	uc->uc_mcontext.gregs[REG_RAX] = si->si_syscall;
	if (t) {
		uc->uc_mcontext.gregs[REG_RIP] = (greg_t)t;
	} else {
		/* No trampoline (no memory near it): made here, unreported; rare enough to be a log line. */
		const greg_t *g = uc->uc_mcontext.gregs;
		uc->uc_mcontext.gregs[REG_RAX] = syscall_hook_raw(si->si_syscall, g[REG_RDI], g[REG_RSI], g[REG_RDX],
								  g[REG_R10], g[REG_R8]);
	}
}

int syscall_hooks_sud_enable(char *err, size_t errlen)
{
	guard++;
	int rc = 0;
	struct ksigaction sa = {(uint64_t)on_sigsys, KSA_SIGINFO | KSA_NODEFER | KSA_RESTORER,
				(uint64_t)syscall_hook_restorer, 0};
	struct ksigaction old;
	if (own_raw(SYS_rt_sigaction, SIGSYS, (long)&sa, (long)&old, 8, 0) < 0) {
		snprintf(err, errlen, "rt_sigaction(SIGSYS) failed");
		rc = -1;
		goto out;
	}
	real_handlers[SIGSYS].flags = old.flags;
	real_handlers[SIGSYS].handler = old.handler;
	for (int i = 0; i < n_uncovered_at; i++)
		sud_tramp(uncovered_at[i] + 2); /* built now, not in the signal handler */
	syscall_hook_sud_selector = 1;
	long r = own_raw(SYS_prctl, 59, 1, (long)syscall_hook_text_start,
			 (long)(syscall_hook_text_end - syscall_hook_text_start), (long)&syscall_hook_sud_selector);
	if (r < 0) {
		snprintf(err, errlen, "prctl(PR_SET_SYSCALL_USER_DISPATCH): %s", strerror((int)-r));
		own_raw(SYS_rt_sigaction, SIGSYS, (long)&old, 0, 8, 0);
		rc = -1;
		goto out;
	}
	sud_on = true;
	logf_("Syscall User Dispatch on: the %d sites not rewritten and executable memory of no loaded object are "
	      "reported from this thread and the threads and processes it creates",
	      n_uncovered_at);
	/* SIGSYS unblocked here (the kernel's dispatch SIGSYS, blocked, would kill the process). */
	uint64_t unblock = SIGSYS_BIT;
	own_raw(SYS_rt_sigprocmask, SIG_UNBLOCK, (long)&unblock, 0, 8, 0);
out:
	guard--;
	return rc;
}

/* The entry of rt_sigaction, rt_sigprocmask and rt_sigreturn: off the hot path. */
__attribute__((noinline, cold)) NO_VECTORS static void enter_signal_calls(struct syscall_frame *f, uint64_t nr)
{
	if (nr == SYS_rt_sigaction) {
		sigaction_enter(f);
	} else if (nr == SYS_rt_sigprocmask) {
		sigprocmask_enter(f);
	} else {
		/*
		 * rt_sigreturn: the kernel reports its exit as that of syscall -1
		 * (restoring the registers sets orig_ax to -1) with the rax it restores.
		 */
		const ucontext_t *uc = (const ucontext_t *)((uint8_t *)f + sizeof(*f) + 128);
		if (handler.exit)
			handler.exit(handler.ctx, (uint64_t)-1, (int64_t)uc->uc_mcontext.gregs[REG_RAX]);
		restart_events(f);
	}
}

/*
 * A thread created (clone, clone3 with CLONE_VM and CLONE_SETTLS) while the
 * guard is set is the caller's own (the agent's helper thread): it starts
 * with the guard set, from its first instruction (its exit event, then what
 * the thread library does before calling the thread's function: rseq,
 * set_robust_list, rt_sigprocmask...), and keeps it unless it lifts it. Its
 * thread storage is made before the call (glibc and musl set it up, then
 * clone): the guard is written there, at this thread's offset from the
 * thread pointer (initial-exec: the same in every thread). Without
 * CLONE_SETTLS the child shares this thread's storage (CLONE_VM) or a copy of
 * it (fork): it has the guard already.
 */
NO_VECTORS static void guard_child(const struct syscall_frame *f, uint64_t nr)
{
	uint64_t flags, tls;
	if (nr == SYS_clone3) {
		const uint64_t *ca = (const uint64_t *)f->args[0]; /* struct clone_args */
		if (!ca || f->args[1] < 64)
			return;
		flags = ca[0];
		tls = ca[7];
	} else {
		flags = f->args[0];
		tls = f->args[4]; /* x86-64 clone: flags, stack, parent_tid, child_tid, tls */
	}
	if ((flags & (CLONE_VM | CLONE_SETTLS)) != (CLONE_VM | CLONE_SETTLS) || !tls)
		return;
	uint64_t tp;
	__asm__("mov %%fs:0, %0" : "=r"(tp));
	*(int *)(tls + ((uint64_t)&guard - tp)) = 1;
}

NO_VECTORS uint64_t syscall_hook_on_enter(struct syscall_frame *f)
{
	uint64_t nr = f->nr;
	/*
	 * With the guard set, an rt_sigreturn through a rewritten site is still the
	 * application's: that of a (wrapped) signal handler that interrupted the
	 * handler (the module's own signal handlers return through its restorer).
	 */
	if (__builtin_expect(guard, 0) && nr != SYS_rt_sigreturn) {
		count_own(own_enter, nr);
		if (nr == SYS_clone || nr == SYS_clone3)
			guard_child(f, nr);
	} else {
		int saved = guard;
		guard = 1;
		if (handler.enter)
			handler.enter(handler.ctx, nr, f->args);
		if (__builtin_expect(nr - SYS_rt_sigaction <= SYS_rt_sigreturn - SYS_rt_sigaction, 0))
			enter_signal_calls(f, nr);
		guard = saved;
	}
	switch (nr) {
	case SYS_clone:
		return 2;
	case SYS_vfork:
		return 3;
	case SYS_clone3:
		return 4;
	case SYS_exit:
	case SYS_exit_group:
	case SYS_rt_sigreturn:
		return 1;
	default:
		return 0;
	}
}

/* After rt_sigaction or rt_sigprocmask given a copy, and in a new thread or process. */
__attribute__((noinline, cold)) NO_VECTORS static void exit_rare(uint64_t nr, int64_t ret, struct syscall_frame *f)
{
	if (f && sa_swap.frame == f) {
		if (nr == SYS_rt_sigaction)
			sigaction_exit(ret, f);
		else
			f->args[1] = sa_swap.arg; /* rt_sigprocmask */
		sa_swap.frame = NULL;
	}
	/* A new thread or process: dispatch is not inherited. */
	if (sud_on && ret == 0 && (nr == SYS_clone || nr == SYS_clone3 || nr == SYS_fork || nr == SYS_vfork))
		sud_enable_thread();
}

NO_VECTORS void syscall_hook_on_exit(uint64_t nr, int64_t ret, struct syscall_frame *f)
{
	if (__builtin_expect(guard, 0)) {
		count_own(own_exit, nr);
		/* A guarded new thread (guard_child) or process: dispatch is not inherited either. */
		if (__builtin_expect(ret == 0 && sud_on, 0) &&
		    (nr == SYS_clone || nr == SYS_clone3 || nr == SYS_fork || nr == SYS_vfork))
			sud_enable_thread();
		return;
	}
	guard = 1;
	if (__builtin_expect(sa_swap.frame != NULL || (ret == 0 && sud_on), 0))
		exit_rare(nr, ret, f);
	if (handler.exit)
		handler.exit(handler.ctx, nr, ret);
	guard = 0;
}

NO_VECTORS void syscall_hooks_guard(bool on)
{
	guard += on ? 1 : -1;
}

bool syscall_hooks_installed(void)
{
	return __atomic_load_n(&installed, __ATOMIC_ACQUIRE);
}

void syscall_hooks_own_counts(uint64_t enter[SYSCALL_HOOK_MAX_NR], uint64_t exit[SYSCALL_HOOK_MAX_NR])
{
	for (int i = 0; i < SYSCALL_HOOK_MAX_NR; i++) {
		enter[i] = __atomic_load_n(&own_enter[i], __ATOMIC_RELAXED);
		exit[i] = __atomic_load_n(&own_exit[i], __ATOMIC_RELAXED);
	}
}

void syscall_hooks_get_stats(struct syscall_hook_stats *out)
{
	pthread_mutex_lock(&scan_lock);
	*out = stats;
	pthread_mutex_unlock(&scan_lock);
}

/* ---- logging what is not covered ---- */

static void logf_(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void logf_(const char *fmt, ...)
{
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (handler.log)
		handler.log(handler.ctx, line);
	else
		fprintf(stderr, "bpftime: %s\n", line);
}

static const char *short_name(const char *path)
{
	const char *s = strrchr(path, '/');
	return s ? s + 1 : path;
}

static void log_site(const char *obj, uint64_t base, uint64_t addr, const char *why)
{
	Dl_info di;
	char sym[200] = "";
	if (dladdr((void *)addr, &di) && di.dli_sname && di.dli_saddr)
		snprintf(sym, sizeof(sym), " (%s+0x%llx)", di.dli_sname,
			 (unsigned long long)(addr - (uint64_t)di.dli_saddr));
	logf_("syscall at %s+0x%llx%s not hooked: %s", short_name(obj), (unsigned long long)(addr - base), sym,
	      why);
	stats.uncovered++;
	if (n_uncovered_at < 256)
		uncovered_at[n_uncovered_at++] = addr;
}

/* ---- objects and their functions ---- */

struct func {
	uint64_t start, end;
	bool signal_frame; /* CIE augmentation 'S': a signal return trampoline (glibc's __restore_rt) */
};

struct object {
	char name[256];
	uint64_t base;
	uint64_t hdr; /* .eh_frame_hdr, 0 if none */
	uint64_t exec_lo[8], exec_hi[8];
	int n_exec;
};

struct done {
	uint64_t base;
	char name[256];
	uint64_t exec_lo[8], exec_hi[8];
	int n_exec;
};
static struct done *done_objs;
static int n_done, cap_done;

static bool object_done(const char *name, uint64_t base)
{
	for (int i = 0; i < n_done; i++)
		if (done_objs[i].base == base && strcmp(done_objs[i].name, name) == 0)
			return true;
	return false;
}

struct collect {
	struct object *objs;
	int n, cap;
};

static int collect_cb(struct dl_phdr_info *info, size_t size, void *data)
{
	(void)size;
	struct collect *c = data;
	if (c->n == c->cap) {
		int cap = c->cap ? c->cap * 2 : 16;
		struct object *o = realloc(c->objs, (size_t)cap * sizeof(*o));
		if (!o)
			return 1;
		c->objs = o;
		c->cap = cap;
	}
	struct object *o = &c->objs[c->n];
	memset(o, 0, sizeof(*o));
	const char *name = info->dlpi_name;
	char exe[256];
	if (!name || !*name) {
		ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
		exe[n > 0 ? n : 0] = 0;
		name = exe;
	}
	snprintf(o->name, sizeof(o->name), "%s", name);
	o->base = info->dlpi_addr;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type == PT_GNU_EH_FRAME)
			o->hdr = info->dlpi_addr + ph->p_vaddr;
		if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X) && o->n_exec < 8) {
			o->exec_lo[o->n_exec] = info->dlpi_addr + ph->p_vaddr;
			o->exec_hi[o->n_exec] = info->dlpi_addr + ph->p_vaddr + ph->p_memsz;
			o->n_exec++;
		}
	}
	if (o->n_exec && !object_done(o->name, o->base))
		c->n++;
	return 0;
}

/* Functions from .eh_frame_hdr's table (sorted by start); lengths from the FDEs. */
static struct func *read_functions(const struct object *o, int *n_out)
{
	*n_out = 0;
	if (!o->hdr)
		return NULL;
	const uint8_t *h = (const uint8_t *)o->hdr;
	/* version 1; eh_frame_ptr any 4-byte encoding; fde_count udata4; table datarel sdata4 */
	if (h[0] != 1 || h[2] != 0x03 || h[3] != 0x3b || (h[1] & 0x0f) != 0x0b)
		return NULL;
	uint32_t count;
	memcpy(&count, h + 8, 4);
	struct func *f = calloc(count ? count : 1, sizeof(*f));
	if (!f)
		return NULL;
	int n = 0;
	for (uint32_t i = 0; i < count; i++) {
		int32_t loc, fde_off;
		memcpy(&loc, h + 12 + 8 * i, 4);
		memcpy(&fde_off, h + 16 + 8 * i, 4);
		uint64_t start = o->hdr + (uint64_t)(int64_t)loc;
		const uint8_t *fde = (const uint8_t *)(o->hdr + (uint64_t)(int64_t)fde_off);
		uint32_t len;
		memcpy(&len, fde, 4);
		if (len == 0xffffffffu || len < 16)
			continue;
		/* pc_begin pcrel sdata4 (GCC's and clang's encoding): checked against the table. */
		int32_t pcrel;
		uint32_t range;
		memcpy(&pcrel, fde + 8, 4);
		memcpy(&range, fde + 12, 4);
		if ((uint64_t)fde + 8 + (uint64_t)(int64_t)pcrel != start)
			continue;
		f[n].start = start;
		f[n].end = start + range;
		uint32_t cie_ptr;
		memcpy(&cie_ptr, fde + 4, 4);
		const uint8_t *cie = fde + 4 - cie_ptr;
		f[n].signal_frame = cie[8] == 1 && strchr((const char *)cie + 9, 'S') != NULL;
		/* Such an FDE starts one byte before the code (in the padding before it: not an instruction). */
		if (f[n].signal_frame)
			f[n].start++;
		n++;
	}
	/*
	 * Hand-written assembly may end an FDE just before a syscall and start the
	 * next after it (glibc's clone and clone3 around the child's start): an FDE
	 * that ends where such a gap begins is extended over the gap.
	 */
	for (int i = 0; i + 1 < n; i++) {
		if (f[i].end >= f[i + 1].start || f[i].end + 2 > f[i + 1].start)
			continue;
		if (memmem((const void *)f[i].end, f[i + 1].start - f[i].end, "\x0f\x05", 2))
			f[i].end = f[i + 1].start;
	}
	*n_out = n;
	return f;
}

static const struct func *find_func(const struct func *f, int n, uint64_t addr)
{
	int lo = 0, hi = n - 1;
	const struct func *best = NULL;
	while (lo <= hi) {
		int mid = (lo + hi) / 2;
		if (f[mid].start <= addr) {
			best = &f[mid];
			lo = mid + 1;
		} else {
			hi = mid - 1;
		}
	}
	/* Functions may nest (hand-written assembly): look back a little for one that covers it. */
	for (int k = 0; best && k < 8; k++, best--) {
		if (addr >= best->start && addr < best->end)
			return best;
		if (best == f)
			break;
	}
	return NULL;
}

/* ---- branch targets ---- */

struct targets {
	uint64_t lo, hi;
	uint8_t *bits;
};

static void mark_target(struct targets *t, uint64_t a)
{
	if (a >= t->lo && a < t->hi)
		t->bits[(a - t->lo) / 8] |= (uint8_t)(1u << ((a - t->lo) % 8));
}

static bool is_target(const struct targets *t, uint64_t a)
{
	return a >= t->lo && a < t->hi && (t->bits[(a - t->lo) / 8] >> ((a - t->lo) % 8) & 1);
}

static bool is_terminator(ZydisMnemonic m)
{
	return m == ZYDIS_MNEMONIC_RET || m == ZYDIS_MNEMONIC_JMP || m == ZYDIS_MNEMONIC_UD2 ||
	       m == ZYDIS_MNEMONIC_HLT;
}

static bool in_exec(const struct object *o, uint64_t a, uint64_t len)
{
	for (int i = 0; i < o->n_exec; i++)
		if (a >= o->exec_lo[i] && a + len <= o->exec_hi[i])
			return true;
	return false;
}

/*
 * Entry points only data knows: every symbol of the object's .symtab and
 * .dynsym (read from its file) and every function start (a signal frame's
 * code, sa_restorer, starts one byte after its FDE).
 */
static void mark_entry_points(const struct object *o, const struct func *fns, int nf, struct targets *t)
{
	for (int i = 0; i < nf; i++)
		mark_target(t, fns[i].start);
	if (o->name[0] != '/')
		return;
	int fd = open(o->name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	ElfW(Ehdr) eh;
	ElfW(Shdr) *sh = NULL;
	if (pread(fd, &eh, sizeof(eh), 0) != sizeof(eh) || memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 ||
	    eh.e_shentsize != sizeof(ElfW(Shdr)) || eh.e_shnum == 0)
		goto out;
	size_t shlen = (size_t)eh.e_shnum * sizeof(ElfW(Shdr));
	sh = malloc(shlen);
	if (!sh || pread(fd, sh, shlen, (off_t)eh.e_shoff) != (ssize_t)shlen)
		goto out;
	for (int i = 0; i < eh.e_shnum; i++) {
		if (sh[i].sh_type != SHT_SYMTAB && sh[i].sh_type != SHT_DYNSYM)
			continue;
		ElfW(Sym) *syms = malloc(sh[i].sh_size);
		if (!syms)
			continue;
		if (pread(fd, syms, sh[i].sh_size, (off_t)sh[i].sh_offset) == (ssize_t)sh[i].sh_size) {
			for (size_t k = 0; k < sh[i].sh_size / sizeof(ElfW(Sym)); k++)
				if (syms[k].st_shndx != SHN_UNDEF && syms[k].st_value)
					mark_target(t, o->base + syms[k].st_value);
		}
		free(syms);
	}
out:
	free(sh);
	close(fd);
}

/* ---- one function's instructions ---- */

#define MAX_INSNS 65536

struct insn {
	uint64_t addr;
	uint8_t len;
	bool syscall, terminator;
};

static int decode_func(const ZydisDecoder *dec, const struct func *fn, struct insn *out, int max,
		       struct targets *t)
{
	int n = 0;
	ZydisDecodedInstruction in;
	for (uint64_t a = fn->start; a < fn->end && n < max;) {
		if (!ZYAN_SUCCESS(ZydisDecoderDecodeInstruction(dec, NULL, (const void *)a, fn->end - a, &in)))
			break;
		out[n].addr = a;
		out[n].len = in.length;
		out[n].syscall = in.mnemonic == ZYDIS_MNEMONIC_SYSCALL;
		out[n].terminator = is_terminator(in.mnemonic);
		n++;
		if (t && (in.attributes & ZYDIS_ATTRIB_IS_RELATIVE) && in.raw.imm[0].is_relative)
			mark_target(t, a + in.length + (uint64_t)in.raw.imm[0].value.s);
		a += in.length;
	}
	return n;
}

/* ---- a site's trampoline ---- */

struct window {
	int first, last; /* instruction indexes */
};

static void put(uint8_t **p, const void *b, size_t n)
{
	memcpy(*p, b, n);
	*p += n;
}

static void put_rel32(uint8_t **p, const uint8_t *insn_end_after, uint64_t target)
{
	int32_t rel = (int32_t)((int64_t)target - (int64_t)(uint64_t)insn_end_after);
	put(p, &rel, 4);
}

/*
 * patch.c installs its SIGTRAP and fixup handlers with libc's sa_restorer,
 * __restore_rt, one of the sites we rewrite: a thread returning from the
 * SIGTRAP handler while __restore_rt holds the int3 would take a SIGTRAP with
 * SIGTRAP blocked. Once they are installed (by the first patch), they get our
 * restorer (the handlers stay patch.c's).
 */
static bool restorers_set;

NO_VECTORS static long own_raw(long nr, long a, long b, long c, long d, long e)
{
	count_own(own_enter, (uint64_t)nr);
	long r = syscall_hook_raw(nr, a, b, c, d, e);
	count_own(own_exit, (uint64_t)nr);
	return r;
}

static void set_restorers(void)
{
	struct {
		uint64_t handler, flags, restorer, mask;
	} ksa;
	const int sigs[] = {SIGTRAP, SIGRTMAX - 1 /* patch.c's FIXUP_SIGNAL */};
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
		if (own_raw(SYS_rt_sigaction, sigs[i], 0, (long)&ksa, 8, 0) < 0 || ksa.handler <= 1 ||
		    !(ksa.flags & 0x04000000 /* SA_RESTORER */))
			continue;
		ksa.restorer = (uint64_t)syscall_hook_restorer;
		own_raw(SYS_rt_sigaction, sigs[i], (long)&ksa, 0, 8, 0);
	}
	restorers_set = true;
}

/*
 * A 6-byte call of `target`: direct (nop; call rel32) when in reach, else
 * through the literal `lit`. Either way the return address is the byte after
 * the 6 (the stub finds the special paths from it).
 */
static void put_call(uint8_t **p, uint64_t target, const uint8_t *lit)
{
	int64_t d = (int64_t)(target - (uint64_t)(*p + 6));
	if (d == (int32_t)d) {
		put(p, (const uint8_t[]){0x90, 0xe8}, 2);
		put_rel32(p, *p + 4, target);
	} else {
		put(p, (const uint8_t[]){0xff, 0x15}, 2);
		put_rel32(p, *p + 4, (uint64_t)lit);
	}
}

/*
 * Writes a trampoline at `t` (HOOK_TRAMPOLINE_SIZE bytes, within 2 GiB of
 * `back`): `pre` relocated, the call of the stub, the special paths, `post`
 * relocated, a jump to `back`. `a` is the address of the window's first byte
 * (for the hook's instruction map, `h`, which may be NULL). 0 or -1 (`why`).
 */
static int build_trampoline(uint8_t *t, const struct insn *pre, int npre, const struct insn *sc,
			    const struct insn *post, int npost, uint64_t a, uint64_t back, struct hook *h,
			    char *why, size_t whylen)
{
	uint8_t *lit = t + HOOK_TRAMPOLINE_SIZE - 16;
	uint8_t *p = t;
	int k = 0;
	for (int i = 0; i < npre; i++, k++) {
		if (h) {
			h->orig_off[k] = (uint8_t)(pre[i].addr - a);
			h->tramp_off[k] = (uint8_t)(p - t);
		}
		int n = hook_relocate_insn(p, (uint64_t)(lit - p), pre[i].addr, why, whylen);
		if (n < 0)
			return -1;
		p += n;
	}
	if (h) {
		h->orig_off[k] = (uint8_t)(sc->addr - a);
		h->tramp_off[k] = (uint8_t)(p - t);
	}
	k++;
	static const uint8_t lea_down[] = {0x48, 0x8d, 0x64, 0x24, 0x80};
	static const uint8_t lea_up[] = {0x48, 0x8d, 0xa4, 0x24, 0x80, 0, 0, 0};
	static const uint8_t lea_up8[] = {0x48, 0x8d, 0xa4, 0x24, 0x88, 0, 0, 0};
	if (p + 11 + SPECIAL_OFF + N_SPECIAL * SPECIAL_SIZE > lit)
		goto full;
	put(&p, lea_down, 5);
	put_call(&p, (uint64_t)syscall_hook_stub, lit);
	uint8_t *r = p;
	put(&p, lea_up, 8);
	uint8_t jmp_post_at = (uint8_t)(p - t);
	put(&p, (const uint8_t[]){0xe9, 0, 0, 0, 0}, 5);
	uint8_t *special_jmps[N_SPECIAL];
	for (int i = 0; i < N_SPECIAL; i++) {
		uint8_t *s = r + SPECIAL_OFF + i * SPECIAL_SIZE;
		p = s;
		put(&p, (const uint8_t[]){0x0f, 0x05}, 2);
		put(&p, lea_down, 5);
		put(&p, (const uint8_t[]){0x68}, 1);
		put(&p, &special_nr[i], 4);
		put_call(&p, (uint64_t)syscall_hook_exit_stub, lit + 8);
		put(&p, lea_up8, 8);
		special_jmps[i] = p;
		put(&p, (const uint8_t[]){0xe9, 0, 0, 0, 0}, 5);
		while (p < s + SPECIAL_SIZE)
			*p++ = 0x90;
	}
	uint8_t *post_at = p;
	for (int i = 0; i < npost; i++, k++) {
		if (p - t > 255)
			goto full;
		if (h) {
			h->orig_off[k] = (uint8_t)(post[i].addr - a);
			h->tramp_off[k] = (uint8_t)(p - t);
		}
		int n = hook_relocate_insn(p, (uint64_t)(lit - p), post[i].addr, why, whylen);
		if (n < 0)
			return -1;
		p += n;
	}
	if (p + 5 > lit)
		goto full;
	put(&p, (const uint8_t[]){0xe9}, 1); /* back: the trampoline is within 2 GiB of it */
	put_rel32(&p, p + 4, back);
	/* the jumps to post */
	uint8_t *q = t + jmp_post_at + 1;
	put_rel32(&q, q + 4, (uint64_t)post_at);
	for (int i = 0; i < N_SPECIAL; i++) {
		q = special_jmps[i] + 1;
		put_rel32(&q, q + 4, (uint64_t)post_at);
	}
	uint64_t stub = (uint64_t)syscall_hook_stub, exit_stub = (uint64_t)syscall_hook_exit_stub;
	memcpy(lit, &stub, 8);
	memcpy(lit + 8, &exit_stub, 8);
	__builtin___clear_cache((char *)t, (char *)t + HOOK_TRAMPOLINE_SIZE);
	if (h)
		h->n_insns = (uint8_t)k;
	return 0;
full:
	snprintf(why, whylen, "relocated window does not fit the trampoline");
	return -1;
}

/* Builds and patches; 0, or -1 with `why` filled (nothing patched). */
static int hook_site(const struct insn *ins, struct window w, int site, char *why, size_t whylen)
{
	uint64_t a = ins[w.first].addr, b = ins[w.last].addr + ins[w.last].len;
	uint8_t *t = trampoline_alloc(a, HOOK_TRAMPOLINE_SIZE);
	if (!t) {
		snprintf(why, whylen, "no memory for a trampoline within 2 GiB");
		return -1;
	}
	note_pool(t);
	struct hook *h = calloc(1, sizeof(*h));
	if (!h) {
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	if (build_trampoline(t, ins + w.first, site - w.first, ins + site, ins + site + 1, w.last - site, a, b, h,
			     why, whylen) < 0)
		goto refuse;
	h->addr = a;
	h->trampoline = t;
	h->displaced = t;
	h->displaced_len = (uint32_t)(b - a);
	memcpy(h->original, (const void *)a, HOOK_PATCH_LEN);
	if (hook_patch(h, why, whylen) < 0)
		goto refuse;
	if (!restorers_set)
		set_restorers();
	return 0;
refuse:
	free(h); /* the trampoline stays in its pool, never reached */
	return -1;
}

/* Every window rewritten (or being): a site is never patched twice, windows never overlap. */
static struct {
	uint64_t lo, hi;
} *taken;
static int n_taken, cap_taken;

static bool overlaps_taken(uint64_t a, uint64_t b)
{
	for (int i = 0; i < n_taken; i++)
		if (a < taken[i].hi && taken[i].lo < b)
			return true;
	return false;
}

static bool add_taken(uint64_t a, uint64_t b)
{
	if (n_taken == cap_taken) {
		int cap = cap_taken ? cap_taken * 2 : 256;
		void *p = realloc(taken, (size_t)cap * sizeof(*taken));
		if (!p)
			return false;
		taken = p;
		cap_taken = cap;
	}
	taken[n_taken].lo = a;
	taken[n_taken].hi = b;
	n_taken++;
	return true;
}

static bool window_ok(const struct insn *ins, int n, const struct func *fn, const struct targets *t, int site,
		      struct window w)
{
	if (w.first < 0 || w.last >= n || w.last - w.first + 1 > HOOK_MAX_DISPLACED)
		return false;
	uint64_t a = ins[w.first].addr, b = ins[w.last].addr + ins[w.last].len;
	if (b - a < HOOK_PATCH_LEN || a < fn->start || b > fn->end)
		return false;
	for (int i = w.first; i <= w.last; i++) {
		if (i != site && ins[i].syscall)
			return false;
		if (i > w.first && ins[i - 1].terminator)
			return false; /* reached only by a jump we may not see */
	}
	for (uint64_t x = a + 1; x < b; x++)
		if (is_target(t, x))
			return false;
	return !overlaps_taken(a, b);
}

/* Every syscall of one function. */
static void hook_function(const struct object *o, const ZydisDecoder *dec, const struct func *fn,
			  const struct targets *t, struct insn *ins)
{
	int n = decode_func(dec, fn, ins, MAX_INSNS, NULL);
	uint64_t decoded_end = n ? ins[n - 1].addr + ins[n - 1].len : fn->start;
	for (int s = 0; s < n; s++) {
		uint64_t sa = ins[s].addr;
		if (!ins[s].syscall || overlaps_taken(sa, sa + 2))
			continue; /* (done already: a function nested in another one) */
		stats.sites++;
		if (sa >= (uint64_t)syscall_hook_text_start && sa < (uint64_t)syscall_hook_text_end)
			continue;
		/* Candidates: fewest instructions after the syscall, then fewest bytes. */
		struct window best = {-1, -1};
		uint64_t best_len = ~0ull;
		for (int post = 0; post <= 3 && best.first < 0; post++) {
			for (int pre = 0; pre <= 4; pre++) {
				struct window w = {s - pre, s + post};
				if (!window_ok(ins, n, fn, t, s, w))
					continue;
				uint64_t len = ins[w.last].addr + ins[w.last].len - ins[w.first].addr;
				if (len < best_len) {
					best = w;
					best_len = len;
				}
			}
		}
		if (best.first < 0) {
			log_site(o->name, o->base, sa,
				 is_target(t, sa) && s + 1 < n && is_target(t, ins[s + 1].addr)
					 ? "branch targets on both sides"
					 : "no window of whole instructions without a branch target inside");
			continue;
		}
		if (getenv("SYSCALL_HOOK_DEBUG"))
			fprintf(stderr, "site %s+0x%llx window +0x%llx..+0x%llx\n", short_name(o->name),
				(unsigned long long)(sa - o->base), (unsigned long long)(ins[best.first].addr - o->base),
				(unsigned long long)(ins[best.last].addr + ins[best.last].len - o->base));
		char why[256];
		if (hook_site(ins, best, s, why, sizeof(why)) < 0) {
			log_site(o->name, o->base, sa, why);
			continue;
		}
		stats.patched++;
		add_taken(ins[best.first].addr, ins[best.last].addr + ins[best.last].len);
	}
	/* Past what decodes (data, or bytes Zydis refuses): any 0f 05 there is logged. */
	for (uint64_t x = decoded_end; x + 1 < fn->end; x++)
		if (((const uint8_t *)x)[0] == 0x0f && ((const uint8_t *)x)[1] == 0x05)
			log_site(o->name, o->base, x, "after bytes that do not decode in its function");
}

static void hook_object(const struct object *o)
{
	stats.objects++;
	int nf;
	struct func *fns = read_functions(o, &nf);
	ZydisDecoder dec;
	ZydisDecoderInit(&dec, ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64);
	struct targets t = {~0ull, 0, NULL};
	for (int i = 0; i < o->n_exec; i++) {
		if (o->exec_lo[i] < t.lo)
			t.lo = o->exec_lo[i];
		if (o->exec_hi[i] > t.hi)
			t.hi = o->exec_hi[i];
	}
	t.bits = calloc((t.hi - t.lo) / 8 + 1, 1);
	struct insn *ins = malloc(MAX_INSNS * sizeof(*ins));
	if (!t.bits || !ins) {
		logf_("%s: out of memory, its syscalls are not hooked", o->name);
		goto out;
	}
	mark_entry_points(o, fns, nf, &t);
	/* Pass 1: every function's direct branch targets. */
	for (int i = 0; i < nf; i++)
		if (in_exec(o, fns[i].start, fns[i].end - fns[i].start))
			decode_func(&dec, &fns[i], ins, MAX_INSNS, &t);
	/* Pass 2: the functions holding 0f 05; bytes outside any function are logged. */
	const struct func *deferred[8];
	int n_deferred = 0;
	for (int r = 0; r < o->n_exec; r++) {
		const uint8_t *lo = (const uint8_t *)o->exec_lo[r], *hi = (const uint8_t *)o->exec_hi[r];
		const struct func *last = NULL;
		for (const uint8_t *p = lo; p + 1 < hi; p++) {
			if (p[0] != 0x0f || p[1] != 0x05)
				continue;
			uint64_t a = (uint64_t)p;
			if (a >= (uint64_t)syscall_hook_text_start && a < (uint64_t)syscall_hook_text_end)
				continue;
			const struct func *fn = find_func(fns, nf, a);
			if (!fn) {
				log_site(o->name, o->base, a, "0f 05 outside any function with an FDE (may not be an instruction)");
				continue;
			}
			if (fn == last)
				continue;
			last = fn;
			if (fn->signal_frame && !restorers_set) {
				deferred[n_deferred < 8 ? n_deferred++ : 7] = fn;
				continue;
			}
			hook_function(o, &dec, fn, &t, ins);
		}
	}
	/* Signal return trampolines once our restorer is in place (after the first patch). */
	for (int i = 0; i < n_deferred; i++)
		hook_function(o, &dec, deferred[i], &t, ins);
out:
	free(t.bits);
	free(ins);
	free(fns);
	if (n_done == cap_done) {
		int cap = cap_done ? cap_done * 2 : 16;
		struct done *d = realloc(done_objs, (size_t)cap * sizeof(*d));
		if (!d)
			return;
		done_objs = d;
		cap_done = cap;
	}
	done_objs[n_done].base = o->base;
	memcpy(done_objs[n_done].exec_lo, o->exec_lo, sizeof(o->exec_lo));
	memcpy(done_objs[n_done].exec_hi, o->exec_hi, sizeof(o->exec_hi));
	done_objs[n_done].n_exec = o->n_exec;
	snprintf(done_objs[n_done].name, sizeof(done_objs[n_done].name), "%s", o->name);
	n_done++;
}

/* Executable mappings no loaded object accounts for: JIT code, hand-mapped files. */
static void log_other_exec(void)
{
	FILE *f = fopen("/proc/self/maps", "re");
	if (!f)
		return;
	char line[512];
	while (fgets(line, sizeof(line), f)) {
		unsigned long long lo, hi;
		char perms[8];
		int off = 0;
		if (sscanf(line, "%llx-%llx %7s %*s %*s %*s %n", &lo, &hi, perms, &off) < 3 || perms[2] != 'x')
			continue;
		char *path = line + off;
		path[strcspn(path, "\n")] = 0;
		bool known = false;
		for (int i = 0; i < n_done && !known; i++)
			for (int k = 0; k < done_objs[i].n_exec; k++)
				if (lo < done_objs[i].exec_hi[k] && done_objs[i].exec_lo[k] < hi)
					known = true;
		if (known || strcmp(path, "[vdso]") == 0)
			continue;
		if (strcmp(path, "[vsyscall]") == 0)
			continue; /* emulated by the kernel, never executed */
		bool ours = false;
		for (int i = 0; i < n_pools_seen; i++)
			if (pools_seen[i] >= lo && pools_seen[i] < hi)
				ours = true;
		if (ours)
			continue; /* trampolines: their syscalls are the hooked ones */
		stats.anon_exec++;
		logf_("executable mapping 0x%llx-0x%llx %s: not a loaded object, syscalls made from it are not hooked",
		      lo, hi, *path ? path : "(anonymous)");
	}
	fclose(f);
}

static int scan(void)
{
	struct collect c = {0};
	dl_iterate_phdr(collect_cb, &c);
	int before = (int)stats.patched;
	for (int i = 0; i < c.n; i++)
		hook_object(&c.objs[i]);
	free(c.objs);
	return (int)stats.patched - before;
}

int syscall_hooks_install(const struct syscall_handler *h, char *err, size_t errlen)
{
	guard++;
	pthread_mutex_lock(&scan_lock);
	int rc = 0;
	if (installed) {
		snprintf(err, errlen, "syscall hooks are already installed");
		rc = -1;
	} else {
		handler = *h;
		installed = true;
		scan();
		log_other_exec();
	}
	pthread_mutex_unlock(&scan_lock);
	guard--;
	return rc;
}

int syscall_hooks_scan_new(char *err, size_t errlen)
{
	guard++;
	pthread_mutex_lock(&scan_lock);
	int rc;
	if (!installed) {
		snprintf(err, errlen, "syscall hooks are not installed");
		rc = -1;
	} else {
		rc = scan();
	}
	pthread_mutex_unlock(&scan_lock);
	guard--;
	return rc;
}
