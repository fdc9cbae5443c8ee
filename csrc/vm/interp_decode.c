/* Translates validated eBPF instructions into the interpreter's decoded form. */
#include "interp_ops.h"
#include "jit.h"
#include "program_shape.h"
#include "vm_internal.h"

#include <stdlib.h>

static const uint16_t alu_imm_ops[16][2] = {
	/* [BPF_OP >> 4][is64], register form is op + 1 */
	[OP_ADD >> 4] = {IOP_ALU32_ADD_IMM, IOP_ALU64_ADD_IMM},
	[OP_SUB >> 4] = {IOP_ALU32_SUB_IMM, IOP_ALU64_SUB_IMM},
	[OP_MUL >> 4] = {IOP_ALU32_MUL_IMM, IOP_ALU64_MUL_IMM},
	[OP_DIV >> 4] = {IOP_ALU32_DIV_IMM, IOP_ALU64_DIV_IMM},
	[OP_OR >> 4] = {IOP_ALU32_OR_IMM, IOP_ALU64_OR_IMM},
	[OP_AND >> 4] = {IOP_ALU32_AND_IMM, IOP_ALU64_AND_IMM},
	[OP_LSH >> 4] = {IOP_ALU32_LSH_IMM, IOP_ALU64_LSH_IMM},
	[OP_RSH >> 4] = {IOP_ALU32_RSH_IMM, IOP_ALU64_RSH_IMM},
	[OP_MOD >> 4] = {IOP_ALU32_MOD_IMM, IOP_ALU64_MOD_IMM},
	[OP_XOR >> 4] = {IOP_ALU32_XOR_IMM, IOP_ALU64_XOR_IMM},
	[OP_MOV >> 4] = {IOP_ALU32_MOV_IMM, IOP_ALU64_MOV_IMM},
	[OP_ARSH >> 4] = {IOP_ALU32_ARSH_IMM, IOP_ALU64_ARSH_IMM},
};

static const uint16_t jmp_imm_ops[16][2] = {
	/* [BPF_OP >> 4][is64], register form is op + 1 */
	[OP_JEQ >> 4] = {IOP_JEQ32_IMM, IOP_JEQ_IMM},     [OP_JGT >> 4] = {IOP_JGT32_IMM, IOP_JGT_IMM},
	[OP_JGE >> 4] = {IOP_JGE32_IMM, IOP_JGE_IMM},     [OP_JSET >> 4] = {IOP_JSET32_IMM, IOP_JSET_IMM},
	[OP_JNE >> 4] = {IOP_JNE32_IMM, IOP_JNE_IMM},     [OP_JSGT >> 4] = {IOP_JSGT32_IMM, IOP_JSGT_IMM},
	[OP_JSGE >> 4] = {IOP_JSGE32_IMM, IOP_JSGE_IMM},  [OP_JLT >> 4] = {IOP_JLT32_IMM, IOP_JLT_IMM},
	[OP_JLE >> 4] = {IOP_JLE32_IMM, IOP_JLE_IMM},     [OP_JSLT >> 4] = {IOP_JSLT32_IMM, IOP_JSLT_IMM},
	[OP_JSLE >> 4] = {IOP_JSLE32_IMM, IOP_JSLE_IMM},
};

static uint16_t decode_alu(const struct bpf_insn *in, struct decoded_insn *d)
{
	bool is64 = BPF_CLASS(in->code) == CLS_ALU64, reg = in->code & BPF_SRC_REG;
	uint8_t op = BPF_OP(in->code);
	d->k = is64 ? (uint64_t)(int64_t)in->imm : (uint64_t)(uint32_t)in->imm;
	if (op == OP_NEG)
		return is64 ? IOP_NEG64 : IOP_NEG32;
	if (op == OP_END) {
		bool to_le = !is64 && !reg;
		switch (in->imm) {
		case 16: return to_le ? IOP_ZX16 : IOP_BSWAP16;
		case 32: return to_le ? IOP_ZX32 : IOP_BSWAP32;
		default: return to_le ? IOP_NOP : IOP_BSWAP64;
		}
	}
	if (op == OP_MOV && in->off) {
		if (is64)
			return in->off == 8 ? IOP_MOVSX64_8 : in->off == 16 ? IOP_MOVSX64_16 : IOP_MOVSX64_32;
		return in->off == 8 ? IOP_MOVSX32_8 : IOP_MOVSX32_16;
	}
	uint16_t base = alu_imm_ops[op >> 4][is64];
	if ((op == OP_DIV || op == OP_MOD) && in->off == 1) /* signed forms follow in the X-macro */
		base = op == OP_DIV ? (is64 ? IOP_ALU64_SDIV_IMM : IOP_ALU32_SDIV_IMM)
				    : (is64 ? IOP_ALU64_SMOD_IMM : IOP_ALU32_SMOD_IMM);
	return base + (reg ? 1 : 0);
}

static uint16_t decode_mem(const struct bpf_insn *in, struct decoded_insn *d)
{
	uint8_t cls = BPF_CLASS(in->code), size = BPF_SIZE(in->code);
	static const uint16_t ldx[4] = {IOP_LDXW, IOP_LDXH, IOP_LDXB, IOP_LDXDW};
	static const uint16_t ldxs[3] = {IOP_LDXSW, IOP_LDXSH, IOP_LDXSB};
	static const uint16_t st[4] = {IOP_STW, IOP_STH, IOP_STB, IOP_STDW};
	static const uint16_t stx[4] = {IOP_STXW, IOP_STXH, IOP_STXB, IOP_STXDW};
	d->aux = in->off;
	d->k = (uint64_t)(int64_t)in->imm;
	if (cls == CLS_LDX)
		return BPF_MODE(in->code) == MODE_MEMSX ? ldxs[size >> 3] : ldx[size >> 3];
	if (cls == CLS_ST)
		return st[size >> 3];
	if (BPF_MODE(in->code) != MODE_ATOMIC)
		return stx[size >> 3];
	bool is64 = size == SZ_DW;
	switch (in->imm) {
#define ATOMIC_CASE(imm, name) \
	case imm: return is64 ? IOP_ATOMIC64_##name : IOP_ATOMIC32_##name;
	ATOMIC_CASE(ATOMIC_ADD, ADD)
	ATOMIC_CASE(ATOMIC_OR, OR)
	ATOMIC_CASE(ATOMIC_AND, AND)
	ATOMIC_CASE(ATOMIC_XOR, XOR)
	ATOMIC_CASE(ATOMIC_ADD | ATOMIC_FETCH, FADD)
	ATOMIC_CASE(ATOMIC_OR | ATOMIC_FETCH, FOR)
	ATOMIC_CASE(ATOMIC_AND | ATOMIC_FETCH, FAND)
	ATOMIC_CASE(ATOMIC_XOR | ATOMIC_FETCH, FXOR)
	ATOMIC_CASE(ATOMIC_XCHG, XCHG)
#undef ATOMIC_CASE
	default: return is64 ? IOP_ATOMIC64_CMPXCHG : IOP_ATOMIC32_CMPXCHG;
	}
}

static uint16_t decode_jmp(const struct bpftime_vm *vm, const struct bpf_insn *in, uint32_t pc,
			   struct decoded_insn *d)
{
	uint8_t cls = BPF_CLASS(in->code), op = BPF_OP(in->code);
	bool is64 = cls == CLS_JMP, reg = in->code & BPF_SRC_REG;
	d->k = is64 ? (uint64_t)(int64_t)in->imm : (uint64_t)(uint32_t)in->imm;
	d->aux = (int32_t)(pc + 1 + in->off);
	if (op == OP_JA) {
		if (!is64)
			d->aux = (int32_t)(pc + 1 + in->imm);
		return IOP_JA;
	}
	if (op == OP_EXIT)
		return IOP_EXIT;
	if (op == OP_CALL) {
		if (reg)
			return IOP_CALLX;
		if (in->src == CALL_LOCAL) {
			d->aux = (int32_t)(pc + 1 + in->imm);
			return IOP_CALL_LOCAL;
		}
		d->k = (uint64_t)(uintptr_t)vm->helpers[in->imm].fn;
		if (in->imm == vm->unwind_id)
			return IOP_CALL_UNWIND;
		return in->imm == TAIL_CALL_HELPER ? IOP_CALL_TAIL : IOP_CALL_HELPER;
	}
	return jmp_imm_ops[op >> 4][is64] + (reg ? 1 : 0);
}

int interp_prepare(struct bpftime_vm *vm)
{
	const struct bpf_insn *insns = vm->insns;
	struct decoded_insn *code = calloc(vm->ninsns, sizeof(*code));
	struct program_shape shape;
	if (!code || program_shape_analyse(&shape, insns, vm->ninsns) < 0) {
		free(code);
		set_error("out of memory decoding %u instructions", vm->ninsns);
		return -1;
	}
	for (uint32_t pc = 0; pc < vm->ninsns; pc++) {
		const struct bpf_insn *in = &insns[pc];
		struct decoded_insn *d = &code[pc];
		uint8_t cls = BPF_CLASS(in->code);
		d->dst = in->dst;
		d->src = in->src;
		if (in->code == LDDW_CODE) {
			uint64_t v = (uint64_t)(uint32_t)in->imm | ((uint64_t)(uint32_t)in[1].imm << 32);
			if (in->src == LDDW_PSEUDO_FUNC) {
				/* A token for the helpers that call back: the subprogram's pc + 1. */
				v = (uint64_t)(pc + 1 + (uint32_t)in->imm) + 1;
			} else if (in->src) {
				int err = vm->resolver(vm->resolver_ctx, in->src, (uint32_t)in->imm,
						       (uint32_t)in[1].imm, &v);
				if (err) {
					set_error("pc %u: lddw pseudo source %u imm %d refused by the "
						     "map resolver (errno %d)",
						     pc, in->src, in->imm, -err);
					free(code);
					program_shape_free(&shape);
					return -1;
				}
			}
			d->op = IOP_LDDW;
			d->k = v;
			code[++pc].op = IOP_LDDW_TAIL;
		} else if (cls == CLS_ALU || cls == CLS_ALU64) {
			d->op = decode_alu(in, d);
		} else if (cls == CLS_JMP || cls == CLS_JMP32) {
			d->op = decode_jmp(vm, in, pc, d);
			if (d->op == IOP_CALL_LOCAL)
				d->k = shape.charge[pc]; /* the callee's length, for the budget */
		} else {
			d->op = decode_mem(in, d);
		}
	}
	program_shape_free(&shape);
	vm->code = code;
	return 0;
}
