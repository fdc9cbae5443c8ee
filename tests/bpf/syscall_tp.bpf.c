// SPDX-License-Identifier: MIT
/*
 * Syscall tracepoint programs of tests/syscall_tracepoint_test.ts:
 * raw_syscalls enter/exit counts per syscall number between two marker calls
 * (close(7770001) .. close(7770002)), and the fields of sys_enter_openat and
 * sys_exit_openat for opens of /tmp/bpftime_tp_* files, by path.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#define MARK_BEGIN 7770001
#define MARK_END 7770002
#define NR_SLOTS 512

/* [0, 512): entries by number, [512, 1024): exits; nr -1 (rt_sigreturn's exit) at 511 + 512. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2 * NR_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

/* 0: counting on; 1: the thread that entered close(MARK_END) */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} state SEC(".maps");

static void bump(__u32 k)
{
	__u64 *c = bpf_map_lookup_elem(&counts, &k);
	if (c)
		__sync_fetch_and_add(c, 1);
}

SEC("tracepoint/raw_syscalls/sys_enter")
int count_enter(struct trace_event_raw_sys_enter *ctx)
{
	__u32 k0 = 0, k1 = 1;
	__u64 *on = bpf_map_lookup_elem(&state, &k0), *end = bpf_map_lookup_elem(&state, &k1);
	if (!on || !end)
		return 0;
	long id = ctx->id;
	if (id == 3 && ctx->args[0] == MARK_BEGIN)
		*on = 1;
	if (!*on)
		return 0;
	bump(id & (NR_SLOTS - 1));
	if (id == 3 && ctx->args[0] == MARK_END)
		*end = (__u32)bpf_get_current_pid_tgid();
	return 0;
}

SEC("tracepoint/raw_syscalls/sys_exit")
int count_exit(struct trace_event_raw_sys_exit *ctx)
{
	__u32 k0 = 0, k1 = 1;
	__u64 *on = bpf_map_lookup_elem(&state, &k0), *end = bpf_map_lookup_elem(&state, &k1);
	if (!on || !end || !*on)
		return 0;
	long id = ctx->id;
	bump(NR_SLOTS + (id & (NR_SLOTS - 1)));
	if (id == 3 && *end == (__u32)bpf_get_current_pid_tgid())
		*on = 0;
	return 0;
}

/* The records as tracefs's format files describe them. */
struct enter_openat {
	__u16 common_type;
	__u8 common_flags;
	__u8 common_preempt_count;
	__s32 common_pid;
	__s32 __syscall_nr;
	__s64 dfd;
	__u64 filename;
	__s64 flags;
	__s64 mode;
};

struct exit_openat {
	__u16 common_type;
	__u8 common_flags;
	__u8 common_preempt_count;
	__s32 common_pid;
	__s32 __syscall_nr;
	__s64 ret;
};

struct tp_path {
	char s[64];
};

struct open_rec {
	__u64 enters;
	__u64 exits;
	__u32 enter_type;
	__u32 exit_type;
	__s32 enter_pid;
	__s32 exit_pid;
	__s32 enter_nr;
	__s32 exit_nr;
	__u64 pid_tgid;
	__s64 dfd;
	__u64 filename;
	__s64 flags;
	__s64 mode;
	__s64 ret;
	__u64 cookie;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, struct tp_path);
	__type(value, struct open_rec);
} opens SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, struct tp_path);
} pending SEC(".maps");

SEC("tp/syscalls/sys_enter_openat")
int open_enter(struct enter_openat *ctx)
{
	struct tp_path p = {};
	if (bpf_probe_read_user_str(p.s, sizeof(p.s), (const void *)ctx->filename) < 0)
		return 0;
	const char prefix[] = "/tmp/bpftime_tp_";
	for (int i = 0; i < (int)sizeof(prefix) - 1; i++)
		if (p.s[i] != prefix[i])
			return 0;
	struct open_rec *r = bpf_map_lookup_elem(&opens, &p);
	if (!r) {
		struct open_rec zero = {};
		bpf_map_update_elem(&opens, &p, &zero, BPF_NOEXIST);
		r = bpf_map_lookup_elem(&opens, &p);
		if (!r)
			return 0;
	}
	r->enters++;
	r->enter_type = ctx->common_type;
	r->enter_pid = ctx->common_pid;
	r->enter_nr = ctx->__syscall_nr;
	r->pid_tgid = bpf_get_current_pid_tgid();
	r->dfd = ctx->dfd;
	r->filename = ctx->filename;
	r->flags = ctx->flags;
	r->mode = ctx->mode;
	r->cookie = bpf_get_attach_cookie(ctx);
	__u32 tid = (__u32)r->pid_tgid;
	bpf_map_update_elem(&pending, &tid, &p, BPF_ANY);
	return 0;
}

SEC("tp/syscalls/sys_exit_openat")
int open_exit(struct exit_openat *ctx)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct tp_path *p = bpf_map_lookup_elem(&pending, &tid);
	if (!p)
		return 0;
	struct open_rec *r = bpf_map_lookup_elem(&opens, p);
	if (r) {
		r->exits++;
		r->exit_type = ctx->common_type;
		r->exit_pid = ctx->common_pid;
		r->exit_nr = ctx->__syscall_nr;
		r->ret = ctx->ret;
	}
	bpf_map_delete_elem(&pending, &tid);
	return 0;
}

/* Writes its context: the kernel's verifier refuses this; we refuse the store. */
SEC("tp/syscalls/sys_enter_openat")
int clobber_ctx(struct enter_openat *ctx)
{
	ctx->dfd = 12345;
	return 0;
}

/* Section names that must be refused at attach. */
SEC("tracepoint/sched/sched_switch")
int on_sched(void *ctx)
{
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_no_such_call")
int on_nosuch(void *ctx)
{
	return 0;
}

/* Syscalls (entries and exits) per thread id: which threads reach the programs. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u64);
} by_tid SEC(".maps");

static void bump_tid(void)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	__u64 one = 1, *c = bpf_map_lookup_elem(&by_tid, &tid);
	if (c)
		__sync_fetch_and_add(c, 1);
	else
		bpf_map_update_elem(&by_tid, &tid, &one, BPF_NOEXIST);
}

SEC("tracepoint/raw_syscalls/sys_enter")
int tid_enter(void *ctx)
{
	bump_tid();
	return 0;
}

SEC("tracepoint/raw_syscalls/sys_exit")
int tid_exit(void *ctx)
{
	bump_tid();
	return 0;
}

char LICENSE[] SEC("license") = "GPL";

/* The cheapest program, for the cost of a hit (printed by the test). */
SEC("tp/syscalls/sys_enter_getppid")
int ret0(void *ctx)
{
	return 0;
}
