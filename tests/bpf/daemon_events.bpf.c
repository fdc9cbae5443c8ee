// SPDX-License-Identifier: GPL-2.0
/*
 * Uprobe programs that emit events, for tests/daemon_test.ts (through build/tests/daemon_events):
 * on add(a, b), one record through bpf_ringbuf_output, one through reserve/submit (discarded
 * when (a & 3) == 3) and one through bpf_perf_event_output on the current CPU. ring_query
 * outputs one record, then keeps bpf_ringbuf_query's four answers in ring_seen.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

struct event {
	__u64 a, b;
	__u32 pid, kind; /* 1: ringbuf_output, 2: reserve/submit, 3: perf_event_output */
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1024 * 1024);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} perf_events SEC(".maps");

SEC("uprobe")
int BPF_KPROBE(ring_output, long a, long b)
{
	struct event e = {a, b, bpf_get_current_pid_tgid() >> 32, 1};
	bpf_ringbuf_output(&events, &e, sizeof(e), 0);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(ring_reserve, long a, long b)
{
	struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e)
		return 0;
	e->a = a;
	e->b = b;
	e->pid = bpf_get_current_pid_tgid() >> 32;
	e->kind = 2;
	if ((a & 3) == 3)
		bpf_ringbuf_discard(e, 0);
	else
		bpf_ringbuf_submit(e, 0);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(perf_output, long a, long b)
{
	struct event e = {a, b, bpf_get_current_pid_tgid() >> 32, 3};
	bpf_perf_event_output(ctx, &perf_events, BPF_F_CURRENT_CPU, &e, sizeof(e));
	return 0;
}

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} ring_seen SEC(".maps");

static __always_inline void keep(__u32 slot, __u64 value)
{
	bpf_map_update_elem(&ring_seen, &slot, &value, BPF_ANY);
}

SEC("uprobe")
int BPF_KPROBE(ring_query, long a, long b)
{
	struct event e = {a, b, bpf_get_current_pid_tgid() >> 32, 4};
	bpf_ringbuf_output(&events, &e, sizeof(e), 0);
	keep(0, bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA));
	keep(1, bpf_ringbuf_query(&events, BPF_RB_RING_SIZE));
	keep(2, bpf_ringbuf_query(&events, BPF_RB_CONS_POS));
	keep(3, bpf_ringbuf_query(&events, BPF_RB_PROD_POS));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
