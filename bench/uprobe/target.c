/* The uprobe benchmark's target: calls an empty function N times and prints the mean ns per call. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* Empty: a single `ret`, the shortest function a probe can meet. */
__attribute__((noinline)) void bench_fn(long x)
{
	__asm__ volatile("" ::: "memory");
	(void)x;
}

/* Keeps bench_fn from being the last function in .text (its padding is then another function's alignment). */
__attribute__((noinline)) long checksum(long x)
{
	return x * 31 + 7;
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 1000000;
	long sink = 0;
	for (long i = 0; i < n / 100 + 1; i++) /* warm up (and let hooks settle) */
		bench_fn(i), sink += i;
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (long i = 0; i < n; i++)
		bench_fn(i), sink += i;
	clock_gettime(CLOCK_MONOTONIC, &b);
	double ns = (double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec);
	printf("%.3f %ld\n", ns / (double)n, checksum(sink));
	return 0;
}
