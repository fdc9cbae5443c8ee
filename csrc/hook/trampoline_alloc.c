/*
 * Executable memory for trampolines, within +-2 GiB of the hooked code so a
 * jmp rel32 reaches it and RIP-relative operands can be rebased. Pools of
 * 64 KiB are carved into trampolines and never unmapped.
 */
#define _GNU_SOURCE
#include "hook.h"

#include <pthread.h>
#include <stddef.h>
#include <sys/mman.h>

#define POOL_SIZE (64 * 1024)
#define MAX_POOLS 64
#define REACH (INT32_MAX - POOL_SIZE)

static struct {
	uint8_t *base;
	uint64_t used;
} pools[MAX_POOLS];
static int npools;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static bool reachable(uint64_t from, uint64_t to)
{
	int64_t d = (int64_t)(to - from);
	return d > -(int64_t)REACH && d < (int64_t)REACH;
}

static uint8_t *map_near(uint64_t near)
{
	/* Probe candidate addresses at 16 MiB steps, below first (where libraries leave gaps). */
	const uint64_t step = 16ull << 20;
	for (uint64_t dist = step; dist < (1ull << 31) - step; dist += step) {
		for (int dir = -1; dir <= 1; dir += 2) {
			uint64_t want = dir < 0 ? near - dist : near + dist;
			if (dir < 0 && near < dist)
				continue;
			want &= ~(uint64_t)(POOL_SIZE - 1);
			if (want < 0x10000)
				continue;
			void *p = mmap((void *)want, POOL_SIZE, PROT_READ | PROT_WRITE | PROT_EXEC,
				       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
			if (p == MAP_FAILED)
				continue;
			if ((uint64_t)p == want)
				return p;
			munmap(p, POOL_SIZE); /* an old kernel ignored the flag and moved it */
		}
	}
	return NULL;
}

uint8_t *trampoline_alloc(uint64_t near, uint64_t size)
{
	size = (size + 15) & ~15ull;
	pthread_mutex_lock(&lock);
	uint8_t *out = NULL;
	for (int i = 0; i < npools && !out; i++) {
		if (pools[i].used + size <= POOL_SIZE && reachable(near, (uint64_t)pools[i].base) &&
		    reachable(near, (uint64_t)pools[i].base + POOL_SIZE)) {
			out = pools[i].base + pools[i].used;
			pools[i].used += size;
		}
	}
	if (!out && npools < MAX_POOLS) {
		uint8_t *p = map_near(near);
		if (p) {
			pools[npools].base = p;
			pools[npools].used = size;
			npools++;
			out = p;
		}
	}
	pthread_mutex_unlock(&lock);
	return out;
}
