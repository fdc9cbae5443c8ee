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
	free(st->charge);
	st->charge = NULL;
	st->sub_start = st->block_start = st->in_sub = st->callback = NULL;
	st->block_len = st->zero_bytes = NULL;
}

/*
 * How much of a subprogram's frame [start, end) must be cleared on entry.
 * Frames are zeroed so a program never sees old stack contents; clearing
 * only the bytes its code can reach is equivalent. Those are the constant
 * offsets of [r10+off], and, for registers that hold r10 plus a constant
 * (`r2 = r10; r2 += -8`, then handed to a helper, which reads upward from
 * it), everything down to the sum of all their downward adjustments. When
 * the frame's address can go anywhere else (stored, used in other
 * arithmetic, passed to code whose offsets this pass does not see, or
 * adjusted where the code has a loop), the whole frame is cleared. A loop alone changes nothing:
 * [r10+off] with constant offsets reaches the same bytes however often it runs (fib_rec, a loop
 * after clang's tail-recursion elimination, had cleared all 512 bytes on every call: 41033aa).
 */
static uint32_t frame_bytes(const struct bpf_insn *insns, uint32_t start, uint32_t end)
{
	uint32_t derived = 1u << 10; /* registers that may hold r10 + a constant */
	for (bool grew = true; grew;) {
		grew = false;
		for (uint32_t pc = start; pc < end; pc++) {
			const struct bpf_insn *in = &insns[pc];
			if (in->code == (CLS_ALU64 | OP_MOV | BPF_SRC_REG) && (derived >> in->src & 1) &&
			    !(derived >> in->dst & 1)) {
				derived |= 1u << in->dst;
				grew = true;
			}
		}
	}
	int64_t lowest = 0, below = 0, via_min_off = 0;
	bool calls_code = false, loops = false;
	for (uint32_t pc = start; pc < end; pc++) {
		const struct bpf_insn *in = &insns[pc];
		uint8_t cls = BPF_CLASS(in->code), op = BPF_OP(in->code);
		bool reg_src = in->code & BPF_SRC_REG;
		bool src_d = derived >> in->src & 1, dst_d = derived >> in->dst & 1;
		if (in->code == LDDW_CODE) {
			calls_code |= in->src == LDDW_PSEUDO_FUNC;
			pc++;
			continue;
		}
		if (cls == CLS_ALU || cls == CLS_ALU64) {
			bool wide = cls == CLS_ALU64;
			if (wide && op == OP_MOV)
				continue; /* copies a pointer (tracked above) or overwrites one */
			if (wide && !reg_src && dst_d && (op == OP_ADD || op == OP_SUB)) {
				int64_t adj = op == OP_ADD ? in->imm : -(int64_t)in->imm;
				if (adj < 0)
					below -= adj;
				continue;
			}
			if ((reg_src && src_d) || (dst_d && op != OP_MOV))
				return BPFTIME_STACK_SIZE;
			continue;
		}
		if (cls == CLS_JMP || cls == CLS_JMP32) {
			if (op == OP_CALL) {
				calls_code |= in->src == 1;
				continue;
			}
			if (op == OP_EXIT)
				continue;
			int64_t off = cls == CLS_JMP32 && op == OP_JA ? in->imm : in->off;
			loops |= off < 0;
			continue;
		}
		if (cls == CLS_LD)
			continue;
		int base = cls == CLS_LDX ? in->src : in->dst;
		if (cls == CLS_STX && src_d)
			return BPFTIME_STACK_SIZE; /* the frame's address stored in memory */
		if (base == 10) {
			if (in->off < lowest)
				lowest = in->off;
		} else if (derived >> base & 1) {
			if (in->off < via_min_off)
				via_min_off = in->off;
		}
	}
	if (derived != 1u << 10) {
		if (calls_code)
			return BPFTIME_STACK_SIZE; /* a subprogram or callback may use the pointer with any offset */
		if (loops)
			return BPFTIME_STACK_SIZE; /* in a loop, the adjustments of r10's copies could repeat */
		if (-below + via_min_off < lowest)
			lowest = -below + via_min_off;
	}
	uint64_t bytes = (uint64_t)((-lowest + 15) & ~15);
	return bytes > BPFTIME_STACK_SIZE ? BPFTIME_STACK_SIZE : (uint32_t)bytes;
}

static void frame_use(struct program_shape *st)
{
	uint32_t start = 0;
	for (uint32_t pc = 1; pc <= st->n; pc++) {
		if (pc == st->n || st->sub_start[pc]) {
			st->zero_bytes[start] = frame_bytes(st->insns, start, pc);
			start = pc;
		}
	}
}

uint32_t program_charge(const struct bpf_insn *insns, uint32_t n, const uint8_t *sub_start,
		       uint32_t pc)
{
	const struct bpf_insn *in = &insns[pc];
	uint8_t cls = BPF_CLASS(in->code), op = BPF_OP(in->code);
	if (cls != CLS_JMP && cls != CLS_JMP32)
		return 0;
	if (in->code == 0x85 && in->src == CALL_LOCAL) {
		uint32_t t = pc + 1 + (uint32_t)in->imm, end = t + 1;
		while (end < n && !sub_start[end])
			end++;
		return end - t;
	}
	if (op == OP_CALL || op == OP_EXIT)
		return 0;
	int64_t t = (int64_t)pc + 1 + (op == OP_JA && cls == CLS_JMP32 ? in->imm : in->off);
	return t <= (int64_t)pc ? (uint32_t)((int64_t)pc - t + 1) : 0;
}

/* Subprogram starts, basic blocks and budget charges. */
int program_shape_analyse(struct program_shape *st, const struct bpf_insn *insns, uint32_t n)
{
	*st = (struct program_shape){.insns = insns, .n = n};
	st->sub_start = calloc(n + 1, 1);
	st->block_start = calloc(n + 1, 1);
	st->block_len = calloc(n + 1, sizeof(uint32_t));
	st->in_sub = calloc(n + 1, 1);
	st->zero_bytes = calloc(n + 1, sizeof(uint32_t));
	st->callback = calloc(n + 1, 1);
	st->charge = calloc(n + 1, sizeof(uint32_t));
	if (!st->sub_start || !st->block_start || !st->block_len || !st->in_sub || !st->zero_bytes ||
	    !st->callback || !st->charge) {
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
	for (uint32_t pc = 0; pc < n; pc++) {
		st->charge[pc] = program_charge(insns, n, st->sub_start, pc);
		st->counted |= st->charge[pc] != 0;
		if (insns[pc].code == LDDW_CODE)
			pc++;
	}
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

