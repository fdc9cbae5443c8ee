// SPDX-License-Identifier: MIT
/* Counts malloc calls per process: the seeds' malloc example. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u64);
} libc_malloc_calls_total SEC(".maps");

/* Set by the loader before load (bpftime run -D VERBOSE=1 style: rodata). */
const volatile bool verbose = false;

SEC("uprobe/libc.so.6:malloc")
int BPF_KPROBE(do_count, size_t size)
{
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	__u64 *count = bpf_map_lookup_elem(&libc_malloc_calls_total, &pid);
	if (!count) {
		__u64 zero = 0;
		bpf_map_update_elem(&libc_malloc_calls_total, &pid, &zero, BPF_NOEXIST);
		count = bpf_map_lookup_elem(&libc_malloc_calls_total, &pid);
		if (!count)
			return 0;
	}
	__sync_fetch_and_add(count, 1);
	if (verbose)
		bpf_printk("malloc(%lu) called from pid %u", size, pid);
	return 0;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
