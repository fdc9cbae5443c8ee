// SPDX-License-Identifier: MIT
/*
 * Error injection: makes libc's malloc fail (return NULL, as it does when it
 * is out of memory) for one process, for a given share of its calls, with
 * bpf_override_return at malloc's entry: the failed calls never run malloc.
 * The share is exact and spread evenly: call n fails when
 * floor(n * percent / 100) steps up, so 50 fails every second call.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "errinject.h"

const volatile __u32 target_pid = 0;
const volatile __u32 percent = 100;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct errinject_stats);
} stats SEC(".maps");

SEC("uprobe")
int BPF_KPROBE(fail_malloc, unsigned long size)
{
	if ((__u32)(bpf_get_current_pid_tgid() >> 32) != target_pid)
		return 0;
	__u32 zero = 0;
	struct errinject_stats *s = bpf_map_lookup_elem(&stats, &zero);
	if (!s)
		return 0;
	__u64 n = __sync_fetch_and_add(&s->calls, 1) + 1;
	if (n * percent / 100 == (n - 1) * percent / 100)
		return 0;
	__sync_fetch_and_add(&s->failed, 1);
	bpf_override_return(ctx, 0); /* NULL: no memory */
	return 0;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
