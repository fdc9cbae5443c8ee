// SPDX-License-Identifier: MIT
/*
 * tests/daemon_test.ts: probe_counts' per-cookie counts (through map lookups), plus a global
 * counter in .bss and a step in .rodata (mmapable arrays libbpf creates), which a program
 * redirected by `bpftime daemon` reaches in the kernel's own memory.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

struct stats {
	__u64 calls;
	__u64 arg_sum;
	__u64 ret_calls;
	__u64 ret_sum;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, struct stats);
} by_cookie SEC(".maps");

__u64 hits = 0;
const volatile __u64 step = 3;

SEC("uprobe")
int BPF_KPROBE(on_entry, long arg)
{
	__u32 key = bpf_get_attach_cookie(ctx) & 63;
	struct stats *s = bpf_map_lookup_elem(&by_cookie, &key);
	if (s) {
		__sync_fetch_and_add(&s->calls, 1);
		__sync_fetch_and_add(&s->arg_sum, arg);
	}
	__sync_fetch_and_add(&hits, step);
	return 0;
}

/* Only globals: redirected, it runs without a system call (the bench's second program). */
SEC("uprobe")
int BPF_KPROBE(count_global, long arg)
{
	__sync_fetch_and_add(&hits, step);
	return 0;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
