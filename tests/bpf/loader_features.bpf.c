// SPDX-License-Identifier: MIT
/*
 * What an object loader must get right besides maps: global data in
 * .bss/.data/.rodata, subprograms in .text, callbacks, legacy map
 * definitions, maps of maps and program arrays with initial values.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

/* The pre-BTF `struct bpf_map_def` layout, in the legacy "maps" section. */
struct legacy_map_def {
	unsigned int type, key_size, value_size, max_entries, map_flags;
};
struct legacy_map_def SEC("maps") legacy = {
	.type = BPF_MAP_TYPE_ARRAY,
	.key_size = 4,
	.value_size = 8,
	.max_entries = 2,
};

struct inner {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} inner_a SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 2);
	__type(key, __u32);
	__array(values, struct inner);
} outer SEC(".maps") = {
	.values = {[1] = &inner_a},
};

int runs;                    /* .bss */
__u64 data_base = 40;        /* .data */
const volatile __u64 ro_add = 7; /* .rodata, settable before load */

static __noinline __u64 twice(__u64 x)
{
	return x + x;
}

static long add_index(__u32 index, void *ctx)
{
	*(__u64 *)ctx += index;
	return 0;
}

SEC("uprobe")
int features(struct pt_regs *ctx)
{
	__u32 one = 1, zero = 0;
	__u64 sum = 0;
	runs++;
	bpf_loop(4, add_index, &sum, 0); /* 0 + 1 + 2 + 3 */
	void *m = bpf_map_lookup_elem(&outer, &one);
	if (!m)
		return -1;
	__u64 *v = bpf_map_lookup_elem(m, &zero);
	__u64 *l = bpf_map_lookup_elem(&legacy, &one);
	if (!v || !l)
		return -2;
	*v += 1;
	*l += 2;
	return twice(data_base) + ro_add + sum; /* 80 + ro_add + 6 */
}

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__array(values, int(void *));
} jumps SEC(".maps") = {
	.values = {[0] = (void *)&features},
};

SEC("uprobe")
int tail(struct pt_regs *ctx)
{
	bpf_tail_call(ctx, &jumps, 0);
	return -3;
}

char LICENSE[] SEC("license") = "GPL";
