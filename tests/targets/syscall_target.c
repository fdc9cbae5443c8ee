/*
 * The syscall hooks' test target: links csrc/hook directly, measures
 * getppid with and without the hooks, installs them with a counting handler
 * and runs a deterministic workload between two marker calls,
 * close(7770001) and close(7770002): threads, fork, vfork + exec, a failing
 * execve, signals whose handler makes syscalls, a blocking read restarted
 * (SA_RESTART) and interrupted (EINTR), nanosleep restarted by the kernel
 * (restart_syscall), dlopen of a library with syscalls of its own. Prints
 * its counts per syscall number as JSON. Counters live in shared memory: a
 * forked child's count too.
 */
#define _GNU_SOURCE
#include "../../csrc/hook/syscall_hook.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MARK_BEGIN 7770001
#define MARK_END 7770002

struct counts {
	uint64_t enter[SYSCALL_HOOK_MAX_NR], exit[SYSCALL_HOOK_MAX_NR];
	uint64_t own_enter[SYSCALL_HOOK_MAX_NR], own_exit[SYSCALL_HOOK_MAX_NR]; /* the module's, any process */
	volatile int on;
};
static struct counts *C;

/* nr -1 (rt_sigreturn's exit, as the kernel reports it) is counted at SYSCALL_HOOK_MAX_NR - 1. */

/* Defined for relocate.c's hook_create, which this target does not use. */
void bpftime_probe_entry_stub(void) {}

NO_VECTORS static void on_enter(void *ctx, uint64_t nr, const uint64_t args[6])
{
	(void)ctx;
	if (C->on)
		__atomic_add_fetch(&C->enter[nr % SYSCALL_HOOK_MAX_NR], 1, __ATOMIC_RELAXED);
	/* A signal arriving while the handler runs: sent (and delivered) from inside it. */
	if (nr == SYS_getpgid && args[0] == 4242)
		syscall(SYS_tgkill, getpid(), syscall(SYS_gettid), SIGUSR1);
}

NO_VECTORS static void on_exit_(void *ctx, uint64_t nr, int64_t ret)
{
	(void)ctx, (void)ret;
	if (C->on)
		__atomic_add_fetch(&C->exit[nr % SYSCALL_HOOK_MAX_NR], 1, __ATOMIC_RELAXED);
}

NO_VECTORS static void on_own(void *ctx, uint64_t nr, bool exit)
{
	(void)ctx;
	if (C->on)
		__atomic_add_fetch(&(exit ? C->own_exit : C->own_enter)[nr % SYSCALL_HOOK_MAX_NR], 1,
				   __ATOMIC_RELAXED);
}

static char logbuf[65536];
static size_t loglen;
static void on_log(void *ctx, const char *line)
{
	(void)ctx;
	int n = snprintf(logbuf + loglen, sizeof(logbuf) - loglen, "%s\n", line);
	if (n > 0 && loglen + (size_t)n < sizeof(logbuf))
		loglen += (size_t)n;
}

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

/*
 * getppid without the hooks: from anonymous executable memory (as JIT code
 * would be), which the hooks do not rewrite (and log).
 */
static long (*raw_getppid)(void);

static void make_raw_getppid(void)
{
	static const uint8_t code[] = {0xb8, SYS_getppid, 0, 0, 0, 0x0f, 0x05, 0xc3}; /* mov $nr,%eax; syscall; ret */
	uint8_t *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		abort();
	memcpy(p, code, sizeof(code));
	mprotect(p, 4096, PROT_READ | PROT_EXEC);
	raw_getppid = (long (*)(void))p;
}

/* This thread's CPU time: the machine is shared, time spent descheduled is not the call's. */
static double cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static double round_ns(bool raw, int n)
{
	double t0 = cpu_ns();
	if (raw)
		for (int i = 0; i < n; i++)
			raw_getppid();
	else
		for (int i = 0; i < n; i++)
			getppid();
	return (cpu_ns() - t0) / n;
}

/*
 * ns per getppid() through libc (hooked) and native: the best of many short
 * alternating rounds (n calls in all), which leaves out preemption and other
 * tenants' noise.
 */
static void bench_getppid(int n, double *native, double *hooked)
{
	*native = *hooked = 1e18;
	int per = 2000, rounds = n / per > 31 ? n / per : 31;
	for (int r = 0; r < rounds; r++) {
		double a = round_ns(true, per), b = round_ns(false, per);
		if (a < *native)
			*native = a;
		if (b < *hooked)
			*hooked = b;
	}
}

static void *thread_work(void *arg)
{
	int fd = open("/dev/null", O_WRONLY);
	for (int i = 0; i < 10; i++) {
		getppid();
		if (write(fd, "x", 1) != 1)
			abort();
	}
	close(fd);
	struct timespec ts = {0, 1000000};
	nanosleep(&ts, NULL);
	return arg;
}

static volatile int sig_seen;
static void on_signal(int sig)
{
	/* syscalls from a signal handler */
	getppid();
	int fd = open("/dev/null", O_WRONLY);
	if (write(fd, "s", 1) != 1)
		abort();
	close(fd);
	sig_seen += sig > 0;
}

struct poke {
	pid_t tid;
	int sig;
	int wfd; /* writes a byte here after the signal, -1: none */
	long delay_ms;
	long blocked_in; /* the signal is sent once `tid` is blocked in this syscall */
};

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Waits (at most 2 s) until thread `tid` of process `pid` is blocked in syscall `nr`. */
static void wait_blocked(pid_t pid, pid_t tid, long nr)
{
	char path[64], buf[64];
	snprintf(path, sizeof(path), "/proc/%d/task/%d/syscall", pid, tid);
	for (int i = 0; i < 2000; i++) {
		int fd = open(path, O_RDONLY);
		ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
		if (fd >= 0)
			close(fd);
		if (n > 0) {
			buf[n] = 0;
			if (strtol(buf, NULL, 10) == nr)
				return;
		}
		sleep_ms(1);
	}
}

static void *poker(void *arg)
{
	struct poke *p = arg;
	wait_blocked(getpid(), p->tid, p->blocked_in);
	sleep_ms(p->delay_ms);
	syscall(SYS_tgkill, getpid(), p->tid, p->sig);
	if (p->wfd >= 0) {
		sleep_ms(p->delay_ms);
		if (write(p->wfd, "b", 1) != 1)
			abort();
	}
	return NULL;
}

static void *watcher(void *arg)
{
	struct poke *p = arg;
	wait_blocked(getpid(), p->tid, p->blocked_in);
	if (write(p->wfd, "g", 1) != 1)
		abort();
	return NULL;
}

static void set_handler(int sig, int flags)
{
	struct sigaction sa = {0};
	sa.sa_handler = on_signal;
	sa.sa_flags = flags;
	sigemptyset(&sa.sa_mask);
	sigaction(sig, &sa, NULL);
}

/* A read blocked in the kernel, interrupted by `sig` from another thread. */
static long interrupted_read(int sig, int flags)
{
	set_handler(sig, flags);
	int p[2];
	if (pipe(p) < 0)
		abort();
	struct poke pk = {(pid_t)syscall(SYS_gettid), sig, p[1], 20, SYS_read};
	pthread_t th;
	pthread_create(&th, NULL, poker, &pk);
	char c;
	long r = read(p[0], &c, 1);
	long e = r < 0 ? errno : 0;
	if (r < 0) /* EINTR: the byte still comes */
		r = read(p[0], &c, 1);
	pthread_join(th, NULL);
	close(p[0]);
	close(p[1]);
	return r < 0 ? -1 : e;
}

static void workload(const char *dl_path, long *results)
{
	/* threads created after install (glibc: clone3) */
	pthread_t th[4];
	for (int i = 0; i < 4; i++)
		pthread_create(&th[i], NULL, thread_work, NULL);
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);

	/* fork: the child works and exits */
	pid_t pid = fork();
	if (pid == 0) {
		for (int i = 0; i < 5; i++)
			getppid();
		thread_work(NULL);
		_exit(0);
	}
	waitpid(pid, NULL, 0);

	/* vfork + exec of /bin/true */
	pid = vfork();
	if (pid == 0) {
		char *argv[] = {"/bin/true", NULL};
		execve("/bin/true", argv, environ);
		_exit(127);
	}
	waitpid(pid, NULL, 0);

	/* posix_spawn: glibc clones with CLONE_VM | CLONE_VFORK onto a stack of its own, all signals blocked */
	char *targv[] = {"/bin/true", NULL};
	if (posix_spawn(&pid, "/bin/true", NULL, NULL, targv, environ) == 0)
		waitpid(pid, NULL, 0);

	/* a failing execve */
	char *argv[] = {"/nonexistent/bin", NULL};
	results[0] = execve(argv[0], argv, environ) < 0 ? errno : 0;

	/* signals with a handler making syscalls */
	set_handler(SIGUSR1, SA_RESTART);
	for (int i = 0; i < 3; i++)
		kill(getpid(), SIGUSR1);

	/* a signal delivered while the hooks' handler runs (it sends it); its handler's syscalls are reported */
	syscall(SYS_getpgid, 4242);

	/* a blocking read restarted (SA_RESTART), then one interrupted (EINTR) */
	results[1] = interrupted_read(SIGUSR2, SA_RESTART);
	results[2] = interrupted_read(SIGALRM, 0);

	/* nanosleep interrupted by a SA_RESTART handler: the kernel restarts it (restart_syscall) */
	set_handler(SIGUSR2, SA_RESTART);
	struct poke pk = {(pid_t)syscall(SYS_gettid), SIGUSR2, -1, 20, SYS_clock_nanosleep};
	pthread_t pt;
	pthread_create(&pt, NULL, poker, &pk);
	struct timespec ts = {0, 200000000};
	results[3] = clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, NULL);
	pthread_join(pt, NULL);
	ts.tv_nsec = 1000000;
	nanosleep(&ts, NULL);

	/*
	 * nanosleep stopped (SIGSTOP) and continued (SIGCONT) by a child: no handler
	 * runs, the kernel restarts it by itself (restart_syscall), which nothing in
	 * the process can see: the kernel counts one restart_syscall more than we do.
	 */
	int go[2];
	if (pipe(go) < 0)
		abort();
	pid = fork();
	if (pid == 0) {
		char c;
		pid_t parent = getppid();
		if (read(go[0], &c, 1) != 1)
			_exit(1);
		kill(parent, SIGSTOP);
		sleep_ms(20);
		kill(parent, SIGCONT);
		_exit(0);
	}
	/* A thread tells the child once this one sleeps (only the process itself may read where it blocks). */
	struct poke watch = {(pid_t)syscall(SYS_gettid), 0, go[1], 0, SYS_clock_nanosleep};
	pthread_create(&pt, NULL, watcher, &watch);
	ts.tv_nsec = 300000000;
	results[3] = clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, NULL);
	pthread_join(pt, NULL);
	waitpid(pid, NULL, 0);
	close(go[0]);
	close(go[1]);

	/* dlopen of a library with syscall instructions of its own */
	void *lib = dlopen(dl_path, RTLD_NOW);
	if (!lib) {
		fprintf(stderr, "dlopen: %s\n", dlerror());
		exit(1);
	}
	char err[256];
	results[4] = syscall_hooks_scan_new(err, sizeof(err));
	long (*work)(int) = (long (*)(int))dlsym(lib, "syscall_dl_work");
	results[5] = work(10) != 0;
}

int syscall_regs_check(void); /* syscall_regs.S */

/*
 * Syscalls from code that is not rewritten: the vDSO's fallback (a CPU-time
 * clock is not one the vDSO answers) and anonymous executable memory, in this
 * thread, a new thread and a forked child. Under dispatch they are reported.
 */
static long uncovered_once(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return raw_getppid() > 0 ? 2 : 0;
}

static void *uncovered_thread(void *unused)
{
	(void)unused;
	return (void *)uncovered_once();
}

static long uncovered_work(void)
{
	long n = uncovered_once();
	pthread_t th;
	void *r;
	pthread_create(&th, NULL, uncovered_thread, NULL);
	pthread_join(th, &r);
	n += (long)r;
	pid_t pid = fork();
	if (pid == 0)
		_exit(uncovered_once() == 2 ? 0 : 1);
	int st;
	waitpid(pid, &st, 0);
	return n + (WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 2 : 0);
}

static void print_counts(const char *key, const uint64_t *a)
{
	printf("\"%s\":{", key);
	const char *sep = "";
	for (int i = 0; i < SYSCALL_HOOK_MAX_NR; i++)
		if (a[i]) {
			printf("%s\"%d\":%llu", sep, i == SYSCALL_HOOK_MAX_NR - 1 ? -1 : i, (unsigned long long)a[i]);
			sep = ",";
		}
	printf("}");
}

static volatile int stress_stop;
static void *stress_thread(void *unused)
{
	(void)unused;
	int fd = open("/dev/null", O_WRONLY);
	long calls = 0;
	while (!stress_stop) {
		getppid();
		if (write(fd, "x", 1) != 1)
			abort();
		calls += 2;
	}
	close(fd);
	return (void *)calls;
}

/* The hooks installed while 3 threads make syscalls in a loop; then counted for 200 ms. */
static int stress(void)
{
	pthread_t th[3];
	for (int i = 0; i < 3; i++)
		pthread_create(&th[i], NULL, stress_thread, NULL);
	sleep_ms(50);
	struct syscall_handler h = {on_enter, on_exit_, NULL, on_log, on_own};
	char err[256];
	if (syscall_hooks_install(&h, err, sizeof(err)) < 0) {
		fprintf(stderr, "install: %s\n", err);
		return 1;
	}
	C->on = 1;
	sleep_ms(200);
	C->on = 0;
	stress_stop = 1;
	long calls = 0;
	for (int i = 0; i < 3; i++) {
		void *r;
		pthread_join(th[i], &r);
		calls += (long)r;
	}
	struct syscall_hook_stats st;
	syscall_hooks_get_stats(&st);
	printf("{\"patched\":%u,\"calls\":%ld,\"getppid_enter\":%llu,\"write_exit\":%llu}\n", st.patched, calls,
	       (unsigned long long)C->enter[SYS_getppid], (unsigned long long)C->exit[SYS_write]);
	return 0;
}

int main(int argc, char **argv)
{
	int n = argc > 2 ? atoi(argv[2]) : 200000;
	const char *dl_path = argc > 1 ? argv[1] : "./libsyscall_dl.so";
	C = mmap(NULL, sizeof(*C), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (C == MAP_FAILED)
		return 1;
	if (argc > 3 && strcmp(argv[3], "stress") == 0)
		return stress();
	make_raw_getppid();
	double before_native, before_libc;
	bench_getppid(n, &before_native, &before_libc);
	struct syscall_handler h = {on_enter, on_exit_, NULL, on_log, on_own};
	char err[256];
	double t0 = now_ns();
	if (syscall_hooks_install(&h, err, sizeof(err)) < 0) {
		fprintf(stderr, "install: %s\n", err);
		return 1;
	}
	double install_ms = (now_ns() - t0) / 1e6;
	double native, hooked;
	bench_getppid(n, &native, &hooked);

	/* Syscall User Dispatch for what is not rewritten (vDSO fallbacks, JIT code); "nosud": off. */
	bool sud = !(argc > 3 && strcmp(argv[3], "nosud") == 0);
	if (sud && syscall_hooks_sud_enable(err, sizeof(err)) < 0) {
		fprintf(stderr, "sud: %s\n", err);
		return 1;
	}
	long results[6] = {0};
	C->on = 1;
	close(MARK_BEGIN);
	workload(dl_path, results);
	int regs = syscall_regs_check();
	long uncovered_calls = uncovered_work();
	close(MARK_END);
	C->on = 0;
	struct syscall_hook_stats st;
	syscall_hooks_get_stats(&st);
	printf("{\"pid\":%d,\"native_ns\":%.1f,\"hooked_ns\":%.1f,\"before_native_ns\":%.1f,\"before_libc_ns\":%.1f,"
	       "\"install_ms\":%.1f,",
	       getpid(), native, hooked, before_native, before_libc, install_ms);
	printf("\"objects\":%u,\"sites\":%u,\"patched\":%u,\"uncovered\":%u,\"anon_exec\":%u,", st.objects, st.sites,
	       st.patched, st.uncovered, st.anon_exec);
	printf("\"execve_errno\":%ld,\"restart_read\":%ld,\"eintr_read\":%ld,\"nanosleep\":%ld,\"dl_patched\":%ld,"
	       "\"dl_ok\":%ld,\"signals\":%d,\"regs_check\":%d,\"sud\":%d,\"uncovered_calls\":%ld,",
	       results[0], results[1], results[2], results[3], results[4], results[5], sig_seen, regs, sud,
	       uncovered_calls);
	print_counts("enter", C->enter);
	printf(",");
	print_counts("exit", C->exit);
	printf(",");
	print_counts("own_enter", C->own_enter);
	printf(",");
	print_counts("own_exit", C->own_exit);
	printf(",\"log\":\"");
	for (size_t i = 0; i < loglen; i++)
		if (logbuf[i] == '\n')
			printf("\\n");
		else if (logbuf[i] == '"' || logbuf[i] == '\\')
			printf("\\%c", logbuf[i]);
		else
			putchar(logbuf[i]);
	printf("\"}\n");
	return 0;
}
