/*
 * The uprobe benchmark's target: calls an empty function (bench_fn, the one
 * probed) and its unprobed twin (plain_fn) N times each, in alternating
 * batches, and prints what a probe adds per call, the twin's ns per call and
 * a checksum:
 *
 *   <added ns> <plain ns> <checksum>
 *
 * The added time is the fastest batch of bench_fn less the fastest of
 * plain_fn: both met the same machine (load, clock speed) within
 * milliseconds of each other, which separate runs of the target do not.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* Empty: a single `ret`, the shortest function a probe can meet. */
__attribute__((noinline)) void bench_fn(long x)
{
	__asm__ volatile("" ::: "memory");
	(void)x;
}

__attribute__((noinline)) void plain_fn(long x)
{
	__asm__ volatile("" ::: "memory");
	(void)x;
}

/* Keeps bench_fn from being the last function in .text (its padding is then another function's alignment). */
__attribute__((noinline)) long checksum(long x)
{
	return x * 31 + 7;
}

static double now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 1000000;
	long batches = n >= 100000 ? 200 : 20, per = n / batches + 1;
	long sink = 0;
	for (long i = 0; i < n / 100 + 1; i++) /* warm up (and let hooks settle) */
		bench_fn(i), plain_fn(i), sink += i;
	double probed = 1e300, plain = 1e300;
	for (long b = 0; b < batches; b++) {
		double t0 = now_ns();
		for (long i = 0; i < per; i++)
			bench_fn(i), sink += i;
		double t1 = now_ns();
		for (long i = 0; i < per; i++)
			plain_fn(i), sink += i;
		double t2 = now_ns();
		if (t1 - t0 < probed)
			probed = t1 - t0;
		if (t2 - t1 < plain)
			plain = t2 - t1;
	}
	printf("%.3f %.3f %ld\n", (probed - plain) / (double)per, plain / (double)per, checksum(sink));
	return 0;
}
