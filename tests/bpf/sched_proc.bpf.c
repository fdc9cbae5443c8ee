// SPDX-License-Identifier: MIT
/*
 * Process events of tests/sched_tracepoint_test.ts, the same object on the kernel and in
 * userspace: sched_process_exec (filename from the record, ppid and uid through CO-RE reads of
 * bpf_get_current_task, argv from mm->arg_start), sched_process_exit of processes (pid == tgid;
 * exit code, ppid and start time through the BTF pointer of bpf_get_current_task_btf) and
 * sched_process_fork, into a ring buffer.
 */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include "sched_proc.h"

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} events SEC(".maps");

/* [0]: exits of threads other than the leader (the kernel's, and ours when the syscall hooks see them) */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} thread_exits SEC(".maps");

static struct sched_event *start(unsigned int kind)
{
	struct sched_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e)
		return 0;
	__builtin_memset(e, 0, sizeof(*e));
	__u64 id = bpf_get_current_pid_tgid();
	e->kind = kind;
	e->pid = id >> 32;
	e->tid = (__u32)id;
	e->exit_code = -1;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	return e;
}

SEC("tp/sched/sched_process_exec")
int on_exec(struct trace_event_raw_sched_process_exec *ctx)
{
	struct sched_event *e = start(EV_EXEC);
	if (!e)
		return 0;
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	e->ppid = BPF_CORE_READ(task, real_parent, tgid);
	e->uid = BPF_CORE_READ(task, cred, uid.val);
	e->leader_pid = BPF_CORE_READ(task, group_leader, pid);
	e->start_boottime = BPF_CORE_READ(task, start_boottime);
	e->ctx_pid = ctx->pid;
	e->other_pid = ctx->old_pid;
	unsigned int off = ctx->__data_loc_filename & 0xffff;
	bpf_probe_read_kernel_str(e->filename, sizeof(e->filename), (void *)ctx + off);
	unsigned long args = BPF_CORE_READ(task, mm, arg_start);
	long n = bpf_probe_read_user_str(e->argv0, sizeof(e->argv0), (void *)args);
	if (n > 0 && n < (long)sizeof(e->argv0))
		bpf_probe_read_user_str(e->argv1, sizeof(e->argv1), (void *)(args + n));
	bpf_ringbuf_submit(e, 0);
	return 0;
}

SEC("tp/sched/sched_process_exit")
int on_exit(struct trace_event_raw_sched_process_exit *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	if ((__u32)id != id >> 32) {
		__u32 zero = 0;
		__u64 *n = bpf_map_lookup_elem(&thread_exits, &zero);
		if (n)
			__sync_fetch_and_add(n, 1);
		return 0; /* a thread, not the process */
	}
	struct sched_event *e = start(EV_EXIT);
	if (!e)
		return 0;
	struct task_struct *task = bpf_get_current_task_btf();
	int code = task->exit_code;
	e->exit_code = (code >> 8) & 0xff;
	e->exit_signal_bits = code & 0x7f;
	e->ppid_btf = task->real_parent->tgid;
	e->ppid = BPF_CORE_READ(task, real_parent, tgid);
	e->leader_pid = task->group_leader->pid;
	e->start_boottime = task->start_boottime;
	e->uid = task->cred->uid.val;
	e->ctx_pid = ctx->pid;
	bpf_probe_read_kernel_str(e->ctx_comm, sizeof(e->ctx_comm), ctx->comm);
	bpf_ringbuf_submit(e, 0);
	return 0;
}

SEC("tp/sched/sched_process_fork")
int on_fork(struct trace_event_raw_sched_process_fork *ctx)
{
	struct sched_event *e = start(EV_FORK);
	if (!e)
		return 0;
	e->ctx_pid = ctx->parent_pid;
	e->other_pid = ctx->child_pid;
	bpf_ringbuf_submit(e, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
