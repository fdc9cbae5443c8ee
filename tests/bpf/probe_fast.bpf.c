// SPDX-License-Identifier: MIT
/*
 * Programs for tests/probe_fast_test.ts: none calls a helper, so each runs on
 * the probe fast path (probe_fast.h). They count in global variables (.bss),
 * which the JIT code reaches without a call.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

__u64 ctx_calls, di_sum, r15_sum, flags_bad;
__u64 noctx_calls;
__u64 ret_calls, ret_sum;
__u64 fault_calls, fault_ctx_calls;
__u64 small[4] = {1, 2, 3, 4}; /* (.data: the .bss holds only the counters, in this order) */
/* Loaded values are unknown to the validator: small[far] is checked, and faults, at run time. */
__u64 far = 1 << 20;

/* Reads the context: runs from the stub that builds the whole struct pt_regs. */
SEC("uprobe")
int fast_ctx(struct pt_regs *ctx)
{
	__sync_fetch_and_add(&ctx_calls, 1);
	__sync_fetch_and_add(&di_sum, ctx->di);
	__sync_fetch_and_add(&r15_sum, ctx->r15);
	/* IF and the reserved bit are always reported set. */
	if ((ctx->flags & 0x202) != 0x202)
		__sync_fetch_and_add(&flags_bad, 1);
	return 0;
}

/* Never reads the context: runs from the stub that keeps only what the JIT code may change. */
SEC("uprobe")
int fast_noctx(void *ctx)
{
	__sync_fetch_and_add(&noctx_calls, 1);
	return 0;
}

SEC("uretprobe")
int fast_ret(struct pt_regs *ctx)
{
	__sync_fetch_and_add(&ret_calls, 1);
	__sync_fetch_and_add(&ret_sum, ctx->ax);
	return 0;
}

/* Every 4th run faults (an access far outside `small`), without reading the context. */
SEC("uprobe")
int fast_fault(void *ctx)
{
	__u64 n = __sync_fetch_and_add(&fault_calls, 1);
	if (n % 4 == 3)
		return small[far];
	return 0;
}

/* The same after reading the context. */
SEC("uprobe")
int fast_fault_ctx(struct pt_regs *ctx)
{
	__u64 n = __sync_fetch_and_add(&fault_ctx_calls, 1);
	if (n % 4 == 3)
		return small[far + (ctx->di & 1)];
	return 0;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
