// SPDX-License-Identifier: MIT
/* usdt_target's probe behind a semaphore (see usdt_target.c). */
#define _SDT_HAS_SEMAPHORES 1
#include <sys/sdt.h>

__extension__ unsigned short bpftime_usdt_guarded_semaphore __attribute__((unused, section(".probes")));

extern volatile unsigned long probe_hits;

unsigned guarded_semaphore(void)
{
	return *(volatile unsigned short *)&bpftime_usdt_guarded_semaphore;
}

/* Fires "guarded" when a tool watches it (the semaphore is set): 1 when it did. */
__attribute__((noinline)) int fire_guarded(int i)
{
	unsigned sem = guarded_semaphore();
	if (!sem)
		return 0;
	DTRACE_PROBE2(bpftime_usdt, guarded, i, sem);
	probe_hits++; /* the probe does not end the function (see usdt_target.c) */
	return 1;
}
