/* Structure of a validated program that the compilers share: subprograms, basic blocks, frame use. */
#include "program_shape.h"

#include <stdlib.h>

void program_shape_free(struct program_shape *st)
{
	free(st->sub_start);
	free(st->block_start);
	free(st->block_len);
	free(st->in_sub);
	free(st->zero_bytes);
	free(st->callback);
	st->sub_start = st->block_start = st->in_sub = st->callback = NULL;
	st->block_len = st->zero_bytes = NULL;
}

/*
 * How much of each subprogram's frame must be cleared on entry. Frames are
 * zeroed so a program never sees old stack contents; when r10 never leaves
 * the subprogram as a value (so its frame is reached only as [r10+off] with
 * constant offsets), clearing the bytes those offsets reach is equivalent.
 */
static void frame_use(struct program_shape *st)
{
	uint32_t start = 0;
	int32_t lowest = 0;
	bool escapes = false;
	for (uint32_t pc = 0; pc <= st->n; pc++) {
		if (pc == st->n || (st->sub_start[pc] && pc != 0)) {
			uint32_t bytes = escapes ? BPFTIME_STACK_SIZE : (uint32_t)((-lowest + 15) & ~15);
			st->zero_bytes[start] = bytes > BPFTIME_STACK_SIZE ? BPFTIME_STACK_SIZE : bytes;
			if (pc == st->n)
				break;
			start = pc;
			lowest = 0;
			escapes = false;
		}
		const struct bpf_insn *in = &st->insns[pc];
		uint8_t cls = BPF_CLASS(in->code);
		bool reg_src = in->code & BPF_SRC_REG;
		if (in->code == LDDW_CODE) {
			pc++;
			continue;
		}
		if (cls == CLS_ALU || cls == CLS_ALU64)
			escapes |= reg_src && in->src == 10;
		else if (cls == CLS_JMP || cls == CLS_JMP32)
			escapes |= in->dst == 10 || (reg_src && in->src == 10);
		else {
			int base = cls == CLS_LDX ? in->src : in->dst;
			escapes |= cls == CLS_STX && in->src == 10;
			if (base == 10 && in->off < lowest)
				lowest = in->off;
		}
	}
}

/* Subprogram starts and basic blocks (for budget counting). */
int program_shape_analyse(struct program_shape *st, const struct bpf_insn *insns, uint32_t n)
{
	*st = (struct program_shape){.insns = insns, .n = n};
	st->sub_start = calloc(n + 1, 1);
	st->block_start = calloc(n + 1, 1);
	st->block_len = calloc(n + 1, sizeof(uint32_t));
	st->in_sub = calloc(n + 1, 1);
	st->zero_bytes = calloc(n + 1, sizeof(uint32_t));
	st->callback = calloc(n + 1, 1);
	if (!st->sub_start || !st->block_start || !st->block_len || !st->in_sub || !st->zero_bytes ||
	    !st->callback) {
		program_shape_free(st);
		return -1;
	}
	st->sub_start[0] = st->block_start[0] = 1;
	for (uint32_t pc = 0; pc < n; pc++) {
		const struct bpf_insn *in = &st->insns[pc];
		uint8_t cls = BPF_CLASS(in->code);
		if (in->code == LDDW_CODE) {
			if (in->src == LDDW_PSEUDO_FUNC) {
				uint32_t t = pc + 1 + (uint32_t)in->imm;
				st->sub_start[t] = st->block_start[t] = st->callback[t] = 1;
			}
			pc++;
			continue;
		}
		if (cls != CLS_JMP && cls != CLS_JMP32)
			continue;
		st->block_start[pc + 1] = 1;
		uint8_t op = BPF_OP(in->code);
		if (in->code == 0x85 && in->src == CALL_LOCAL) {
			st->sub_start[pc + 1 + in->imm] = st->block_start[pc + 1 + in->imm] = 1;
		} else if (op == OP_JA) {
			st->block_start[pc + 1 + (cls == CLS_JMP ? in->off : in->imm)] = 1;
		} else if (op != OP_CALL && op != OP_EXIT) {
			st->block_start[pc + 1 + in->off] = 1;
		}
	}
	for (uint32_t pc = 1; pc < n; pc++)
		st->in_sub[pc] = st->sub_start[pc] || st->in_sub[pc - 1];
	frame_use(st);
	uint32_t start = 0;
	for (uint32_t pc = 0; pc < n; pc++) {
		if (st->block_start[pc])
			start = pc;
		st->block_len[start]++;
		if (st->insns[pc].code == LDDW_CODE)
			pc++;
	}
	return 0;
}

