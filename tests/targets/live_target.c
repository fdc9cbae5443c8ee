/*
 * The traced process of tests/attach_live_test.ts: it is already running
 * (under the agent) when links are attached and detached, and it checks its
 * own results, printing them as JSON on its last line.
 *
 *   busy SECONDS THREADS   each thread calls malloc/free, memcpy, opendir/readdir/closedir and
 *                          pthread_mutex_lock/unlock until SIGTERM or the time is up; prints
 *                          "ready" once the threads run, then {"rounds":N,"locked":N}
 *   block MS               one thread per blocking call (sleep, nanosleep, clock_nanosleep, poll,
 *                          epoll_wait, read on a pipe, futex waits with and without a timeout),
 *                          each for MS ms (the untimed ones are woken after MS ms), and one busy
 *                          thread calling malloc; prints "ready" once they are blocked, then each
 *                          call's result, errno and elapsed time
 *   dlopen PATH N          a thread calls malloc; prints "ready", waits for SIGUSR1, then
 *                          dlopen(PATH) and calls its rip_first N times; prints {"calls":N,...}
 *   ctor-dlopen OUTER N    dlopen(OUTER), whose constructor dlopens $LIVE_NESTED_LIB; calls the
 *                          nested library's rip_first N times; prints {"calls":N}
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <linux/futex.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static void out(const char *s)
{
	if (write(1, s, strlen(s)) < 0)
		exit(3);
}

static void wrong(const char *what)
{
	char buf[200];
	snprintf(buf, sizeof(buf), "WRONG %s\n", what);
	out(buf);
	exit(1);
}

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static volatile sig_atomic_t stop;
static void on_term(int sig)
{
	(void)sig;
	stop = 1;
}

/* Sleeps until `deadline_ms` (CLOCK_MONOTONIC), whatever interrupts it. */
static void sleep_until(double deadline_ms)
{
	struct timespec ts = {(time_t)(deadline_ms / 1e3), (long)((deadline_ms - (double)(long)(deadline_ms / 1e3) * 1e3) * 1e6)};
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR && !stop)
		;
}

/* ---- busy ---- */

static pthread_mutex_t counter_lock = PTHREAD_MUTEX_INITIALIZER;
static long locked;
void *volatile last_alloc;
/* Called through a pointer: the compiler would inline a memcpy it can see. */
void *(*volatile copy_fn)(void *, const void *, size_t) = memcpy;

static void *busy_worker(void *arg)
{
	long *rounds = arg;
	char src[256], dst[256];
	for (long i = 0; !stop; i++) {
		void *p = malloc(16 + (size_t)(i & 1023));
		if (!p)
			wrong("malloc");
		last_alloc = p;
		free(p);
		memset(src, (int)(i & 0x7f), sizeof(src));
		src[i & 255] = 'x';
		size_t n = 1 + (size_t)(i % (long)sizeof(src));
		copy_fn(dst, src, n);
		if (memcmp(dst, src, n) != 0)
			wrong("memcpy");
		if ((i & 15) == 0) {
			DIR *d = opendir("/");
			if (!d)
				wrong("opendir");
			int entries = 0;
			while (readdir(d))
				entries++;
			closedir(d);
			if (entries < 2)
				wrong("readdir");
		}
		pthread_mutex_lock(&counter_lock);
		locked++;
		pthread_mutex_unlock(&counter_lock);
		(*rounds)++;
	}
	return NULL;
}

static int run_busy(double seconds, int threads)
{
	signal(SIGTERM, on_term);
	if (threads < 1 || threads > 64)
		threads = 1;
	pthread_t t[64];
	long rounds[64] = {0};
	for (int i = 0; i < threads; i++)
		pthread_create(&t[i], NULL, busy_worker, &rounds[i]);
	out("ready\n");
	sleep_until(now_ms() + seconds * 1e3);
	stop = 1;
	long total = 0;
	for (int i = 0; i < threads; i++) {
		pthread_join(t[i], NULL);
		total += rounds[i];
	}
	if (total != locked)
		wrong("mutex-protected counter");
	char buf[128];
	snprintf(buf, sizeof(buf), "{\"rounds\":%ld,\"locked\":%ld}\n", total, locked);
	out(buf);
	return 0;
}

/* ---- block ---- */

enum call { C_SLEEP, C_NANOSLEEP, C_CLOCK_NANOSLEEP, C_POLL, C_EPOLL, C_READ, C_FUTEX_TIMED, C_FUTEX, NCALLS };
static const char *const names[NCALLS] = {"sleep", "nanosleep", "clock_nanosleep", "poll",
					  "epoll_wait", "read", "futex_timed", "futex"};

struct result {
	long ret;
	int err;
	double ms;
};

static long block_ms;
static struct result results[NCALLS];
static int started;
static int quiet_pipe[2], data_pipe[2], epfd;
static uint32_t futex_word, futex_timed_word;

static long futex_wait(uint32_t *word, const struct timespec *timeout)
{
	return syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, 0, timeout, NULL, 0);
}

static void *block_worker(void *arg)
{
	enum call c = (enum call)(intptr_t)arg;
	struct timespec ts = {block_ms / 1000, (block_ms % 1000) * 1000000};
	char byte;
	struct epoll_event ev;
	double t0 = now_ms();
	__atomic_add_fetch(&started, 1, __ATOMIC_SEQ_CST);
	errno = 0;
	long r = 0;
	switch (c) {
	case C_SLEEP:
		r = sleep((unsigned)(block_ms / 1000));
		break;
	case C_NANOSLEEP:
		r = syscall(SYS_nanosleep, &ts, NULL);
		break;
	case C_CLOCK_NANOSLEEP:
		r = clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, NULL); /* returns the error */
		if (r)
			errno = (int)r, r = -1;
		break;
	case C_POLL: {
		struct pollfd p = {quiet_pipe[0], POLLIN, 0};
		r = poll(&p, 1, (int)block_ms);
		break;
	}
	case C_EPOLL:
		r = epoll_wait(epfd, &ev, 1, (int)block_ms);
		break;
	case C_READ:
		r = read(data_pipe[0], &byte, 1);
		break;
	case C_FUTEX_TIMED:
		r = futex_wait(&futex_timed_word, &ts);
		break;
	case C_FUTEX:
		r = futex_wait(&futex_word, NULL);
		break;
	default:
		break;
	}
	results[c] = (struct result){r, r < 0 ? errno : 0, now_ms() - t0};
	return NULL;
}

static void *malloc_worker(void *arg)
{
	(void)arg;
	for (long i = 0; !stop; i++) {
		void *p = malloc(32 + (size_t)(i & 63));
		last_alloc = p;
		free(p);
		if ((i & 1023) == 0)
			sched_yield();
	}
	return NULL;
}

static int run_block(long ms)
{
	block_ms = ms;
	if (pipe(quiet_pipe) < 0 || pipe(data_pipe) < 0)
		wrong("pipe");
	epfd = epoll_create1(0);
	struct epoll_event ev = {.events = EPOLLIN, .data.fd = quiet_pipe[0]};
	if (epfd < 0 || epoll_ctl(epfd, EPOLL_CTL_ADD, quiet_pipe[0], &ev) < 0)
		wrong("epoll");
	pthread_t t[NCALLS], busy;
	pthread_create(&busy, NULL, malloc_worker, NULL);
	for (int i = 0; i < NCALLS; i++)
		pthread_create(&t[i], NULL, block_worker, (void *)(intptr_t)i);
	while (__atomic_load_n(&started, __ATOMIC_SEQ_CST) < NCALLS)
		sched_yield();
	double t0 = now_ms(); /* after every call's own start */
	out("ready\n");
	/* The untimed waits end when their event comes, MS ms after they started. */
	sleep_until(t0 + (double)ms);
	if (write(data_pipe[1], "x", 1) != 1)
		wrong("write");
	__atomic_store_n(&futex_word, 1, __ATOMIC_SEQ_CST);
	syscall(SYS_futex, &futex_word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
	for (int i = 0; i < NCALLS; i++)
		pthread_join(t[i], NULL);
	stop = 1;
	pthread_join(busy, NULL);
	char buf[2048];
	int at = snprintf(buf, sizeof(buf), "{\"ms\":%ld,\"calls\":{", ms);
	for (int i = 0; i < NCALLS; i++)
		at += snprintf(buf + at, sizeof(buf) - (size_t)at, "%s\"%s\":{\"ret\":%ld,\"errno\":%d,\"ms\":%.1f}",
			       i ? "," : "", names[i], results[i].ret, results[i].err, results[i].ms);
	snprintf(buf + at, sizeof(buf) - (size_t)at, "}}\n");
	out(buf);
	return 0;
}

/* ---- dlopen ---- */

static volatile sig_atomic_t go;
static void on_go(int sig)
{
	(void)sig;
	go = 1;
}

static int run_dlopen(const char *path, long n)
{
	signal(SIGUSR1, on_go);
	pthread_t busy;
	pthread_create(&busy, NULL, malloc_worker, NULL);
	out("ready\n");
	/* The test adds a link meanwhile, then says go (at most 60 s). */
	for (int i = 0; i < 6000 && !go; i++) {
		struct timespec ts = {0, 10000000};
		nanosleep(&ts, NULL);
	}
	if (!go)
		wrong("no SIGUSR1");
	void *lib = dlopen(path, RTLD_NOW);
	int (*fn)(int) = lib ? (int (*)(int))dlsym(lib, "rip_first") : NULL;
	if (!fn)
		wrong("dlopen");
	for (long i = 0; i < n; i++)
		if (fn((int)(i % 7)) != 1000 + i % 7)
			wrong("rip_first after dlopen");
	stop = 1;
	pthread_join(busy, NULL);
	char buf[128];
	snprintf(buf, sizeof(buf), "{\"calls\":%ld,\"dlopen\":1}\n", n);
	out(buf);
	return 0;
}

static int run_ctor_dlopen(const char *outer, long n)
{
	pthread_t busy;
	pthread_create(&busy, NULL, malloc_worker, NULL);
	if (!dlopen(outer, RTLD_NOW))
		wrong("dlopen outer");
	void *lib = dlopen(getenv("LIVE_NESTED_LIB"), RTLD_NOW | RTLD_NOLOAD);
	int (*fn)(int) = lib ? (int (*)(int))dlsym(lib, "rip_first") : NULL;
	if (!fn)
		wrong("nested library not loaded");
	for (long i = 0; i < n; i++)
		if (fn((int)(i % 7)) != 1000 + i % 7)
			wrong("rip_first in the nested library");
	stop = 1;
	pthread_join(busy, NULL);
	char buf[64];
	snprintf(buf, sizeof(buf), "{\"calls\":%ld}\n", n);
	out(buf);
	return 0;
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "";
	if (!strcmp(mode, "busy") && argc > 3)
		return run_busy(atof(argv[2]), atoi(argv[3]));
	if (!strcmp(mode, "block") && argc > 2)
		return run_block(atol(argv[2]));
	if (!strcmp(mode, "dlopen") && argc > 3)
		return run_dlopen(argv[2], atol(argv[3]));
	if (!strcmp(mode, "ctor-dlopen") && argc > 3 && getenv("LIVE_NESTED_LIB"))
		return run_ctor_dlopen(argv[2], atol(argv[3]));
	out("usage: live_target busy SECONDS THREADS | block MS | dlopen PATH N | ctor-dlopen OUTER N\n");
	return 2;
}
