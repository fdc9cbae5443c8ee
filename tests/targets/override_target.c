// SPDX-License-Identifier: MIT
/*
 * A target for bpf_override_return and replace programs, driven from stdin:
 *
 *   call X   prints "compute(X)=R ran=N kept=K": R what compute returned, N how
 *            many times compute's body has run so far, K 1 when the caller's
 *            values held in callee-saved registers across the call came back intact
 *   fork X   the same from a forked child (its own line), then the parent's
 *   storm X N   4 threads call compute(X) N times each while a 1 ms SIGALRM timer
 *            calls it from its handler too; prints "storm orig=A other=B bad=C":
 *            A results 2X+1 (the body ran), B any other result (a program
 *            returned for compute), C calls where the caller's registers came
 *            back changed, or a result that is neither the body's nor the same
 *            value as every other non-body result
 *
 * compute is what the programs replace; the caller keeps many values live
 * across the call (the compiler holds them in rbx, rbp, r12-r15), so a probe
 * that returned for compute without restoring them shows up as kept=0.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile long body_runs;

__attribute__((noinline)) long compute(long x)
{
	body_runs++;
	return x * 2 + 1;
}

__attribute__((noinline)) static void call(long x)
{
	/* Values the compiler keeps in callee-saved registers across compute(). */
	volatile long seed = x;
	long a = seed * 3, b = seed ^ 0x5555, c = seed + 77, d = seed * seed, e = ~seed, f = seed << 3;
	long r = compute(x);
	int kept = a == x * 3 && b == (x ^ 0x5555) && c == x + 77 && d == x * x && e == ~x && f == x << 3;
	printf("compute(%ld)=%ld ran=%ld kept=%d\n", x, r, body_runs, kept);
}

struct storm {
	long x, n;
	long orig, other, bad, other_value;
	pthread_mutex_t lock;
};
static struct storm storm;
static volatile long handler_calls, handler_bad;

static void note(long r, int kept)
{
	pthread_mutex_lock(&storm.lock);
	if (!kept) {
		storm.bad++;
	} else if (r == storm.x * 2 + 1) {
		storm.orig++;
	} else {
		if (storm.other && r != storm.other_value)
			storm.bad++;
		storm.other_value = r;
		storm.other++;
	}
	pthread_mutex_unlock(&storm.lock);
}

static void *storm_thread(void *arg)
{
	(void)arg;
	for (long i = 0; i < storm.n; i++) {
		volatile long seed = storm.x;
		long a = seed * 3, b = seed ^ 0x5555, c = seed + 77, d = seed * seed;
		long r = compute(storm.x);
		note(r, a == storm.x * 3 && b == (storm.x ^ 0x5555) && c == storm.x + 77 && d == storm.x * storm.x);
	}
	return NULL;
}

/* A signal handler calling the probed function, maybe while this thread is inside a probe. */
static void on_alarm(int sig)
{
	(void)sig;
	long r = compute(storm.x);
	handler_calls++;
	if (r != storm.x * 2 + 1 && storm.other && r != storm.other_value)
		handler_bad++;
}

static void run_storm(long x, long n, int timer)
{
	storm.x = x;
	storm.n = n;
	storm.orig = storm.other = storm.bad = storm.other_value = 0;
	pthread_mutex_init(&storm.lock, NULL);
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGALRM, &sa, NULL);
	struct itimerval it = {{0, 1000}, {0, 1000}};
	if (timer)
		setitimer(ITIMER_REAL, &it, NULL);
	pthread_t t[4];
	for (int i = 0; i < 4; i++)
		pthread_create(&t[i], NULL, storm_thread, NULL);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	struct itimerval off = {{0, 0}, {0, 0}};
	setitimer(ITIMER_REAL, &off, NULL);
	printf("storm orig=%ld other=%ld bad=%ld handler=%ld handler_bad=%ld\n", storm.orig, storm.other,
	       storm.bad, handler_calls > 0 ? 1L : 0L, handler_bad);
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	char line[64];
	long x, n;
	while (fgets(line, sizeof(line), stdin)) {
		if (sscanf(line, "call %ld", &x) == 1) {
			call(x);
		} else if (sscanf(line, "storm %ld %ld", &x, &n) == 2) {
			run_storm(x, n, !strstr(line, "notimer"));
		} else if (sscanf(line, "fork %ld", &x) == 1) {
			pid_t pid = fork();
			if (pid == 0) {
				printf("child ");
				call(x);
				_exit(0);
			}
			waitpid(pid, NULL, 0);
			call(x);
		}
	}
	return 0;
}
