// SPDX-License-Identifier: MIT
/*
 * A target for bpf_override_return and replace programs, driven from stdin:
 *
 *   call X   prints "compute(X)=R ran=N kept=K": R what compute returned, N how
 *            many times compute's body has run so far, K 1 when the caller's
 *            values held in callee-saved registers across the call came back intact
 *   fork X   the same from a forked child (its own line), then the parent's
 *
 * compute is what the programs replace; the caller keeps many values live
 * across the call (the compiler holds them in rbx, rbp, r12-r15), so a probe
 * that returned for compute without restoring them shows up as kept=0.
 */
#include <stdio.h>
#include <string.h>
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

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	char line[64];
	long x;
	while (fgets(line, sizeof(line), stdin)) {
		if (sscanf(line, "call %ld", &x) == 1) {
			call(x);
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
