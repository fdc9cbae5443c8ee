// SPDX-License-Identifier: MIT
/*
 * A live fix for examples/hotpatch/server.c's lookup(), which reads
 * t->values[index] without checking index: this replace program runs instead
 * of lookup (its return value is lookup's) and does what lookup should have,
 * refusing an index outside the table. Attach with the TypeScript loader
 * (examples/hotpatch/hotpatch.ts): `uprobe.replace` is this runtime's section.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "hotpatch.h"

/* int lookup(const struct price_table *t, long index, long *out): 0, or -1 for no such entry. */
SEC("uprobe.replace")
int BPF_KPROBE(checked_lookup, const struct price_table *t, long index, long *out)
{
	long len, value;
	if (bpf_probe_read_user(&len, sizeof(len), &t->len) || len > PRICES)
		return -1;
	if (index < 0 || index >= len)
		return -1;
	if (bpf_probe_read_user(&value, sizeof(value), &t->values[index]))
		return -1;
	return bpf_probe_write_user(out, &value, sizeof(value)) ? -1 : 0;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
