/*
 * The syscall benchmark's target: calls getppid N times and prints the mean
 * ns per call (the system call included) and the number of calls. A warm-up
 * of 200 ms first, so that probes being installed have settled.
 *
 *   syscall_target [N]
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static double now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 1000000;
	long sink = 0;
	double warm = now_ns() + 200e6;
	while (now_ns() < warm)
		for (int i = 0; i < 1000; i++)
			sink += getppid();
	double a = now_ns();
	for (long i = 0; i < n; i++)
		sink += getppid();
	double b = now_ns();
	printf("%.3f %ld %d\n", (b - a) / (double)n, n, sink != 0);
	return 0;
}
