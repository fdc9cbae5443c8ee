// SPDX-License-Identifier: MIT
/*
 * A target with USDT probes (<sys/sdt.h>, provider "bpftime_usdt"), driven
 * from stdin so that a test fires them only once its tool is attached:
 *
 *   fire N   fires every probe N times, then prints "fired N guarded=G" (G: how
 *            many of those rounds found the semaphore set and fired "guarded")
 *   sem      prints "sem=V", the semaphore's current value
 *   exec     runs itself again (execv /proc/self/exe: a new image, the same pid and stdin)
 *
 * Probes: "plain" (registers of several sizes and signs, a string pointer),
 * "consts" (immediates), "frame" (memory operands: built at -O0, the
 * arguments are stack slots like -20(%rbp)) and "guarded" (behind the
 * semaphore bpftime_usdt_guarded_semaphore, fired only while a tool watches;
 * in usdt_guarded.c, as <sys/sdt.h> gives semaphores to every probe of a file
 * or to none).
 */
#include <sys/sdt.h>

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int fire_guarded(int i);
unsigned guarded_semaphore(void);

/*
 * Counted after every probe, so that no probe site ends its function: our
 * hooks patch 5 bytes, and a site 2 bytes before the next function cannot
 * take them (the agent refuses it, naming it).
 */
volatile unsigned long probe_hits;

static const char *const names[] = {"alpha", "bravo", "charlie"};

__attribute__((noinline)) static void fire_plain(int i)
{
	int8_t small = (int8_t)(-i);
	uint16_t mid = (uint16_t)(60000 + i);
	long big = -1000000007L * i;
	const char *name = names[i % 3];
	__asm__("" : "+r"(name)); /* a register operand, not a scaled-index load libbpf 1.1 cannot parse */
	DTRACE_PROBE5(bpftime_usdt, plain, i, small, mid, big, name);
	probe_hits++;
}

__attribute__((noinline)) static void fire_consts(void)
{
	DTRACE_PROBE3(bpftime_usdt, consts, 5, -7, 4294967296LL);
	probe_hits++;
}

__attribute__((noinline, optimize("O0"))) static void fire_frame(int i, long l)
{
	short s = (short)(i * -3);
	DTRACE_PROBE3(bpftime_usdt, frame, i, l, s);
	probe_hits++;
}

int main(int argc, char **argv)
{
	(void)argc;
	setvbuf(stdout, NULL, _IOLBF, 0);
	setvbuf(stdin, NULL, _IONBF, 0); /* nothing of the next command read ahead and lost at exec */
	char line[64];
	int round = 0;
	while (fgets(line, sizeof(line), stdin)) {
		int n;
		if (sscanf(line, "fire %d", &n) == 1) {
			int guarded = 0;
			for (int k = 0; k < n; k++) {
				round++;
				fire_plain(round);
				fire_consts();
				fire_frame(round, (long)round << 33);
				guarded += fire_guarded(round);
			}
			printf("fired %d guarded=%d\n", n, guarded);
		} else if (strncmp(line, "exec", 4) == 0) {
			execv("/proc/self/exe", argv);
			printf("exec failed\n");
		} else if (strncmp(line, "sem", 3) == 0) {
			printf("sem=%u\n", guarded_semaphore());
		}
	}
	return 0;
}
