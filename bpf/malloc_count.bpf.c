// SPDX-License-Identifier: MIT
/* Counts malloc calls and bytes per process: the seeds' malloc example. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

struct malloc_stats {
	__u64 calls;
	__u64 bytes;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, struct malloc_stats);
} malloc_counts SEC(".maps");

SEC("uprobe/libc.so.6:malloc")
int BPF_KPROBE(count_malloc, size_t size)
{
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	struct malloc_stats *stats = bpf_map_lookup_elem(&malloc_counts, &pid);
	if (!stats) {
		struct malloc_stats zero = {};
		bpf_map_update_elem(&malloc_counts, &pid, &zero, BPF_NOEXIST);
		stats = bpf_map_lookup_elem(&malloc_counts, &pid);
		if (!stats)
			return 0;
	}
	__sync_fetch_and_add(&stats->calls, 1);
	__sync_fetch_and_add(&stats->bytes, size);
	bpf_printk("malloc(%lu) in pid %u", size, pid);
	return 0;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
