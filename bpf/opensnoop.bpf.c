// SPDX-License-Identifier: MIT
/*
 * Every openat: the entry stashes the path pointer and flags by thread id, the
 * exit adds the result and sends the record through a ring buffer (bcc's
 * opensnoop, on syscall tracepoints).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#include "opensnoop.h"

/* Set by the application before load (.rodata): 0 traces every process. */
const volatile __u32 target_pid = 0;
/* Only opens that failed. */
const volatile bool failed_only = false;

struct open_args {
	const char *path;
	int flags;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u32);
	__type(value, struct open_args);
} pending SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_openat")
int openat_enter(struct trace_event_raw_sys_enter *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)id;
	if (target_pid && (__u32)(id >> 32) != target_pid)
		return 0;
	/* openat(dfd, path, flags, mode) */
	struct open_args args = {.path = (const char *)ctx->args[1], .flags = (int)ctx->args[2]};
	bpf_map_update_elem(&pending, &tid, &args, BPF_ANY);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_openat")
int openat_exit(struct trace_event_raw_sys_exit *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)id;
	struct open_args *args = bpf_map_lookup_elem(&pending, &tid);
	if (!args)
		return 0; /* not ours, or the entry was missed */
	int ret = (int)ctx->ret;
	if (failed_only && ret >= 0)
		goto done;
	struct open_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e)
		goto done;
	e->pid = id >> 32;
	e->tid = tid;
	e->flags = args->flags;
	e->ret = ret;
	bpf_get_current_comm(&e->comm, sizeof(e->comm));
	bpf_probe_read_user_str(&e->path, sizeof(e->path), args->path);
	bpf_ringbuf_submit(e, 0);
done:
	bpf_map_delete_elem(&pending, &tid);
	return 0;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
