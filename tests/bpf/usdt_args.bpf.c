// SPDX-License-Identifier: MIT
/*
 * One program for every USDT probe of tests/targets/usdt_target.c, through
 * libbpf's <bpf/usdt.bpf.h>: a ring buffer record with the probe's cookie and
 * every argument as bpf_usdt_arg computes it. The same object runs under
 * libbpf (kernel or `bpftime load`) and in our TypeScript loader.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/usdt.bpf.h>

#include "usdt_event.h"

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} events SEC(".maps");

/* The cookie of the probe whose last argument is a string ("plain", see usdt_target.c). */
#define COOKIE_PLAIN 1

static __always_inline int record(struct pt_regs *ctx)
{
	struct usdt_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e)
		return 0;
	e->cookie = bpf_usdt_cookie(ctx);
	e->pid = bpf_get_current_pid_tgid() >> 32;
	e->arg_cnt = bpf_usdt_arg_cnt(ctx);
	for (int i = 0; i < USDT_EVENT_ARGS; i++) {
		long v = 0;
		e->arg_rc[i] = bpf_usdt_arg(ctx, i, &v);
		e->args[i] = v;
	}
	e->str[0] = 0;
	if (e->cookie == COOKIE_PLAIN && e->arg_cnt == 5)
		bpf_probe_read_user_str(e->str, sizeof(e->str), (void *)e->args[4]);
	bpf_ringbuf_submit(e, 0);
	return 0;
}

SEC("usdt")
int on_usdt(struct pt_regs *ctx)
{
	return record(ctx);
}

/*
 * The same, attached by its section name (our loader's BpfProgram.attach; libbpf's auto-attach):
 * USDT_TARGET is the target's absolute path, given by the Makefile. Its records have cookie 0.
 */
SEC("usdt/" USDT_TARGET ":bpftime_usdt:consts")
int on_consts_section(struct pt_regs *ctx)
{
	return record(ctx);
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
