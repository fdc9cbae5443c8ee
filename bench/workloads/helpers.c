#include "workloads.h"

/* A loop of helper calls: eBPF calls helper 1, native code the same C function
 * through a pointer (bench_helper in native_harness.c). */
#ifdef __bpf__
static u64 (*const bench_helper)(u64, u64) = (void *)1;
#else
extern u64 (*volatile bench_helper_ptr)(u64, u64);
#define bench_helper bench_helper_ptr
#endif

WORKLOAD(helper_calls)
{
	(void)mem;
	u64 acc = 0;
	for (u64 i = 0; i < 1000; i++)
		acc += bench_helper(i, len);
	return acc;
}
