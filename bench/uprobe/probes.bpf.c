// SPDX-License-Identifier: MIT
/* The uprobe benchmark's programs: one that only returns, one that counts in a hash map. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u64);
} hits SEC(".maps");

static __always_inline int count(void)
{
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	__u64 *n = bpf_map_lookup_elem(&hits, &pid);
	if (n) {
		__sync_fetch_and_add(n, 1);
	} else {
		__u64 one = 1;
		bpf_map_update_elem(&hits, &pid, &one, BPF_NOEXIST);
	}
	return 0;
}

SEC("uprobe")
int nop_entry(struct pt_regs *ctx)
{
	return 0;
}

SEC("uretprobe")
int nop_return(struct pt_regs *ctx)
{
	return 0;
}

SEC("uprobe")
int count_entry(struct pt_regs *ctx)
{
	return count();
}

SEC("uretprobe")
int count_return(struct pt_regs *ctx)
{
	return count();
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
