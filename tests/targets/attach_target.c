/*
 * The target of tests/attach_test.ts, started normally (no agent), attached to
 * while it runs:
 *
 *   attach_target MS MAIN    MAIN is "sleep" (the main thread in nanosleep for MS ms), "read"
 *                            (the main thread in read on a pipe, written after MS ms) or "busy"
 *                            (the main thread calls malloc and free for MS ms, no syscall). Other
 *                            threads: one in nanosleep, one in read on a pipe (each MS ms), one
 *                            calling attach_work every millisecond. SIGUSR1 (taken by the main thread
 *                            only, SA_RESTART) is counted.
 *                            Prints "ready", then on its last line
 *                            {"main":{...},"sleep":{...},"read":{...},"work":N,"usr1":N}
 *                            with each call's result, errno and elapsed ms.
 *                            With ATTACH_DLOPEN=LIB, one more thread dlopens LIB after "ready"
 *                            (build/tests/libslow_ctor.so: the loader's lock held meanwhile).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int ms;
static volatile int stop;
static volatile sig_atomic_t usr1;
static long work_calls;

struct result {
	long ret;
	int err;
	double ms;
};

static double now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

__attribute__((noinline)) long attach_work(long i)
{
	__asm__ volatile("" ::: "memory");
	return i + 1;
}

static void do_sleep(struct result *r)
{
	struct timespec t = {ms / 1000, (long)(ms % 1000) * 1000000L};
	double t0 = now_ms();
	r->ret = nanosleep(&t, NULL);
	r->err = r->ret ? errno : 0;
	r->ms = now_ms() - t0;
}

struct piped {
	int fds[2];
	struct result r;
	struct timespec start; /* when the read began: the write comes MS ms after */
	int started;
};

static void *writer(void *arg)
{
	struct piped *p = arg;
	struct timespec wait = {0, 1000000};
	while (!__atomic_load_n(&p->started, __ATOMIC_ACQUIRE))
		nanosleep(&wait, NULL);
	struct timespec at = p->start;
	at.tv_sec += ms / 1000;
	at.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (at.tv_nsec >= 1000000000L) {
		at.tv_sec++;
		at.tv_nsec -= 1000000000L;
	}
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &at, NULL) == EINTR)
		;
	if (write(p->fds[1], "x", 1) != 1)
		exit(3);
	return NULL;
}

static void do_read(struct piped *p)
{
	char c;
	clock_gettime(CLOCK_MONOTONIC, &p->start);
	double t0 = (double)p->start.tv_sec * 1e3 + (double)p->start.tv_nsec / 1e6;
	__atomic_store_n(&p->started, 1, __ATOMIC_RELEASE);
	p->r.ret = read(p->fds[0], &c, 1);
	p->r.err = p->r.ret < 0 ? errno : 0;
	p->r.ms = now_ms() - t0;
}

static struct result sleep_r;
static struct piped read_p, main_p;

static void *sleeper(void *arg)
{
	(void)arg;
	do_sleep(&sleep_r);
	return NULL;
}

static void *reader(void *arg)
{
	do_read(arg);
	return NULL;
}

static void *worker(void *arg)
{
	(void)arg;
	struct timespec t = {0, 1000000};
	for (long i = 0; !stop; i++) {
		attach_work(i);
		__atomic_add_fetch(&work_calls, 1, __ATOMIC_RELAXED);
		nanosleep(&t, NULL);
	}
	return NULL;
}

static void *loader(void *arg)
{
#ifdef ATTACH_STATIC /* no dlopen in the static build (the linker warns of it) */
	(void)arg;
	exit(4);
#else
	if (!dlopen(arg, RTLD_NOW))
		exit(4);
	return NULL;
#endif
}

static void on_usr1(int sig)
{
	(void)sig;
	usr1++;
}

static void print(const char *name, const struct result *r, const char *sep)
{
	printf("\"%s\":{\"ret\":%ld,\"errno\":%d,\"ms\":%.1f}%s", name, r->ret, r->err, r->ms, sep);
}

int main(int argc, char **argv)
{
	if (argc != 3 || (strcmp(argv[2], "sleep") && strcmp(argv[2], "read") && strcmp(argv[2], "busy"))) {
		fprintf(stderr, "usage: attach_target MS sleep|read|busy\n");
		return 2;
	}
	ms = atoi(argv[1]);
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr1;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGUSR1, &sa, NULL);
	if (pipe(read_p.fds) || pipe(main_p.fds))
		return 3;
	/* SIGUSR1 only for the main thread: one sent while it is held by the injector waits for it. */
	sigset_t usr, old;
	sigemptyset(&usr);
	sigaddset(&usr, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &usr, &old);
	pthread_t th[5];
	pthread_create(&th[0], NULL, sleeper, NULL);
	pthread_create(&th[1], NULL, reader, &read_p);
	pthread_create(&th[2], NULL, writer, &read_p);
	pthread_create(&th[3], NULL, worker, NULL);
	int main_read = !strcmp(argv[2], "read");
	if (main_read)
		pthread_create(&th[4], NULL, writer, &main_p);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	printf("ready\n");
	fflush(stdout);
	pthread_t dl;
	const char *lib = getenv("ATTACH_DLOPEN");
	if (lib)
		pthread_create(&dl, NULL, loader, (void *)lib);
	struct result main_r;
	if (main_read) {
		do_read(&main_p);
		main_r = main_p.r;
	} else if (!strcmp(argv[2], "busy")) {
		/* Never in the kernel: malloc and free for MS ms (clock_gettime is the vDSO's). */
		double t0 = now_ms();
		unsigned long n = 0;
		while (now_ms() - t0 < ms) {
			char *volatile p = malloc(32 + n++ % 512); /* tcache sizes: no arena lock held */
			p[0] = 1;
			free(p);
		}
		main_r = (struct result){0, 0, now_ms() - t0};
	} else {
		do_sleep(&main_r);
	}
	for (int i = 0; i < 3; i++)
		pthread_join(th[i], NULL);
	if (main_read)
		pthread_join(th[4], NULL);
	stop = 1;
	pthread_join(th[3], NULL);
	if (lib)
		pthread_join(dl, NULL);
	printf("{");
	print("main", &main_r, ",");
	print("sleep", &sleep_r, ",");
	print("read", &read_p.r, ",");
	printf("\"work\":%ld,\"usr1\":%d}\n", work_calls, (int)usr1);
	return 0;
}
