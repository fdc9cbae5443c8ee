// SPDX-License-Identifier: MIT
/*
 * Programs that return for tests/targets/override_target.c's compute(x):
 * bpf_override_return for even x (odd x runs the body), and a replace program
 * whose return value is compute's. Counts in `hits` what each saw.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} hits SEC(".maps");

static __always_inline void count(__u32 slot)
{
	__u64 *v = bpf_map_lookup_elem(&hits, &slot);
	if (v)
		__sync_fetch_and_add(v, 1);
}

SEC("uprobe")
int BPF_KPROBE(override_even, long x)
{
	count(0);
	if (x % 2 == 0)
		count(bpf_override_return(ctx, -x) == 0 ? 1 : 2);
	return 0;
}

/* Replaces compute: x * 100 - 1 (r0 is all 64 bits of the returned long). */
SEC("uprobe.replace")
long BPF_KPROBE(replace_compute, long x)
{
	count(3);
	return x * 100 - 1;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
