// SPDX-License-Identifier: MIT
/*
 * Probes of the pid/tgid cache test: each hit compares bpf_get_current_pid_tgid with the ids
 * the traced code passes (entry: pid and tid in the first two arguments; return: the function
 * returns pid << 32 | tid) and counts matches and mismatches. Every hit also calls
 * bpf_map_update_elem (a 48-byte value, copied by libc), the one helper call a compiled
 * program makes through the agent's gate: the xmm checks of the target see whether it kept
 * the vector registers.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

/* 0: entry matches, 1: entry mismatches, 2: return matches, 3: return mismatches */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} id_checks SEC(".maps");

struct seen {
	__u64 got, want, spare[4];
};

/* The last ids seen per slot above (what a failure message shows). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, struct seen);
} last_seen SEC(".maps");

static __always_inline int check(__u64 want, __u32 slot)
{
	__u64 got = bpf_get_current_pid_tgid();
	__u32 k = slot + (got != want);
	__u64 *n = bpf_map_lookup_elem(&id_checks, &k);
	if (n)
		__sync_fetch_and_add(n, 1);
	struct seen s = {got, want, {k, 0, 0, 0}};
	bpf_map_update_elem(&last_seen, &k, &s, BPF_ANY);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(ids_entry, long pid, long tid)
{
	return check((__u64)pid << 32 | (__u32)tid, 0);
}

SEC("uretprobe")
int BPF_KRETPROBE(ids_return, long ret)
{
	return check((__u64)ret, 2);
}

/* Counts hits per attach cookie (slot cookie & 3) with the vector-safe helpers only. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} by_cookie SEC(".maps");

SEC("uprobe")
int BPF_KPROBE(cookie_count)
{
	__u32 k = bpf_get_attach_cookie(ctx) & 3;
	__u64 *n = bpf_map_lookup_elem(&by_cookie, &k);
	if (n && bpf_get_func_ip(ctx))
		__sync_fetch_and_add(n, 1);
	return 0;
}

/* 0: matches, 1: mismatches of the ids a thread passes to tgkill(pid, tid, 0). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} tgkill_checks SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_tgkill")
int tgkill_ids(struct trace_event_raw_sys_enter *ctx)
{
	__u64 want = ctx->args[0] << 32 | (__u32)ctx->args[1];
	__u32 k = bpf_get_current_pid_tgid() != want;
	__u64 *n = bpf_map_lookup_elem(&tgkill_checks, &k);
	if (n)
		__sync_fetch_and_add(n, 1);
	return 0;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
