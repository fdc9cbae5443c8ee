/*
 * The pid/tgid cache test's target: calls probed_ids(getpid(), gettid()) (and the asm
 * xmm_round, which probes see the same way) from the places whose ids a per-thread cache
 * could get wrong, always asking the kernel for the ids it passes. Prints
 * {"calls":N,"xmm_bad":M}: N calls made in this process and its children, M xmm checks that
 * failed.
 *
 *   threads N T  the main thread and T threads, N calls each
 *   fork N       N calls, then children of fork(), of a raw fork system call and of a
 *                clone without CLONE_VM, and a thread in a forked child: N calls each
 *   forkloop N   N times: a call, then a fork whose child makes 3 calls and exits
 *   xmm N        N calls of xmm_round
 *   vfork N      N times: tgkill(pid, tid, 0) with the kernel's ids (a syscall tracepoint checks
 *                them), then a vfork child does the same and exits; then the parent again
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

long xmm_round(long pid, long tid);
extern long xmm_entry_bad;

__attribute__((noinline)) long probed_ids(long pid, long tid)
{
	__asm__ volatile("" ::: "memory");
	return pid << 32 | (unsigned)tid;
}

static long kernel_tid(void)
{
	return syscall(SYS_gettid);
}

static long kernel_pid(void)
{
	return syscall(SYS_getpid);
}

static void calls(long n)
{
	for (long i = 0; i < n; i++)
		if (probed_ids(kernel_pid(), kernel_tid()) != (kernel_pid() << 32 | (unsigned)kernel_tid()))
			abort();
}

static long per;
static void *thread_calls(void *arg)
{
	(void)arg;
	calls(per);
	return NULL;
}

static void threads(long n, int t)
{
	pthread_t th[16];
	per = n;
	for (int i = 0; i < t; i++)
		pthread_create(&th[i], NULL, thread_calls, NULL);
	calls(n);
	for (int i = 0; i < t; i++)
		pthread_join(th[i], NULL);
}

/* Waits for child and fails unless it exited with 0. */
static void reap(pid_t child)
{
	int status;
	if (child < 0 || waitpid(child, &status, __WALL) != child || !WIFEXITED(status) ||
	    WEXITSTATUS(status) != 0) {
		fprintf(stderr, "child %d failed\n", child);
		exit(1);
	}
}

static char clone_stack[64 * 1024] __attribute__((aligned(16)));
static int clone_child(void *arg)
{
	calls(*(long *)arg);
	return 0;
}

static long forks(long n)
{
	calls(n);
	pid_t c = fork();
	if (c == 0) {
		calls(n);
		_exit(0);
	}
	reap(c);
	c = (pid_t)syscall(SYS_fork); /* no pthread_atfork handlers run */
	if (c == 0) {
		calls(n);
		_exit(0);
	}
	reap(c);
	c = clone(clone_child, clone_stack + sizeof(clone_stack), SIGCHLD, &n);
	reap(c);
	c = fork();
	if (c == 0) {
		threads(n, 1);
		_exit(0);
	}
	reap(c);
	return 6 * n;
}

static long fork_loop(long n)
{
	for (long i = 0; i < n; i++) {
		calls(1);
		pid_t c = fork();
		if (c == 0) {
			calls(3);
			_exit(0);
		}
		reap(c);
	}
	return 4 * n;
}

/* Signal 0 to this thread: nothing is sent; its sys_enter_tgkill carries the kernel's ids. */
static void tgkill_ids(void)
{
	syscall(SYS_tgkill, kernel_pid(), kernel_tid(), 0);
}

/* A vfork child that says its ids and exits (its own frame: the caller's locals stay safe). */
static __attribute__((noinline)) pid_t vfork_child(void)
{
	pid_t c = vfork();
	if (c == 0) {
		tgkill_ids();
		_exit(0);
	}
	return c;
}

static long vforks(long n)
{
	for (long i = 0; i < n; i++) {
		tgkill_ids();
		reap(vfork_child());
		tgkill_ids();
	}
	return 3 * n;
}

int main(int argc, char **argv)
{
	const char *mode = argc > 2 ? argv[1] : "";
	long n = argc > 2 ? atol(argv[2]) : 0, total = 0, xmm_bad = 0;
	if (!strcmp(mode, "threads")) {
		int t = argc > 3 ? atoi(argv[3]) : 1;
		threads(n, t);
		total = n * (t + 1);
	} else if (!strcmp(mode, "fork")) {
		total = forks(n);
	} else if (!strcmp(mode, "forkloop")) {
		total = fork_loop(n);
	} else if (!strcmp(mode, "vfork")) {
		total = vforks(n);
	} else if (!strcmp(mode, "xmm")) {
		for (long i = 0; i < n; i++)
			xmm_bad += xmm_round(kernel_pid(), kernel_tid());
		xmm_bad += xmm_entry_bad;
		total = n;
	} else {
		fprintf(stderr, "usage: pid_target threads|fork|forkloop|xmm|vfork N [T]\n");
		return 2;
	}
	printf("{\"calls\":%ld,\"xmm_bad\":%ld}\n", total, xmm_bad);
	return 0;
}
