/* Times the native build of a workload with the same loop the VM's timer uses. */
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "workloads/workloads.h"

#define EXPORT __attribute__((visibility("default")))

typedef u64 (*workload_fn)(u8 *, u64);

/* The helper of the helper_calls workload, shared by native code and the VM (as helper 1). */
__attribute__((noinline)) static u64 bench_helper(u64 a, u64 b)
{
	return (a ^ (a >> 3)) + b;
}
u64 (*volatile bench_helper_ptr)(u64, u64) = bench_helper;

EXPORT void *native_helper_address(void)
{
	return (void *)bench_helper;
}

/* The native side of the probe_read workloads: plain copies, through pointers as helpers are. */
__attribute__((noinline)) static long native_probe_read(void *dst, unsigned size, const void *src)
{
	memcpy(dst, src, size);
	return 0;
}
__attribute__((noinline)) static long native_probe_read_str(void *dst, unsigned size, const void *src)
{
	char *d = dst;
	const char *s = src;
	for (unsigned i = 0; i < size; i++)
		if ((d[i] = s[i]) == 0)
			return (long)i + 1;
	d[size - 1] = 0;
	return size;
}
long (*volatile native_probe_read_ptr)(void *, unsigned, const void *) = native_probe_read;
long (*volatile native_probe_read_str_ptr)(void *, unsigned, const void *) = native_probe_read_str;

static const struct {
	const char *name;
	workload_fn fn;
} workloads[] = {
	{"prime", prime}, {"memcmp64k", memcmp64k}, {"fib", fib}, {"bitops", bitops},
	{"helper_calls", helper_calls}, {"probe_read8", probe_read8}, {"probe_str64", probe_str64},
	{"str_hash", str_hash}, {"struct_walk", struct_walk},
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Mean ns per call of workload `name`, or -1 when unknown; *ret = last result. */
EXPORT double native_time(const char *name, u8 *mem, u64 len, u64 repeat, u64 *ret)
{
	workload_fn volatile fn = 0;
	for (size_t i = 0; i < sizeof(workloads) / sizeof(workloads[0]); i++)
		if (strcmp(name, workloads[i].name) == 0)
			fn = workloads[i].fn;
	if (!fn)
		return -1;
	if (repeat == 0)
		repeat = 1;
	uint64_t start = now_ns();
	for (u64 i = 0; i < repeat; i++)
		*ret = fn(mem, len);
	return (double)(now_ns() - start) / (double)repeat;
}
