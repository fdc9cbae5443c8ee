// SPDX-License-Identifier: MIT
/*
 * CO-RE relocations of every kind the loader resolves, against the running
 * kernel's BTF: the test compares our relocated instructions with libbpf's.
 */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

/* A local view of task_struct: other offsets than the kernel's, one field it lacks, bitfields. */
struct task_struct___mine {
	int tgid;
	int pid;
	void *stack;
	unsigned int sched_reset_on_fork : 1;
	unsigned int sched_contributes_to_load : 1;
	long no_such_field___;
} __attribute__((preserve_access_index));

struct core_sample {
	__u64 v[12];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct core_sample);
} out SEC(".maps");

SEC("kprobe/do_nanosleep")
int core_fields(struct pt_regs *ctx)
{
	/* Any pointer will do: only the relocated offsets are compared. */
	struct task_struct___mine *t = (void *)PT_REGS_PARM2(ctx);
	__u32 key = 0;
	struct core_sample *s = bpf_map_lookup_elem(&out, &key);
	if (!s)
		return 0;
	s->v[0] = __builtin_preserve_field_info(t->pid, BPF_FIELD_BYTE_OFFSET);
	s->v[1] = __builtin_preserve_field_info(t->tgid, BPF_FIELD_BYTE_SIZE);
	s->v[2] = bpf_core_field_exists(t->stack);
	s->v[3] = bpf_core_field_exists(t->no_such_field___);
	s->v[4] = bpf_core_type_exists(struct task_struct);
	s->v[5] = bpf_core_type_size(struct task_struct);
	s->v[6] = bpf_core_enum_value(enum bpf_map_type, BPF_MAP_TYPE_RINGBUF);
	s->v[7] = bpf_core_enum_value_exists(enum bpf_map_type, BPF_MAP_TYPE_RINGBUF);
	s->v[8] = BPF_CORE_READ(t, pid);
	s->v[9] = BPF_CORE_READ_BITFIELD_PROBED(t, sched_contributes_to_load);
	s->v[10] = __builtin_preserve_field_info(t->pid, BPF_FIELD_SIGNED);
	s->v[11] = PT_REGS_PARM1(ctx);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
