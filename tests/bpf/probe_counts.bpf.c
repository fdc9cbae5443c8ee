// SPDX-License-Identifier: MIT
/* Probes of the uprobe tests: counts per attach cookie and per thread. */
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

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u64);
} by_tid SEC(".maps");

static struct stats *slot(void *ctx)
{
	__u32 key = bpf_get_attach_cookie(ctx) & 63;
	return bpf_map_lookup_elem(&by_cookie, &key);
}

SEC("uprobe")
int BPF_KPROBE(on_entry, long arg)
{
	struct stats *s = slot(ctx);
	if (!s)
		return 0;
	__sync_fetch_and_add(&s->calls, 1);
	__sync_fetch_and_add(&s->arg_sum, arg);
	return 0;
}

SEC("uretprobe")
int BPF_KRETPROBE(on_return, long ret)
{
	struct stats *s = slot(ctx);
	if (!s)
		return 0;
	__sync_fetch_and_add(&s->ret_calls, 1);
	__sync_fetch_and_add(&s->ret_sum, ret);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(count_by_tid)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	__u64 *n = bpf_map_lookup_elem(&by_tid, &tid);
	if (n) {
		(*n)++; /* only this thread writes its entry */
		return 0;
	}
	__u64 one = 1;
	bpf_map_update_elem(&by_tid, &tid, &one, BPF_NOEXIST);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(do_nothing)
{
	return 0;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
