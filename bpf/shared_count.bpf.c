// SPDX-License-Identifier: GPL-2.0
/*
 * The shared_count example: one hash map, two programs counting into it. count_exec runs in the
 * kernel on sched/sched_process_exec (key 0: execs on the machine); count_call is a uprobe
 * program run in userspace by our loader (key 1: calls of the traced function). The map is the
 * kernel's; the userspace side fronts it (BpfObject.open(..., {kernelMaps: {counts: id}})).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

static void bump(__u32 key)
{
	__u64 one = 1, *v = bpf_map_lookup_elem(&counts, &key);
	if (v) {
		__sync_fetch_and_add(v, 1);
		return;
	}
	if (bpf_map_update_elem(&counts, &key, &one, BPF_NOEXIST) == 0)
		return;
	v = bpf_map_lookup_elem(&counts, &key); /* another CPU made it meanwhile */
	if (v)
		__sync_fetch_and_add(v, 1);
}

SEC("tp/sched/sched_process_exec")
int count_exec(void *ctx)
{
	bump(0);
	return 0;
}

SEC("uprobe")
int count_call(struct pt_regs *ctx)
{
	bump(1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
