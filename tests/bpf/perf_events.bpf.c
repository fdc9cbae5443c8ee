// SPDX-License-Identifier: MIT
/* One perf buffer record per call of probe_target's add(a, b): the perf buffer test. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "add_event.h"

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} events SEC(".maps");

SEC("uprobe")
int BPF_KPROBE(on_add, long a, long b)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct event e = {.pid = id >> 32, .tid = (__u32)id, .a = a, .b = b};
	bpf_perf_event_output(ctx, &events, BPF_F_CURRENT_CPU, &e, sizeof(e));
	return 0;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
