// SPDX-License-Identifier: MIT
/*
 * Counts system calls from raw_syscalls/sys_enter: per syscall number, or per
 * process when by_process is set (bcc's syscount -P). With measure_latency set
 * and latency_exit loaded (syscount -L), the time each call took is summed too: the entry keeps its
 * time by thread id, raw_syscalls/sys_exit adds the difference.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#include "syscount.h"

/* Set by the application before load (.rodata). */
const volatile __u32 target_pid = 0;
const volatile bool by_process = false;
const volatile bool measure_latency = false;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u32);
	__type(value, struct syscount_value);
} counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u32);
	__type(value, __u64);
} entered SEC(".maps");

/* The counts slot of this call: by syscall number or by process. */
static __always_inline struct syscount_value *slot(__u32 pid, long nr)
{
	__u32 key = by_process ? pid : (__u32)nr;
	struct syscount_value *v = bpf_map_lookup_elem(&counts, &key);
	if (v)
		return v;
	struct syscount_value zero = {};
	if (by_process)
		bpf_get_current_comm(&zero.comm, sizeof(zero.comm));
	bpf_map_update_elem(&counts, &key, &zero, BPF_NOEXIST);
	return bpf_map_lookup_elem(&counts, &key);
}

SEC("tracepoint/raw_syscalls/sys_enter")
int count_enter(struct trace_event_raw_sys_enter *ctx)
{
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	if (target_pid && pid != target_pid)
		return 0;
	if (ctx->id < 0)
		return 0;
	struct syscount_value *v = slot(pid, ctx->id);
	if (v)
		__sync_fetch_and_add(&v->count, 1);
	if (measure_latency) {
		__u32 tid = (__u32)bpf_get_current_pid_tgid();
		__u64 now = bpf_ktime_get_ns();
		bpf_map_update_elem(&entered, &tid, &now, BPF_ANY);
	}
	return 0;
}

SEC("tracepoint/raw_syscalls/sys_exit")
int latency_exit(struct trace_event_raw_sys_exit *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)id;
	__u64 *start = bpf_map_lookup_elem(&entered, &tid);
	if (!start)
		return 0;
	__u64 took = bpf_ktime_get_ns() - *start;
	bpf_map_delete_elem(&entered, &tid);
	if (ctx->id < 0)
		return 0;
	struct syscount_value *v = slot(id >> 32, ctx->id);
	if (v)
		__sync_fetch_and_add(&v->total_ns, took);
	return 0;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
