/*
 * The syscall tracepoint tests' target, run with the agent preloaded (not
 * linked with the hooks). Modes:
 *
 *   tp_target work DL_LIB OWN_COUNTS [vdso]
 *     A deterministic workload between close(7770001) and close(7770002):
 *     threads, fork, vfork + exec, posix_spawn, a failing execve, signals
 *     whose handler makes syscalls, a read restarted (SA_RESTART) and one
 *     interrupted (EINTR), dlopen of a library with syscalls of its own, and
 *     openat calls on /tmp/bpftime_tp_PID_* files (with "vdso": three
 *     syscalls from the vDSO's fallback too, a CPU-time clock). OWN_COUNTS is the file the
 *     agent counts its own syscalls in (BPFTIME_AGENT_OWN_COUNTS): read just
 *     before and after the markers. The agent's link follower is first left
 *     to block in its futex wait (here and in the forked child), so that
 *     its syscalls do not race the window. Prints JSON.
 *   tp_target loop STOPFILE
 *     openat("/tmp/bpftime_tp_live_PID") every millisecond until STOPFILE exists.
 *   tp_target tids
 *     Its own threads' ids (main, one thread, a forked child) and its agent
 *     followers' (its own, the child's), once each follower sleeps. Prints JSON.
 *   tp_target getppid
 *     ns per getppid(): thread CPU time, best of 200 rounds of 2000 calls (informal).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MARK_BEGIN 7770001
#define MARK_END 7770002
#define NR_SLOTS 512

/* exec'd images run without the agent (an LD_PRELOAD of their own: the agent does not add itself) */
static char *clean_env[] = {"PATH=/usr/bin:/bin", "LD_PRELOAD=", NULL};

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* The syscall thread `tid` of this process is blocked in, or -2. */
static long blocked_in(pid_t tid)
{
	char path[64], buf[64];
	snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", tid);
	int fd = open(path, O_RDONLY);
	ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
	if (fd >= 0)
		close(fd);
	if (n <= 0)
		return -2;
	buf[n] = 0;
	return strtol(buf, NULL, 10);
}

/* Waits (at most 2 s) until thread `tid` is blocked in syscall `nr`. */
static void wait_blocked(pid_t tid, long nr)
{
	for (int i = 0; i < 2000 && blocked_in(tid) != nr; i++)
		sleep_ms(1);
}

/* Waits until the agent's follower thread ("bpftime-agent") sleeps in futex; its tid, or 0. */
static pid_t settle_follower(void)
{
	pid_t found = 0;
	for (int tries = 0; tries < 2000 && !found; tries++) {
		DIR *d = opendir("/proc/self/task");
		struct dirent *de;
		while (d && (de = readdir(d))) {
			char path[300], comm[32] = "";
			snprintf(path, sizeof(path), "/proc/self/task/%s/comm", de->d_name);
			int fd = open(path, O_RDONLY);
			if (fd < 0)
				continue;
			ssize_t n = read(fd, comm, sizeof(comm) - 1);
			close(fd);
			if (n > 0 && strncmp(comm, "bpftime-agent", 13) == 0)
				found = atoi(de->d_name);
		}
		if (d)
			closedir(d);
		if (!found)
			sleep_ms(1);
	}
	if (found)
		wait_blocked(found, SYS_futex);
	return found;
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
	return arg;
}

static volatile int sig_seen;
static void on_signal(int sig)
{
	getppid();
	int fd = open("/dev/null", O_WRONLY);
	if (write(fd, "s", 1) != 1)
		abort();
	close(fd);
	sig_seen += sig > 0;
}

static void set_handler(int sig, int flags)
{
	struct sigaction sa = {0};
	sa.sa_handler = on_signal;
	sa.sa_flags = flags;
	sigemptyset(&sa.sa_mask);
	sigaction(sig, &sa, NULL);
}

struct poke {
	pid_t tid;
	int sig;
	int wfd;
};

static void *poker(void *arg)
{
	struct poke *p = arg;
	wait_blocked(p->tid, SYS_read);
	sleep_ms(20);
	syscall(SYS_tgkill, getpid(), p->tid, p->sig);
	sleep_ms(20);
	if (write(p->wfd, "b", 1) != 1)
		abort();
	return NULL;
}

/* A read blocked in the kernel, interrupted by `sig` from another thread: 0 (restarted) or EINTR. */
static long interrupted_read(int sig, int flags)
{
	set_handler(sig, flags);
	int p[2];
	if (pipe(p) < 0)
		abort();
	struct poke pk = {(pid_t)syscall(SYS_gettid), sig, p[1]};
	pthread_t th;
	pthread_create(&th, NULL, poker, &pk);
	char c;
	long r = read(p[0], &c, 1);
	long e = r < 0 ? errno : 0;
	if (r < 0)
		r = read(p[0], &c, 1);
	pthread_join(th, NULL);
	close(p[0]);
	close(p[1]);
	return r < 0 ? -1 : e;
}

struct open_result {
	char path[64];
	long ret; /* fd or -errno */
};

static struct open_result opened[8];
static int n_opened;

static void do_open(int dfd, const char *path, int flags, mode_t mode)
{
	int fd = openat(dfd, path, flags, mode);
	struct open_result *o = &opened[n_opened++];
	snprintf(o->path, sizeof(o->path), "%s", path);
	o->ret = fd < 0 ? -errno : fd;
	if (fd >= 0)
		close(fd);
}

static void opens(void)
{
	char a[64], b[64], c[64];
	pid_t pid = getpid();
	snprintf(a, sizeof(a), "/tmp/bpftime_tp_%d_missing", pid);
	snprintf(b, sizeof(b), "/tmp/bpftime_tp_%d_created", pid);
	snprintf(c, sizeof(c), "/tmp/bpftime_tp_%d_dirfd", pid);
	do_open(AT_FDCWD, a, O_RDONLY | O_CLOEXEC, 0);
	do_open(AT_FDCWD, b, O_WRONLY | O_CREAT | O_TRUNC, 0640);
	int dfd = open("/tmp", O_RDONLY | O_DIRECTORY);
	do_open(dfd, c, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW, 0600);
	close(dfd);
	unlink(b);
	unlink(c);
}

static uint64_t *own; /* the agent's own syscalls: [0, 512) entries, [512, 1024) exits */

static void snapshot(uint64_t *out)
{
	for (int i = 0; i < 2 * NR_SLOTS; i++)
		out[i] = __atomic_load_n(&own[i], __ATOMIC_RELAXED);
}

static void print_counts(const char *key, const uint64_t *after, const uint64_t *before)
{
	printf("\"%s\":{", key);
	const char *sep = "";
	for (int i = 0; i < NR_SLOTS; i++)
		if (after[i] != before[i]) {
			printf("%s\"%d\":%llu", sep, i == NR_SLOTS - 1 ? -1 : i,
			       (unsigned long long)(after[i] - before[i]));
			sep = ",";
		}
	printf("}");
}

static int work(const char *dl_path, const char *own_path, int vdso)
{
	int fd = open(own_path, O_RDONLY);
	own = fd >= 0 ? mmap(NULL, 2 * NR_SLOTS * 8, PROT_READ, MAP_SHARED, fd, 0) : MAP_FAILED;
	if (own == MAP_FAILED) {
		fprintf(stderr, "%s: cannot map\n", own_path);
		return 1;
	}
	close(fd);
	pid_t follower = settle_follower();
	static uint64_t before[2 * NR_SLOTS], after[2 * NR_SLOTS];
	long results[6] = {0};
	int forks_with_follower = 0;

	snapshot(before);
	close(MARK_BEGIN);

	pthread_t th[4];
	for (int i = 0; i < 4; i++)
		pthread_create(&th[i], NULL, thread_work, NULL);
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);

	/* fork: the child's agent starts its follower; the child works, lets it settle, exits */
	int sync[2];
	if (pipe(sync) < 0)
		abort();
	pid_t pid = fork();
	if (pid == 0) {
		for (int i = 0; i < 5; i++)
			getppid();
		thread_work(NULL);
		char ok = settle_follower() ? 1 : 0;
		if (write(sync[1], &ok, 1) != 1)
			abort();
		_exit(0);
	}
	char ok = 0;
	if (read(sync[0], &ok, 1) != 1)
		abort();
	forks_with_follower += ok;
	waitpid(pid, NULL, 0);
	close(sync[0]);
	close(sync[1]);

	pid = vfork();
	if (pid == 0) {
		char *argv[] = {"/bin/true", NULL};
		execve("/bin/true", argv, clean_env);
		_exit(127);
	}
	waitpid(pid, NULL, 0);

	char *targv[] = {"/bin/true", NULL};
	if (posix_spawn(&pid, "/bin/true", NULL, NULL, targv, clean_env) == 0)
		waitpid(pid, NULL, 0);

	char *argv[] = {"/nonexistent/bin", NULL};
	results[0] = execve(argv[0], argv, clean_env) < 0 ? errno : 0;

	set_handler(SIGUSR1, SA_RESTART);
	for (int i = 0; i < 3; i++)
		kill(getpid(), SIGUSR1);

	results[1] = interrupted_read(SIGUSR2, SA_RESTART);
	results[2] = interrupted_read(SIGALRM, 0);

	void *lib = dlopen(dl_path, RTLD_NOW);
	if (!lib) {
		fprintf(stderr, "dlopen: %s\n", dlerror());
		return 1;
	}
	long (*dl_work)(int) = (long (*)(int))dlsym(lib, "syscall_dl_work");
	results[3] = dl_work(10) != 0;

	opens();

	for (int i = 0; i < vdso * 3; i++) {
		struct timespec ts;
		clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts); /* the vDSO makes the syscall itself */
	}

	close(MARK_END);
	snapshot(after);

	printf("{\"pid\":%d,\"follower\":%d,\"forks_with_follower\":%d,\"execve_errno\":%ld,\"restart_read\":%ld,"
	       "\"eintr_read\":%ld,\"dl_ok\":%ld,\"signals\":%d,",
	       getpid(), follower, forks_with_follower, results[0], results[1], results[2], results[3], sig_seen);
	print_counts("own_enter", after, before);
	printf(",");
	print_counts("own_exit", after + NR_SLOTS, before + NR_SLOTS);
	printf(",\"opens\":[");
	for (int i = 0; i < n_opened; i++)
		printf("%s{\"path\":\"%s\",\"ret\":%ld}", i ? "," : "", opened[i].path, opened[i].ret);
	printf("]}\n");
	return 0;
}

static int loop(const char *stopfile)
{
	char path[64];
	snprintf(path, sizeof(path), "/tmp/bpftime_tp_live_%d", getpid());
	printf("ready %d\n", getpid());
	fflush(stdout);
	long n = 0;
	struct stat st;
	while (stat(stopfile, &st) < 0) {
		int fd = openat(AT_FDCWD, path, O_RDONLY);
		if (fd >= 0)
			close(fd);
		n++;
		sleep_ms(1);
	}
	printf("{\"opens\":%ld}\n", n);
	return 0;
}

static void *own_tid(void *arg)
{
	(void)arg;
	return (void *)(intptr_t)syscall(SYS_gettid);
}

/*
 * Its threads' ids and its followers': its own, one thread's, a forked
 * child's (whose follower is started after fork), each follower left to
 * block in its futex wait. Prints JSON.
 */
static int tids(void)
{
	pid_t follower = settle_follower();
	pthread_t th;
	void *tid = NULL;
	if (pthread_create(&th, NULL, own_tid, NULL) != 0 || pthread_join(th, &tid) != 0)
		return 1;
	int p[2];
	if (pipe(p) < 0)
		return 1;
	pid_t child = fork();
	if (child == 0) {
		pid_t f = settle_follower();
		_exit(write(p[1], &f, sizeof(f)) == sizeof(f) ? 0 : 1);
	}
	pid_t child_follower = 0;
	int st;
	if (child < 0 || read(p[0], &child_follower, sizeof(child_follower)) != sizeof(child_follower) ||
	    waitpid(child, &st, 0) != child || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		return 1;
	printf("{\"pid\":%d,\"thread\":%d,\"child\":%d,\"followers\":[%d,%d]}\n", getpid(), (int)(intptr_t)tid,
	       child, follower, child_follower);
	return 0;
}

static double cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static int time_getppid(void)
{
	double best = 1e18;
	for (int r = 0; r < 200; r++) {
		double t0 = cpu_ns();
		for (int i = 0; i < 2000; i++)
			getppid();
		double t = (cpu_ns() - t0) / 2000;
		if (t < best)
			best = t;
	}
	printf("{\"getppid_ns\":%.1f}\n", best);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "getppid") == 0)
		return time_getppid();
	if (argc > 3 && strcmp(argv[1], "work") == 0)
		return work(argv[2], argv[3], argc > 4 && strcmp(argv[4], "vdso") == 0);
	if (argc > 1 && strcmp(argv[1], "tids") == 0)
		return tids();
	if (argc > 2 && strcmp(argv[1], "loop") == 0)
		return loop(argv[2]);
	fprintf(stderr, "usage: tp_target work DL_LIB OWN_COUNTS | loop STOPFILE | tids | getppid\n");
	return 2;
}
