/*
 * Syscall hooks: every `syscall` instruction (0f 05) in the executable
 * file-backed code of the process is rewritten to jump to a trampoline that
 * reports the call to a handler, makes it, reports its result and goes back.
 * This module knows nothing of eBPF: it takes two functions.
 *
 * The handler runs with a per-thread guard set: its own syscalls (and the
 * module's) go through the trampolines unreported. It must not change the
 * vector registers (build it with NO_VECTORS, or save them itself): code
 * around a syscall instruction may keep values there.
 *
 * Events, as the kernel's raw_syscalls tracepoints report them:
 *  - enter(nr, args) before the call, exit(nr, ret) after it;
 *  - clone, clone3, vfork: the exit event in the parent and in the child
 *    (ret 0), the child on its own stack: nothing of ours is kept on the
 *    stack across these calls;
 *  - execve/execveat: an exit event only when they fail;
 *  - exit, exit_group: the enter event only; rt_sigreturn: its enter event,
 *    and an exit event as the kernel reports it, for nr -1 (the restored
 *    registers' orig_ax), with the restored rax, made before the call;
 *  - a signal arriving while the handler runs: the application's signal
 *    handlers are installed wrapped (rt_sigaction's act is swapped for a copy
 *    naming our wrapper, oldact shows the application's own), and the wrapper
 *    lifts the guard: syscalls of a signal handler are reported, even when it
 *    interrupted the handler (which is then re-entered, nested);
 *  - a call interrupted by a signal and restarted by the kernel: exit with
 *    -ERESTARTSYS (or -ERESTART_RESTARTBLOCK), then enter again (restart_syscall
 *    for the latter), seen when the signal handler returns (rt_sigreturn).
 */
#ifndef BPFTIME_SYSCALL_HOOK_H
#define BPFTIME_SYSCALL_HOOK_H

#include "hook.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SYSCALL_HOOK_MAX_NR 512

struct syscall_handler {
	void (*enter)(void *ctx, uint64_t nr, const uint64_t args[6]);
	void (*exit)(void *ctx, uint64_t nr, int64_t ret);
	void *ctx;
	/* Where sites that are not covered are reported, one line each (NULL: stderr). */
	void (*log)(void *ctx, const char *line);
	/* Optional: each syscall the module (or the handler) makes, never reported to enter/exit. */
	void (*own)(void *ctx, uint64_t nr, bool exit);
};

struct syscall_hook_stats {
	uint32_t objects;   /* ELF objects scanned */
	uint32_t sites;     /* syscall instructions found in functions */
	uint32_t patched;   /* rewritten */
	uint32_t uncovered; /* refused or unpatchable: each logged */
	uint32_t anon_exec; /* anonymous executable mappings (JIT code): each logged */
};

/*
 * Rewrites every syscall site of the objects loaded now. The handler is
 * called from then on. 0, or -1 with `err` filled (sites patched before the
 * failure stay patched: they work). Once per process.
 */
HIDDEN int syscall_hooks_install(const struct syscall_handler *h, char *err, size_t errlen);
/* Rewrites the sites of objects loaded (dlopen) since the last call. Returns sites patched, or -1. */
HIDDEN int syscall_hooks_scan_new(char *err, size_t errlen);
HIDDEN void syscall_hooks_get_stats(struct syscall_hook_stats *out);
/*
 * Syscall User Dispatch for what is not rewritten (the vDSO's fallbacks,
 * anonymous executable memory such as JIT code): a syscall made from there
 * raises SIGSYS, whose handler sends the thread through a trampoline built
 * for that return address, as for a rewritten site. Dispatch is per thread
 * and not inherited: on for the calling thread, and for the threads and
 * processes created after through a rewritten clone/clone3/fork/vfork (in the
 * child's exit path). SIGSYS is kept unblocked (stripped from the masks
 * given to rt_sigprocmask and rt_sigaction: blocked, the kernel's SIGSYS would
 * kill the process); the application's own SIGSYS handler gets the signals
 * that are not dispatch's. 0, or -1 with `err` filled (e.g. a kernel without it).
 */
HIDDEN int syscall_hooks_sud_enable(char *err, size_t errlen);

/*
 * Sets (on) or lifts (off) this thread's guard, nesting: while set, the
 * thread's syscalls are the caller's own (counted, never reported), as the
 * handler's are. For a thread that is never the application's (a helper
 * thread) or a stretch of the caller's own work on the application's threads.
 * A thread created (clone/clone3 with CLONE_VM and CLONE_SETTLS) while the
 * guard is set starts with it set (once), from its first instruction, and
 * keeps it until it lifts it: a helper created under the guard is never seen.
 */
HIDDEN void syscall_hooks_guard(bool on);
/* Whether syscall_hooks_install has run. */
HIDDEN bool syscall_hooks_installed(void);

/* Syscalls made with the guard set (by the module or the handler), per nr: never reported. */
HIDDEN void syscall_hooks_own_counts(uint64_t enter[SYSCALL_HOOK_MAX_NR], uint64_t exit[SYSCALL_HOOK_MAX_NR]);

/* Internal: the stubs (syscall_stubs.S) and what they call. */
struct syscall_frame {
	uint64_t args[6]; /* rdi, rsi, rdx, r10, r8, r9 */
	uint64_t nr;      /* rax; after the call, its result */
	uint64_t flags;   /* ah: lahf's flags, al: OF */
	uint64_t rbp;     /* the original code's */
	uint64_t site_ret; /* into the site's trampoline */
};
_Static_assert(sizeof(struct syscall_frame) == 80, "syscall_frame layout (syscall_stubs.S)");
/* 0: make the call; 1: no return (exit, exit_group, rt_sigreturn); 2 + i: the site's special path i. */
HIDDEN uint64_t syscall_hook_on_enter(struct syscall_frame *f);
/* `f`: the frame (its args given back to the original code), NULL after clone/vfork/clone3. */
HIDDEN void syscall_hook_on_exit(uint64_t nr, int64_t ret, struct syscall_frame *f);
HIDDEN void syscall_hook_stub(void);
HIDDEN void syscall_hook_restorer(void);
HIDDEN long syscall_hook_raw(long nr, long a, long b, long c, long d, long e);
HIDDEN void syscall_hook_restorer_count(void);
HIDDEN extern __thread volatile char syscall_hook_sud_selector;
HIDDEN extern uint64_t syscall_hook_own_enter[SYSCALL_HOOK_MAX_NR], syscall_hook_own_exit[SYSCALL_HOOK_MAX_NR];
HIDDEN void syscall_hook_exit_stub(void);
HIDDEN extern char syscall_hook_insn[], syscall_hook_text_start[], syscall_hook_text_end[];

#endif
