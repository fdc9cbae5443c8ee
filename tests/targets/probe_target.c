/*
 * The traced process of the uprobe tests. It checks its own results (a
 * broken hook shows up as a wrong answer) and prints what it did as JSON,
 * for the test to compare with the counts its probes wrote into maps.
 *
 *   funcs N                call each test function N times
 *   malloc N THREADS       each thread calls malloc N times
 *   recurse N DEPTH THREADS  recursive calls (uretprobes under recursion)
 *   longjmp N              probed frames left by longjmp
 *   loop SECONDS THREADS   call add() until the time is up (attach/detach stress)
 *   add N THREADS          each thread calls add(i, tid) for i = 0..N-1 (ring buffer events)
 *   malloc-signal N        print "ready PID", wait for SIGUSR1, call malloc N times, print "done",
 *                          wait for SIGTERM (counts compared before and after)
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

int rip_first(int), jmp_first(int), call_first(int), jcc_first(int), too_short(int), loop_back(int);

__attribute__((noinline)) long add(long a, long b)
{
	__asm__ volatile("" ::: "memory");
	return a + b;
}

/* Floating-point arguments and results travel in xmm registers, which probes must keep. */
__attribute__((noinline)) double scale(double x, double y, double z)
{
	__asm__ volatile("" ::: "memory");
	return x * y + z;
}

__attribute__((noinline)) long sum_down(long d)
{
	if (d <= 0)
		return 0;
	long r = sum_down(d - 1);
	__asm__ volatile("" : "+r"(r)); /* keeps the recursion a real call */
	return d + r;
}

static jmp_buf env;
static volatile int env_ready;
__attribute__((noinline)) void leave(void)
{
	if (env_ready)
		longjmp(env, 1);
}

__attribute__((noinline)) long dive(long d)
{
	if (d <= 0) {
		leave();
		return 0;
	}
	return dive(d - 1) + 1;
}

__attribute__((noinline)) long jumper(volatile long d)
{
	env_ready = 1;
	if (setjmp(env))
		return d;
	return dive(d);
}

static void out(const char *s)
{
	if (write(1, s, strlen(s)) < 0)
		exit(3);
}

static void fail(const char *what, long got, long want)
{
	char buf[200];
	snprintf(buf, sizeof(buf), "WRONG %s: got %ld, want %ld\n", what, got, want);
	out(buf);
	exit(1);
}

static int run_funcs(long n)
{
	long s_rip = 0, s_jmp = 0, s_call = 0, s_jcc = 0, s_add = 0, args = 0, jcc_args = 0;
	for (long i = 1; i <= n; i++) {
		int x = (int)(i % 7);
		long r;
		if ((r = rip_first(x)) != 1000 + x)
			fail("rip_first", r, 1000 + x);
		if ((r = jmp_first(x)) != x + 1)
			fail("jmp_first", r, x + 1);
		if ((r = call_first(x)) != 2 * x + 1)
			fail("call_first", r, 2 * x + 1);
		if ((r = jcc_first(x)) != (x ? x + 10 : -1))
			fail("jcc_first", r, x ? x + 10 : -1);
		if ((r = add(i, 1)) != i + 1)
			fail("add", r, i + 1);
		double d = scale((double)i, 0.5, 0.25);
		if (d != (double)i * 0.5 + 0.25)
			fail("scale (x1000)", (long)(d * 1000), (long)(((double)i * 0.5 + 0.25) * 1000));
		s_rip += 1000 + x, s_jmp += x + 1, s_call += 2 * x + 1, s_jcc += x ? x + 10 : 0xffffffffL /* rax after mov eax, -1 */, s_add += i + 1;
		args += x, jcc_args += x;
	}
	char buf[512];
	snprintf(buf, sizeof(buf),
		 "{\"calls\":%ld,\"args\":%ld,\"rip_first\":%ld,\"jmp_first\":%ld,\"call_first\":%ld,"
		 "\"jcc_first\":%ld,\"add\":%ld,\"add_args\":%ld}\n",
		 n, args, s_rip, s_jmp, s_call, s_jcc, s_add, n * (n + 1) / 2);
	out(buf);
	return 0;
}

/* {"per_thread":N,"tids":[...]}: what each thread did, for the test to compare. */
static void print_threads(long n, const long *tids, int threads)
{
	char buf[2048];
	int at = snprintf(buf, sizeof(buf), "{\"per_thread\":%ld,\"tids\":[", n);
	for (int i = 0; i < threads; i++)
		at += snprintf(buf + at, sizeof(buf) - (size_t)at, "%s%ld", i ? "," : "", tids[i]);
	snprintf(buf + at, sizeof(buf) - (size_t)at, "]}\n");
	out(buf);
}

static long per_thread;
void *volatile last_alloc;

static void *malloc_worker(void *arg)
{
	long *tid = arg;
	*tid = gettid();
	for (long i = 0; i < per_thread; i++) {
		void *p = malloc(16 + (size_t)(i & 255));
		last_alloc = p;
		free(p);
	}
	return NULL;
}

static int run_malloc(long n, int threads)
{
	per_thread = n;
	pthread_t t[64];
	long tids[64];
	if (threads <= 1) {
		malloc_worker(&tids[0]);
		threads = 1;
	} else {
		for (int i = 0; i < threads; i++)
			pthread_create(&t[i], NULL, malloc_worker, &tids[i]);
		for (int i = 0; i < threads; i++)
			pthread_join(t[i], NULL);
	}
	print_threads(n, tids, threads);
	return 0;
}

static long rec_n, rec_depth;
static void *recurse_worker(void *arg)
{
	(void)arg;
	for (long i = 0; i < rec_n; i++)
		if (sum_down(rec_depth) != rec_depth * (rec_depth + 1) / 2)
			fail("sum_down", sum_down(rec_depth), rec_depth * (rec_depth + 1) / 2);
	return NULL;
}

static int run_recurse(long n, long depth, int threads)
{
	rec_n = n, rec_depth = depth;
	pthread_t t[64];
	for (int i = 0; i < threads; i++)
		pthread_create(&t[i], NULL, recurse_worker, NULL);
	for (int i = 0; i < threads; i++)
		pthread_join(t[i], NULL);
	char buf[256];
	/* Per call of sum_down(depth): depth + 1 calls; their return values sum to sum of k(k+1)/2. */
	long rets = 0;
	for (long k = 0; k <= depth; k++)
		rets += k * (k + 1) / 2;
	snprintf(buf, sizeof(buf), "{\"calls\":%ld,\"rets\":%ld}\n", n * threads * (depth + 1),
		 n * threads * rets);
	out(buf);
	return 0;
}

static int run_longjmp(long n)
{
	for (long i = 0; i < n; i++)
		if (jumper(5) != 5)
			fail("jumper", jumper(5), 5);
	char buf[128];
	snprintf(buf, sizeof(buf), "{\"calls\":%ld}\n", n);
	out(buf);
	return 0;
}

static volatile int stop;
static long loop_calls[64];
static void *loop_worker(void *arg)
{
	long *calls = arg;
	for (long i = 0; !stop; i++) {
		long r = add(i, 1);
		if (r != i + 1)
			fail("add under attach/detach", r, i + 1);
		(*calls)++;
	}
	return NULL;
}

static void on_term(int sig)
{
	(void)sig;
	stop = 1;
}

static int run_loop(double seconds, int threads)
{
	signal(SIGTERM, on_term);
	pthread_t t[64];
	for (int i = 0; i < threads; i++)
		pthread_create(&t[i], NULL, loop_worker, &loop_calls[i]);
	out("ready\n");
	/* Until the time is up or SIGTERM. */
	for (double waited = 0; waited < seconds && !stop; waited += 0.01) {
		struct timespec ts = {0, 10000000};
		nanosleep(&ts, NULL);
	}
	stop = 1;
	long total = 0;
	for (int i = 0; i < threads; i++) {
		pthread_join(t[i], NULL);
		total += loop_calls[i];
	}
	char buf[128];
	snprintf(buf, sizeof(buf), "{\"calls\":%ld}\n", total);
	out(buf);
	return 0;
}

/* A library loaded after start: its functions are probed once dlopen returns. */
static int run_dlopen(long n, const char *path)
{
	void *lib = dlopen(path, RTLD_NOW);
	int (*fn)(int) = lib ? (int (*)(int))dlsym(lib, "rip_first") : NULL;
	if (!fn) {
		out("dlopen failed\n");
		return 1;
	}
	for (long i = 0; i < n; i++)
		if (fn((int)(i % 7)) != 1000 + i % 7)
			fail("rip_first (dlopen)", fn((int)(i % 7)), 1000 + i % 7);
	char buf[64];
	snprintf(buf, sizeof(buf), "{\"calls\":%ld}\n", n);
	out(buf);
	return 0;
}

/* strlen is an IFUNC in glibc: the probe must sit on the implementation chosen here. */
static char text[64] = "seventeen letters";
static long strlen_calls;
static void *strlen_worker(void *arg)
{
	long *tid = arg;
	*tid = gettid();
	for (long i = 0; i < strlen_calls; i++) {
		text[0] = (char)('a' + i % 26);
		if (strlen(text) != 17)
			fail("strlen", (long)strlen(text), 17);
	}
	return NULL;
}

static int run_strlen(long n)
{
	strlen_calls = n;
	pthread_t t;
	long tid;
	pthread_create(&t, NULL, strlen_worker, &tid);
	pthread_join(t, NULL);
	char buf[64];
	snprintf(buf, sizeof(buf), "{\"tid\":%ld}\n", tid);
	out(buf);
	return 0;
}

/* Hooks survive fork: parent and child each call add() n times. */
static int run_fork(long n)
{
	pid_t child = fork();
	for (long i = 1; i <= n; i++)
		if (add(i, 1) != i + 1)
			fail("add after fork", add(i, 1), i + 1);
	if (child == 0)
		_exit(0);
	int status;
	waitpid(child, &status, 0);
	char buf[64];
	snprintf(buf, sizeof(buf), "{\"calls\":%ld,\"child_ok\":%d}\n", 2 * n,
		 WIFEXITED(status) && WEXITSTATUS(status) == 0);
	out(buf);
	return 0;
}

static long add_n;
static void *add_worker(void *arg)
{
	long *tid = arg;
	*tid = gettid();
	long sum = 0;
	for (long i = 0; i < add_n; i++)
		sum += add(i, *tid);
	if (sum != add_n * (add_n - 1) / 2 + add_n * *tid)
		fail("add sum", sum, add_n * (add_n - 1) / 2 + add_n * *tid);
	return NULL;
}

static int run_add(long n, int threads)
{
	add_n = n;
	pthread_t t[64];
	long tids[64];
	if (threads < 1 || threads > 64)
		threads = 1;
	for (int i = 0; i < threads; i++)
		pthread_create(&t[i], NULL, add_worker, &tids[i]);
	for (int i = 0; i < threads; i++)
		pthread_join(t[i], NULL);
	print_threads(n, tids, threads);
	return 0;
}

static volatile sig_atomic_t go;
static void on_go(int sig)
{
	(void)sig;
	go = 1;
}

static int run_malloc_signal(long n)
{
	signal(SIGUSR1, on_go);
	signal(SIGTERM, on_term);
	char ready[64];
	snprintf(ready, sizeof(ready), "ready %d\n", (int)getpid());
	out(ready);
	while (!go)
		pause();
	for (long i = 0; i < n; i++) {
		void *p = malloc(32);
		last_alloc = p;
		free(p);
	}
	out("done\n");
	while (!stop)
		pause();
	return 0;
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "";
	long a = argc > 2 ? atol(argv[2]) : 0, b = argc > 3 ? atol(argv[3]) : 1,
	     c = argc > 4 ? atol(argv[4]) : 1;
	if (!strcmp(mode, "funcs"))
		return run_funcs(a);
	if (!strcmp(mode, "malloc"))
		return run_malloc(a, (int)b);
	if (!strcmp(mode, "recurse"))
		return run_recurse(a, b, (int)c);
	if (!strcmp(mode, "longjmp"))
		return run_longjmp(a);
	if (!strcmp(mode, "loop"))
		return run_loop(atof(argv[2]), (int)b);
	if (!strcmp(mode, "fork"))
		return run_fork(a);
	if (!strcmp(mode, "dlopen"))
		return run_dlopen(a, argv[3]);
	if (!strcmp(mode, "strlen"))
		return run_strlen(a);
	if (!strcmp(mode, "add"))
		return run_add(a, (int)b);
	if (!strcmp(mode, "malloc-signal"))
		return run_malloc_signal(a);
	if (!strcmp(mode, "short"))
		return too_short(1) + loop_back(3) == 4 ? 0 : 1;
	out("usage: probe_target funcs|malloc|recurse|longjmp|loop|short ...\n");
	return 2;
}
