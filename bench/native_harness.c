/* Times the native build of a workload with the same loop the VM's timer uses. */
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "workloads/workloads.h"

typedef u64 (*workload_fn)(u8 *, u64);

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Mean ns per call of workload `name`, or -1 when unknown; *ret = last result. */
__attribute__((visibility("default"))) double native_time(const char *name, u8 *mem, u64 len,
							   u64 repeat, u64 *ret)
{
	workload_fn volatile fn = 0;
	if (strcmp(name, "prime") == 0)
		fn = prime;
	else if (strcmp(name, "memcmp64k") == 0)
		fn = memcmp64k;
	else
		return -1;
	if (repeat == 0)
		repeat = 1;
	uint64_t start = now_ns();
	for (u64 i = 0; i < repeat; i++)
		*ret = fn(mem, len);
	return (double)(now_ns() - start) / (double)repeat;
}
