// SPDX-License-Identifier: MIT
/*
 * Counts system calls from raw_syscalls/sys_enter: per syscall number, or per
 * process when by_process is set (bcc's syscount -P).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#include "syscount.h"

/* Set by the application before load (.rodata). */
const volatile __u32 target_pid = 0;
const volatile bool by_process = false;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u32);
	__type(value, struct syscount_value);
} counts SEC(".maps");

SEC("tracepoint/raw_syscalls/sys_enter")
int count_enter(struct trace_event_raw_sys_enter *ctx)
{
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	if (target_pid && pid != target_pid)
		return 0;
	if (ctx->id < 0)
		return 0;
	__u32 key = by_process ? pid : (__u32)ctx->id;
	struct syscount_value *v = bpf_map_lookup_elem(&counts, &key);
	if (!v) {
		struct syscount_value zero = {};
		if (by_process)
			bpf_get_current_comm(&zero.comm, sizeof(zero.comm));
		bpf_map_update_elem(&counts, &key, &zero, BPF_NOEXIST);
		v = bpf_map_lookup_elem(&counts, &key);
		if (!v)
			return 0;
	}
	__sync_fetch_and_add(&v->count, 1);
	return 0;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
