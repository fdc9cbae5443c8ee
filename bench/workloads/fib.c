#include "workloads.h"

/* Recursive calls: fib(7) reaches the kernel's limit of 8 frames (main + 7). */
#ifdef __bpf__
__attribute__((section("workload/fib"), noinline))
#else
__attribute__((noinline))
#endif
static u64 fib_rec(u64 n)
{
	return n < 2 ? n : fib_rec(n - 1) + fib_rec(n - 2);
}

WORKLOAD(fib)
{
	(void)mem;
	u64 sum = 0;
	for (u64 i = 0; i < 200; i++)
		sum += fib_rec(6 + ((i + len) & 1));
	return sum;
}
