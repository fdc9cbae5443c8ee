// SPDX-License-Identifier: MIT
/* A uprobe that prints its first argument with bpf_printk. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

SEC("uprobe")
int BPF_KPROBE(say, long x)
{
	bpf_printk("add called with %ld", x);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
