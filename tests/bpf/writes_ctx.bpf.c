// SPDX-License-Identifier: MIT
/* A uprobe that tries to change the probed function's first argument (the kernel's verifier refuses this). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

SEC("uprobe")
int clobber(struct pt_regs *ctx)
{
	ctx->di = 12345;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
