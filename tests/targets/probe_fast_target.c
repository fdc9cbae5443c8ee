/*
 * The target of tests/probe_fast_test.ts: calls the functions of
 * probe_fast_regs.S through regs_call, which checks that every register and
 * the flags come back as they were, and prints what it saw as JSON:
 *
 *   probe_fast_target MODE N   {"calls": .., "bad": .., "di_sum": .., "r15_sum": .., "ret_sum": ..}
 *
 * MODE regs: N calls of each probed function on one thread (sums of the
 * registers the programs read, for the test to compare); threads: the same
 * in 8 threads at once; signal: a profiling timer's handler makes calls too,
 * landing inside probe runs (nested hits); fork: a child forked halfway goes
 * on calling; fault: the functions whose programs fault every 4th run.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

uint64_t regs_call(void (*fn)(void), uint64_t seed, uint64_t flags, uint64_t check_r11);
void fast_probed(void), fast_probed_noctx(void), fast_probed_ret(void), fast_probed_fault(void),
	fast_probed_fault_ctx(void);

/* IF | reserved, then the arithmetic flags in a few mixes, DF among them (after the first calls). */
static const uint64_t FLAGS[] = {0x202, 0x202 | 0x8d5, 0x202 | 0x8d5 | 0x400, 0x202 | 0x800, 0x202 | 0x400 | 0x1,
				 0x202 | 0x44};

static uint64_t flags_for(long i)
{
	/* DF only once each thread's first calls (C sets up its context then) are behind. */
	uint64_t f = FLAGS[i % 6];
	return i < 64 ? f & ~0x400ull : f;
}

static volatile uint64_t bad_seen;
static void note_bad(uint64_t mask, const char *what, long i)
{
	if (mask && __atomic_fetch_add(&bad_seen, 1, __ATOMIC_RELAXED) < 5)
		fprintf(stderr, "%s call %ld: changed 0x%llx\n", what, i, (unsigned long long)mask);
}

struct sums {
	uint64_t di, r15, ret;
};

/*
 * One function after the other: a thread keeps the run contexts of its last two programs only,
 * and the fast path needs the program's own (three taking turns would all run through C).
 */
static void calls(long n, uint64_t base, struct sums *s)
{
	for (long i = 0; i < n; i++) {
		uint64_t seed = base + (uint64_t)i * 977;
		note_bad(regs_call(fast_probed, seed, flags_for(i), 1), "fast_probed", i);
		s->di += seed + 5;
		s->r15 += seed + 14;
	}
	for (long i = 0; i < n; i++)
		note_bad(regs_call(fast_probed_noctx, base + (uint64_t)i * 977, flags_for(i), 1), "fast_probed_noctx", i);
	for (long i = 0; i < n; i++) {
		uint64_t seed = base + (uint64_t)i * 977;
		note_bad(regs_call(fast_probed_ret, seed, flags_for(i), 0), "fast_probed_ret", i);
		s->ret += seed + 1;
	}
}

static long per_thread;
static void *thread_main(void *arg)
{
	struct sums s = {0};
	calls(per_thread, (uint64_t)(uintptr_t)arg << 40, &s);
	return NULL;
}

static volatile long handler_calls;
static void on_prof(int sig)
{
	(void)sig;
	long i = handler_calls++;
	note_bad(regs_call(fast_probed, 7, flags_for(i + 64), 1), "handler fast_probed", i);
	note_bad(regs_call(fast_probed_noctx, 7, flags_for(i + 64), 1), "handler fast_probed_noctx", i);
	note_bad(regs_call(fast_probed_ret, 7, flags_for(i + 64), 0), "handler fast_probed_ret", i);
}

int main(int argc, char **argv)
{
	if (argc < 3)
		return 2;
	const char *mode = argv[1];
	long n = atol(argv[2]);
	struct sums s = {0};
	long total = n;
	if (!strcmp(mode, "regs")) {
		calls(n, 1000, &s);
	} else if (!strcmp(mode, "threads")) {
		pthread_t t[8];
		per_thread = n;
		for (long i = 0; i < 8; i++)
			pthread_create(&t[i], NULL, thread_main, (void *)(i + 1));
		for (int i = 0; i < 8; i++)
			pthread_join(t[i], NULL);
		total = 8 * n;
	} else if (!strcmp(mode, "signal")) {
		struct sigaction sa;
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = on_prof;
		sa.sa_flags = SA_RESTART;
		sigaction(SIGPROF, &sa, NULL);
		struct itimerval it = {{0, 200}, {0, 200}};
		setitimer(ITIMER_PROF, &it, NULL);
		calls(n, 1000, &s);
		struct itimerval off = {{0, 0}, {0, 0}};
		setitimer(ITIMER_PROF, &off, NULL);
	} else if (!strcmp(mode, "fork")) {
		calls(n / 2, 1000, &s);
		pid_t child = fork();
		calls(n - n / 2, 5000, &s);
		if (child == 0)
			_exit(bad_seen ? 1 : 0);
		int status = 0;
		waitpid(child, &status, 0);
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			bad_seen++;
		total = n + (n - n / 2);
	} else if (!strcmp(mode, "fault")) {
		for (long i = 0; i < n; i++)
			note_bad(regs_call(fast_probed_fault, (uint64_t)i, flags_for(i), 1), "fast_probed_fault", i);
		for (long i = 0; i < n; i++)
			note_bad(regs_call(fast_probed_fault_ctx, (uint64_t)i, flags_for(i), 1), "fast_probed_fault_ctx",
				 i);
	} else {
		return 2;
	}
	printf("{\"calls\": %ld, \"handler_calls\": %ld, \"bad\": %llu, \"di_sum\": \"%llu\", \"r15_sum\": \"%llu\", "
	       "\"ret_sum\": \"%llu\"}\n",
	       total, handler_calls, (unsigned long long)bad_seen, (unsigned long long)s.di,
	       (unsigned long long)s.r15, (unsigned long long)s.ret);
	return 0;
}
