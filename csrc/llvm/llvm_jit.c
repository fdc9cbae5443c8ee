/*
 * The LLVM tier: eBPF -> LLVM IR -> -O3 -> ORC LLJIT. Built into its own
 * library (libbpftime-llvm.so) so only VMs that ask for it map LLVM.
 *
 * Each subprogram becomes an LLVM function; registers are allocas that
 * mem2reg turns into SSA values. The generated code follows the x86 JIT's
 * contract (struct jit_ctx, fault codes), so one runner serves both.
 * Division, shifts and byte swaps are written out so no input is UB.
 * Bounds checks are IR LLVM can reason about: accesses pointer_facts.c
 * proves go unchecked; the others compare against the context's limits
 * (SSA values, so loop invariant), then this function's frame, and only
 * then call the runtime on a cold path. IRCE then takes the checks out of
 * the main part of loops over the context. Faults are reported exactly as
 * the interpreter and the x86 JIT report them (tests/llvm_bounds_test.ts).
 * One difference from the interpreter, allowed by kernel semantics:
 * r1-r5 after a bpf-to-bpf call keep the caller's values (the kernel
 * verifier treats them as clobbered and unreadable).
 */
#include <llvm-c/Analysis.h>
#include <llvm-c/Core.h>
#include <llvm-c/Error.h>
#include <llvm-c/LLJIT.h>
#include <llvm-c/Orc.h>
#include <llvm-c/Target.h>
#include <llvm-c/TargetMachine.h>
#include <llvm-c/Transforms/PassBuilder.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../vm/llvm_tier.h" /* the VM's tier interface: all this plugin sees of csrc/vm/ */

#define EXPORT __attribute__((visibility("default")))

/* A subprogram's parameters: r0-r9, the caller's frame pointer, the run context, the call
 * depth, the context block's start and length (0 when there is none), the budget left (0
 * when unbudgeted). It returns {r0, the budget left}: depth and budget stay in registers
 * across bpf-to-bpf calls. */
enum { SUB_FP = 10, SUB_CTX, SUB_DEPTH, SUB_MEM_LO, SUB_MEM_LEN, SUB_BUDGET, SUB_PARAMS };

struct lower {
	LLVMContextRef C;
	LLVMModuleRef M;
	LLVMBuilderRef B;
	LLVMTypeRef i1, i8, i16, i32, i64, i8p, helper_ty, sub_ty, sub_ret_ty, main_ty,
	    check_ty;
	const struct llvm_request *req;
	struct program_shape shape;
	LLVMValueRef *sub_fn; /* per pc: the function of the subprogram starting there */
	bool has_callbacks; /* some subprogram is a callback (program_shape.h) */
	bool subs_use_memory; /* some subprogram touches memory, its frame or a helper */
	unsigned prof_kind;
	LLVMValueRef likely_weights; /* !prof branch_weights: the true successor is hot */
	LLVMValueRef even_weights;   /* !prof branch_weights: either way */
	LLVMAttributeRef cold;
	/* The function being lowered. mem_lo and the limits are SSA values (parameters or loaded
	 * once at entry) so LLVM sees them as loop invariant; budget is a local slot (NULL when
	 * unbudgeted) written back to the context only around calls and returns, so loops keep
	 * it in a register. */
	bool is_main;
	LLVMValueRef fn, regs[10], fp, ctxp, depth, budget, mem_lo, mem_len, mem_limit[4],
	    store_limit[4];
	LLVMBasicBlockRef *bb; /* per pc: the block starting there */
};

static LLVMValueRef c64(struct lower *L, uint64_t v)
{
	return LLVMConstInt(L->i64, v, 0);
}
static LLVMValueRef c32(struct lower *L, uint32_t v)
{
	return LLVMConstInt(L->i32, v, 0);
}

static LLVMBasicBlockRef new_block(struct lower *L)
{
	return LLVMAppendBasicBlockInContext(L->C, L->fn, "");
}

/* A conditional branch whose `hot` side (true or false) is almost always taken. */
static void branch_expect(struct lower *L, LLVMValueRef cond, LLVMBasicBlockRef t,
			  LLVMBasicBlockRef f, bool true_is_hot)
{
	LLVMValueRef br = LLVMBuildCondBr(L->B, true_is_hot ? cond : LLVMBuildNot(L->B, cond, ""),
					  true_is_hot ? t : f, true_is_hot ? f : t);
	LLVMSetMetadata(br, L->prof_kind, L->likely_weights);
}

/* Pointer to a field of struct jit_ctx. */
static LLVMValueRef ctx_field(struct lower *L, uint32_t offset, LLVMTypeRef ty)
{
	LLVMValueRef idx = c64(L, offset);
	LLVMValueRef p = LLVMBuildGEP2(L->B, L->i8, L->ctxp, &idx, 1, "");
	return LLVMBuildBitCast(L->B, p, LLVMPointerType(ty, 0), "");
}

static LLVMValueRef get_reg(struct lower *L, int r)
{
	if (r == 10)
		return LLVMBuildPtrToInt(L->B, L->fp, L->i64, "");
	return LLVMBuildLoad2(L->B, L->i64, L->regs[r], "");
}
static void set_reg(struct lower *L, int r, LLVMValueRef v)
{
	LLVMBuildStore(L->B, v, L->regs[r]);
}

/* The budget slot to the context (before a call or a return) and back (after a call). */
static void budget_flush(struct lower *L)
{
	if (L->budget)
		LLVMBuildStore(L->B, LLVMBuildLoad2(L->B, L->i64, L->budget, ""),
			       ctx_field(L, JIT_CTX_BUDGET, L->i64));
}
static void budget_reload(struct lower *L)
{
	if (L->budget)
		LLVMBuildStore(L->B,
			       LLVMBuildLoad2(L->B, L->i64, ctx_field(L, JIT_CTX_BUDGET, L->i64), ""),
			       L->budget);
}

/* Return r0: the entry writes the budget back to the context, a subprogram hands it back. */
static void emit_ret(struct lower *L, LLVMValueRef r0)
{
	if (L->is_main) {
		budget_flush(L);
		LLVMBuildRet(L->B, r0);
		return;
	}
	LLVMValueRef vals[2] = {r0, L->budget ? LLVMBuildLoad2(L->B, L->i64, L->budget, "")
					       : c64(L, 0)};
	LLVMBuildAggregateRet(L->B, vals, 2);
}

/* Record a fault in the context and return from the function; the caller re-positions. */
static void emit_fault(struct lower *L, uint32_t code, LLVMValueRef addr)
{
	budget_flush(L);
	LLVMBuildStore(L->B, addr, ctx_field(L, JIT_CTX_FAULT_ADDR, L->i64));
	LLVMBuildStore(L->B, c64(L, code), ctx_field(L, JIT_CTX_FAULT_CODE, L->i64));
	LLVMBuildStore(L->B, c64(L, 1), ctx_field(L, JIT_CTX_FAULTED, L->i64));
	emit_ret(L, c64(L, 0));
}

/* Branch on `bad` to a fault; continues in a new block. */
static void fault_if(struct lower *L, LLVMValueRef bad, uint32_t code, LLVMValueRef addr)
{
	LLVMBasicBlockRef fail = new_block(L), ok = new_block(L);
	branch_expect(L, bad, fail, ok, false);
	LLVMPositionBuilderAtEnd(L->B, fail);
	emit_fault(L, code, addr);
	LLVMPositionBuilderAtEnd(L->B, ok);
}

/* A checked pointer to `size` bytes at register `base` + off, typed as `ty *`. */
static LLVMValueRef mem_ptr(struct lower *L, uint32_t pc, int base, int16_t off, uint32_t size,
			    bool store, LLVMTypeRef ty)
{
	LLVMTypeRef pty = LLVMPointerType(ty, 0);
	if (base == 10 && off >= -BPFTIME_STACK_SIZE && off + (int32_t)size <= 0) {
		LLVMValueRef idx = LLVMConstInt(L->i64, (uint64_t)(int64_t)off, 1);
		LLVMValueRef p = LLVMBuildGEP2(L->B, L->i8, L->fp, &idx, 1, "");
		return LLVMBuildBitCast(L->B, p, pty, "");
	}
	int lg = size_log2(size);
	uint32_t code = fault_code(pc, store ? JF_STORE : JF_LOAD, (uint32_t)lg);
	LLVMValueRef addr =
	    LLVMBuildAdd(L->B, get_reg(L, base), c64(L, (uint64_t)(int64_t)off), "");
	if (L->req->proven && L->req->proven[pc]) /* in the frame or one map value (pointer_facts.h) */
		return LLVMBuildIntToPtr(L->B, addr, pty, "");
	/* The context, then this function's frame, inline; anything else (caller frames,
	 * registered regions) asks the runtime, off the hot path. */
	LLVMValueRef rel = LLVMBuildSub(L->B, addr, L->mem_lo, "");
	LLVMValueRef in_ctx =
	    LLVMBuildICmp(L->B, LLVMIntULT, rel, store ? L->store_limit[lg] : L->mem_limit[lg], "");
	LLVMBasicBlockRef access = new_block(L), not_ctx = new_block(L), slow = new_block(L);
	branch_expect(L, in_ctx, access, not_ctx, true);
	LLVMPositionBuilderAtEnd(L->B, not_ctx);
	LLVMValueRef frame_lo = LLVMBuildSub(L->B, get_reg(L, 10), c64(L, BPFTIME_STACK_SIZE), "");
	/* (Even weights: IRCE takes only likely checks for range checks of a loop, and an access
	 * is in the context or in the frame, not both: splitting the loop on both would leave it
	 * no iterations to run unchecked.) */
	LLVMValueRef in_frame =
	    LLVMBuildICmp(L->B, LLVMIntULT, LLVMBuildSub(L->B, addr, frame_lo, ""),
			  c64(L, BPFTIME_STACK_SIZE - size + 1), "");
	LLVMValueRef br = LLVMBuildCondBr(L->B, in_frame, access, slow);
	LLVMSetMetadata(br, L->prof_kind, L->even_weights);
	LLVMPositionBuilderAtEnd(L->B, slow);
	LLVMValueRef check = LLVMBuildIntToPtr(L->B, c64(L, L->req->slow_check),
					       LLVMPointerType(L->check_ty, 0), "");
	LLVMValueRef args[4] = {L->ctxp, addr, c64(L, code), get_reg(L, 10)};
	LLVMValueRef ok = LLVMBuildCall2(L->B, L->check_ty, check, args, 4, "");
	LLVMAddCallSiteAttribute(ok, LLVMAttributeFunctionIndex, L->cold);
	LLVMBasicBlockRef fail = new_block(L);
	branch_expect(L, LLVMBuildICmp(L->B, LLVMIntNE, ok, c32(L, 0), ""), access, fail, true);
	LLVMPositionBuilderAtEnd(L->B, fail);
	emit_fault(L, code, addr);
	LLVMPositionBuilderAtEnd(L->B, access);
	return LLVMBuildIntToPtr(L->B, addr, pty, "");
}

static LLVMTypeRef int_type(struct lower *L, uint32_t size)
{
	return size == 1 ? L->i8 : size == 2 ? L->i16 : size == 4 ? L->i32 : L->i64;
}

static uint32_t access_size(uint8_t code)
{
	return BPF_SIZE(code) == SZ_B ? 1 : BPF_SIZE(code) == SZ_H ? 2 : BPF_SIZE(code) == SZ_W ? 4 : 8;
}

static void lower_load(struct lower *L, uint32_t pc, const struct bpf_insn *in)
{
	uint32_t size = access_size(in->code);
	LLVMTypeRef ty = int_type(L, size);
	LLVMValueRef p = mem_ptr(L, pc, in->src, in->off, size, false, ty);
	LLVMValueRef v = LLVMBuildLoad2(L->B, ty, p, "");
	LLVMSetAlignment(v, 1);
	bool sx = BPF_MODE(in->code) == MODE_MEMSX;
	set_reg(L, in->dst, size == 8 ? v : sx ? LLVMBuildSExt(L->B, v, L->i64, "")
						: LLVMBuildZExt(L->B, v, L->i64, ""));
}

static void lower_store(struct lower *L, uint32_t pc, const struct bpf_insn *in)
{
	uint32_t size = access_size(in->code);
	LLVMTypeRef ty = int_type(L, size);
	LLVMValueRef v = BPF_CLASS(in->code) == CLS_ST ? c64(L, (uint64_t)(int64_t)in->imm)
						       : get_reg(L, in->src);
	LLVMValueRef p = mem_ptr(L, pc, in->dst, in->off, size, true, ty);
	LLVMValueRef st = LLVMBuildStore(L->B, LLVMBuildTrunc(L->B, v, ty, ""), p);
	LLVMSetAlignment(st, 1);
}

static void lower_atomic(struct lower *L, uint32_t pc, const struct bpf_insn *in)
{
	bool w = BPF_SIZE(in->code) == SZ_DW;
	uint32_t size = w ? 8 : 4;
	LLVMTypeRef ty = w ? L->i64 : L->i32;
	LLVMValueRef p = mem_ptr(L, pc, in->dst, in->off, size, true, ty);
	LLVMValueRef addr = LLVMBuildPtrToInt(L->B, p, L->i64, "");
	LLVMValueRef misaligned = LLVMBuildICmp(
	    L->B, LLVMIntNE, LLVMBuildAnd(L->B, addr, c64(L, size - 1), ""), c64(L, 0), "");
	fault_if(L, misaligned, fault_code(pc, JF_MISALIGNED, (uint32_t)size_log2(size)), addr);
	LLVMValueRef src = LLVMBuildTrunc(L->B, get_reg(L, in->src), ty, "");
	if (in->imm == ATOMIC_CMPXCHG) {
		LLVMValueRef expected = LLVMBuildTrunc(L->B, get_reg(L, 0), ty, "");
		LLVMValueRef pair = LLVMBuildAtomicCmpXchg(L->B, p, expected, src,
							   LLVMAtomicOrderingSequentiallyConsistent,
							   LLVMAtomicOrderingSequentiallyConsistent, 0);
		LLVMValueRef old = LLVMBuildExtractValue(L->B, pair, 0, "");
		set_reg(L, 0, w ? old : LLVMBuildZExt(L->B, old, L->i64, ""));
		return;
	}
	LLVMAtomicRMWBinOp op;
	switch (in->imm & ~ATOMIC_FETCH) {
	case ATOMIC_ADD: op = LLVMAtomicRMWBinOpAdd; break;
	case ATOMIC_OR: op = LLVMAtomicRMWBinOpOr; break;
	case ATOMIC_AND: op = LLVMAtomicRMWBinOpAnd; break;
	case ATOMIC_XOR: op = LLVMAtomicRMWBinOpXor; break;
	default: op = LLVMAtomicRMWBinOpXchg; break;
	}
	LLVMValueRef old =
	    LLVMBuildAtomicRMW(L->B, op, p, src, LLVMAtomicOrderingSequentiallyConsistent, 0);
	if (in->imm & ATOMIC_FETCH)
		set_reg(L, in->src, w ? old : LLVMBuildZExt(L->B, old, L->i64, ""));
}

/* RFC 9669 division: x/0 = 0, x%0 = x, signed x/-1 = -x, x%-1 = 0, never UB. */
static LLVMValueRef lower_divmod(struct lower *L, LLVMValueRef a, LLVMValueRef s, LLVMTypeRef ty,
				 bool is_mod, bool is_signed)
{
	LLVMValueRef zero = LLVMConstInt(ty, 0, 0), one = LLVMConstInt(ty, 1, 0);
	LLVMValueRef neg1 = LLVMConstAllOnes(ty);
	LLVMValueRef is0 = LLVMBuildICmp(L->B, LLVMIntEQ, s, zero, "");
	if (!is_signed) {
		LLVMValueRef safe = LLVMBuildSelect(L->B, is0, one, s, "");
		LLVMValueRef r = is_mod ? LLVMBuildURem(L->B, a, safe, "") : LLVMBuildUDiv(L->B, a, safe, "");
		return LLVMBuildSelect(L->B, is0, is_mod ? a : zero, r, "");
	}
	LLVMValueRef isneg1 = LLVMBuildICmp(L->B, LLVMIntEQ, s, neg1, "");
	LLVMValueRef safe = LLVMBuildSelect(L->B, LLVMBuildOr(L->B, is0, isneg1, ""), one, s, "");
	LLVMValueRef r = is_mod ? LLVMBuildSRem(L->B, a, safe, "") : LLVMBuildSDiv(L->B, a, safe, "");
	LLVMValueRef by_neg1 = is_mod ? zero : LLVMBuildSub(L->B, zero, a, "");
	return LLVMBuildSelect(L->B, is0, is_mod ? a : zero,
			       LLVMBuildSelect(L->B, isneg1, by_neg1, r, ""), "");
}

static LLVMValueRef bswap(struct lower *L, LLVMValueRef v, LLVMTypeRef ty)
{
	const char *name = ty == L->i16 ? "llvm.bswap.i16" : ty == L->i32 ? "llvm.bswap.i32"
									 : "llvm.bswap.i64";
	LLVMTypeRef fty = LLVMFunctionType(ty, &ty, 1, 0);
	LLVMValueRef f = LLVMGetNamedFunction(L->M, name);
	if (!f)
		f = LLVMAddFunction(L->M, name, fty);
	return LLVMBuildCall2(L->B, fty, f, &v, 1, "");
}

static void lower_alu(struct lower *L, const struct bpf_insn *in)
{
	bool w = BPF_CLASS(in->code) == CLS_ALU64, reg = in->code & BPF_SRC_REG;
	uint8_t op = BPF_OP(in->code);
	LLVMTypeRef ty = w ? L->i64 : L->i32;
	LLVMValueRef a = get_reg(L, in->dst);
	if (op == OP_END) {
		bool to_le = !w && !reg;
		LLVMValueRef r;
		if (to_le) {
			r = in->imm == 64 ? a : LLVMBuildAnd(L->B, a, c64(L, in->imm == 16 ? 0xffff : 0xffffffff), "");
		} else {
			LLVMTypeRef t = in->imm == 16 ? L->i16 : in->imm == 32 ? L->i32 : L->i64;
			r = bswap(L, LLVMBuildTrunc(L->B, a, t, ""), t);
			if (t != L->i64)
				r = LLVMBuildZExt(L->B, r, L->i64, "");
		}
		set_reg(L, in->dst, r);
		return;
	}
	LLVMValueRef s = reg ? get_reg(L, in->src) : c64(L, (uint64_t)(int64_t)in->imm);
	if (op == OP_MOV && in->off) { /* movsx */
		LLVMTypeRef from = in->off == 8 ? L->i8 : in->off == 16 ? L->i16 : L->i32;
		LLVMValueRef v = LLVMBuildSExt(L->B, LLVMBuildTrunc(L->B, s, from, ""), ty, "");
		set_reg(L, in->dst, w ? v : LLVMBuildZExt(L->B, v, L->i64, ""));
		return;
	}
	if (!w) {
		a = LLVMBuildTrunc(L->B, a, L->i32, "");
		s = LLVMBuildTrunc(L->B, s, L->i32, "");
	}
	LLVMValueRef mask = LLVMConstInt(ty, w ? 63 : 31, 0), r;
	switch (op) {
	case OP_ADD: r = LLVMBuildAdd(L->B, a, s, ""); break;
	case OP_SUB: r = LLVMBuildSub(L->B, a, s, ""); break;
	case OP_MUL: r = LLVMBuildMul(L->B, a, s, ""); break;
	case OP_OR: r = LLVMBuildOr(L->B, a, s, ""); break;
	case OP_AND: r = LLVMBuildAnd(L->B, a, s, ""); break;
	case OP_XOR: r = LLVMBuildXor(L->B, a, s, ""); break;
	case OP_MOV: r = s; break;
	case OP_NEG: r = LLVMBuildSub(L->B, LLVMConstInt(ty, 0, 0), a, ""); break;
	case OP_LSH: r = LLVMBuildShl(L->B, a, LLVMBuildAnd(L->B, s, mask, ""), ""); break;
	case OP_RSH: r = LLVMBuildLShr(L->B, a, LLVMBuildAnd(L->B, s, mask, ""), ""); break;
	case OP_ARSH: r = LLVMBuildAShr(L->B, a, LLVMBuildAnd(L->B, s, mask, ""), ""); break;
	default: r = lower_divmod(L, a, s, ty, op == OP_MOD, in->off == 1); break;
	}
	set_reg(L, in->dst, w ? r : LLVMBuildZExt(L->B, r, L->i64, ""));
}

static void lower_cond_jump(struct lower *L, uint32_t pc, const struct bpf_insn *in)
{
	bool w = BPF_CLASS(in->code) == CLS_JMP, reg = in->code & BPF_SRC_REG;
	uint8_t op = BPF_OP(in->code);
	LLVMValueRef a = get_reg(L, in->dst);
	LLVMValueRef s = reg ? get_reg(L, in->src) : c64(L, (uint64_t)(int64_t)in->imm);
	if (!w) {
		a = LLVMBuildTrunc(L->B, a, L->i32, "");
		s = LLVMBuildTrunc(L->B, s, L->i32, "");
	}
	LLVMValueRef cond;
	if (op == OP_JSET) {
		cond = LLVMBuildICmp(L->B, LLVMIntNE, LLVMBuildAnd(L->B, a, s, ""),
				     LLVMConstInt(w ? L->i64 : L->i32, 0, 0), "");
	} else {
		LLVMIntPredicate p;
		switch (op) {
		case OP_JEQ: p = LLVMIntEQ; break;
		case OP_JNE: p = LLVMIntNE; break;
		case OP_JGT: p = LLVMIntUGT; break;
		case OP_JGE: p = LLVMIntUGE; break;
		case OP_JLT: p = LLVMIntULT; break;
		case OP_JLE: p = LLVMIntULE; break;
		case OP_JSGT: p = LLVMIntSGT; break;
		case OP_JSGE: p = LLVMIntSGE; break;
		case OP_JSLT: p = LLVMIntSLT; break;
		default: p = LLVMIntSLE; break;
		}
		cond = LLVMBuildICmp(L->B, p, a, s, "");
	}
	LLVMBuildCondBr(L->B, cond, L->bb[pc + 1 + in->off], L->bb[pc + 1]);
}

/* After a call that may have unwound or faulted deeper down: stop here too. */
static void return_if_stopped(struct lower *L)
{
	LLVMValueRef f = LLVMBuildLoad2(L->B, L->i64, ctx_field(L, JIT_CTX_FAULTED, L->i64), "");
	LLVMBasicBlockRef stop = new_block(L), go = new_block(L);
	branch_expect(L, LLVMBuildICmp(L->B, LLVMIntNE, f, c64(L, 0), ""), stop, go, false);
	LLVMPositionBuilderAtEnd(L->B, stop);
	emit_ret(L, c64(L, 0));
	LLVMPositionBuilderAtEnd(L->B, go);
}

/* r0 == 0 from the unwind helper ends the whole program with r0 = 0. */
static void unwind_if_zero(struct lower *L, LLVMValueRef r0)
{
	LLVMBasicBlockRef stop = new_block(L), go = new_block(L);
	branch_expect(L, LLVMBuildICmp(L->B, LLVMIntEQ, r0, c64(L, 0), ""), stop, go, false);
	LLVMPositionBuilderAtEnd(L->B, stop);
	LLVMBuildStore(L->B, c64(L, 2), ctx_field(L, JIT_CTX_FAULTED, L->i64));
	emit_ret(L, c64(L, 0));
	LLVMPositionBuilderAtEnd(L->B, go);
}

static LLVMValueRef call_helper(struct lower *L, LLVMValueRef fnptr)
{
	/* Helpers check pointers against the running frame: record its bottom. */
	LLVMValueRef lo = LLVMBuildSub(L->B, get_reg(L, 10), c64(L, BPFTIME_STACK_SIZE), "");
	LLVMBuildStore(L->B, lo, ctx_field(L, JIT_CTX_FRAME_LO, L->i64));
	LLVMValueRef args[5];
	for (int i = 0; i < 5; i++)
		args[i] = get_reg(L, i + 1);
	LLVMValueRef f = LLVMBuildIntToPtr(L->B, fnptr, LLVMPointerType(L->helper_ty, 0), "");
	/* Only this program's callbacks (run by a helper) share its budget (run_begin). */
	if (L->has_callbacks)
		budget_flush(L);
	LLVMValueRef r0 = LLVMBuildCall2(L->B, L->helper_ty, f, args, 5, "");
	if (L->has_callbacks)
		budget_reload(L);
	return r0;
}

static void lower_call(struct lower *L, uint32_t pc, const struct bpf_insn *in)
{
	const struct llvm_request *req = L->req;
	if (in->code == 0x8d) { /* callx */
		uint32_t code = fault_code(pc, JF_CALLX, in->dst);
		LLVMValueRef id = get_reg(L, in->dst);
		fault_if(L, LLVMBuildICmp(L->B, LLVMIntUGE, id, c64(L, req->nhelpers), ""), code, id);
		LLVMValueRef off = LLVMBuildMul(L->B, id, c64(L, sizeof(struct helper)), "");
		LLVMValueRef slot = LLVMBuildAdd(L->B, c64(L, (uint64_t)(uintptr_t)req->helpers), off, "");
		LLVMValueRef fnptr = LLVMBuildLoad2(
		    L->B, L->i64, LLVMBuildIntToPtr(L->B, slot, LLVMPointerType(L->i64, 0), ""), "");
		fault_if(L, LLVMBuildICmp(L->B, LLVMIntEQ, fnptr, c64(L, 0), ""), code, id);
		LLVMValueRef r0 = call_helper(L, fnptr);
		set_reg(L, 0, r0);
		if (req->unwind_id >= 0) {
			LLVMValueRef is_unwind =
			    LLVMBuildICmp(L->B, LLVMIntEQ, id, c64(L, (uint64_t)req->unwind_id), "");
			LLVMValueRef zero = LLVMBuildICmp(L->B, LLVMIntEQ, r0, c64(L, 0), "");
			LLVMValueRef stop = LLVMBuildAnd(L->B, is_unwind, zero, "");
			unwind_if_zero(L, LLVMBuildSelect(L->B, stop, c64(L, 0), c64(L, 1), ""));
		}
		return;
	}
	if (in->src == CALL_LOCAL) {
		/* The depth travels as an argument: no memory traffic per call. */
		fault_if(L, LLVMBuildICmp(L->B, LLVMIntUGE, L->depth, c32(L, BPFTIME_MAX_CALL_FRAMES - 1), ""),
			 fault_code(pc, JF_DEPTH, 0), c64(L, 0));
		LLVMValueRef args[SUB_PARAMS];
		for (int i = 0; i < 10; i++)
			args[i] = get_reg(L, i);
		/* Subprograms that never use them get undef: then the parameters are dead even in
		 * recursion, and LLVM drops them (fewer registers live across each call). */
		bool mem = L->subs_use_memory;
		args[SUB_FP] = mem ? L->fp : LLVMGetUndef(L->i8p);
		args[SUB_CTX] = L->ctxp;
		args[SUB_DEPTH] = LLVMBuildAdd(L->B, L->depth, c32(L, 1), "");
		args[SUB_MEM_LO] = mem ? L->mem_lo : LLVMGetUndef(L->i64);
		args[SUB_MEM_LEN] = mem ? L->mem_len : LLVMGetUndef(L->i64);
		args[SUB_BUDGET] = L->budget ? LLVMBuildLoad2(L->B, L->i64, L->budget, "") : c64(L, 0);
		LLVMValueRef ret = LLVMBuildCall2(L->B, L->sub_ty, L->sub_fn[pc + 1 + in->imm], args,
						  SUB_PARAMS, "");
		LLVMValueRef r0 = LLVMBuildExtractValue(L->B, ret, 0, "");
		if (L->budget)
			LLVMBuildStore(L->B, LLVMBuildExtractValue(L->B, ret, 1, ""), L->budget);
		return_if_stopped(L);
		set_reg(L, 0, r0);
		return;
	}
	const struct helper *h = &req->helpers[in->imm];
	uint64_t direct = req->direct_call ? req->direct_call[pc] : 0; /* (llvm_tier.h) */
	LLVMValueRef r0 = call_helper(L, c64(L, direct ? direct : (uint64_t)(uintptr_t)h->fn));
	set_reg(L, 0, r0);
	if (in->imm == req->unwind_id)
		unwind_if_zero(L, r0);
	if (in->imm == TAIL_CALL_HELPER) /* the next program ran: stop (its r0 is in the context) */
		return_if_stopped(L);
}

static void lower_function(struct lower *L, uint32_t start, uint32_t end, const char *entry_name)
{
	bool is_main = L->is_main = start == 0;
	L->fn = is_main ? LLVMAddFunction(L->M, entry_name, L->main_ty) : L->sub_fn[start];
	LLVMBasicBlockRef entry = new_block(L);
	LLVMPositionBuilderAtEnd(L->B, entry);
	for (int r = 0; r < 10; r++)
		L->regs[r] = LLVMBuildAlloca(L->B, L->i64, "");
	if (is_main) {
		LLVMValueRef stack =
		    LLVMBuildArrayAlloca(L->B, L->i8, c64(L, BPFTIME_STACK_SIZE * BPFTIME_MAX_CALL_FRAMES), "stack");
		LLVMSetAlignment(stack, 16);
		LLVMValueRef top = c64(L, BPFTIME_STACK_SIZE * BPFTIME_MAX_CALL_FRAMES);
		L->fp = LLVMBuildGEP2(L->B, L->i8, stack, &top, 1, "fp");
		L->ctxp = LLVMGetParam(L->fn, 2);
		L->depth = c32(L, 0);
		LLVMBuildStore(L->B, LLVMBuildPtrToInt(L->B, L->fp, L->i64, ""),
			       ctx_field(L, JIT_CTX_STACK_TOP, L->i64));
		for (int r = 0; r < 10; r++)
			set_reg(L, r, c64(L, 0));
		LLVMValueRef mem = LLVMBuildPtrToInt(L->B, LLVMGetParam(L->fn, 0), L->i64, "");
		set_reg(L, 1, mem);
		set_reg(L, 2, LLVMGetParam(L->fn, 1));
		/* jit_call's contract: the entry gets the context block itself (run_init). */
		L->mem_lo = mem;
		L->mem_len = LLVMBuildSelect(L->B, LLVMBuildICmp(L->B, LLVMIntEQ, mem, c64(L, 0), ""),
					     c64(L, 0), LLVMGetParam(L->fn, 1), "mem_len");
	} else {
		LLVMValueRef down = LLVMConstInt(L->i64, (uint64_t)-(int64_t)BPFTIME_STACK_SIZE, 1);
		L->fp = LLVMBuildGEP2(L->B, L->i8, LLVMGetParam(L->fn, SUB_FP), &down, 1, "fp");
		L->ctxp = LLVMGetParam(L->fn, SUB_CTX);
		L->depth = LLVMGetParam(L->fn, SUB_DEPTH);
		L->mem_lo = LLVMGetParam(L->fn, SUB_MEM_LO);
		L->mem_len = LLVMGetParam(L->fn, SUB_MEM_LEN);
		for (int r = 0; r < 10; r++)
			set_reg(L, r, LLVMGetParam(L->fn, (unsigned)r));
	}
	/* Per access size: the last offset + 1 where it still fits (run_init's mem_limit). */
	for (int i = 0; i < 4; i++) {
		uint64_t size = 1u << i;
		L->mem_limit[i] = LLVMBuildSelect(
		    L->B, LLVMBuildICmp(L->B, LLVMIntUGE, L->mem_len, c64(L, size), ""),
		    LLVMBuildSub(L->B, L->mem_len, c64(L, size - 1), ""), c64(L, 0), "");
		L->store_limit[i] =
		    LLVMBuildLoad2(L->B, L->i64, ctx_field(L, JIT_CTX_STORE_LIMIT + 8 * i, L->i64), "");
	}
	L->budget = NULL;
	if (L->req->budgeted) {
		L->budget = LLVMBuildAlloca(L->B, L->i64, "budget");
		if (is_main)
			budget_reload(L);
		else
			LLVMBuildStore(L->B, LLVMGetParam(L->fn, SUB_BUDGET), L->budget);
	}
	uint32_t bytes = L->shape.zero_bytes[start];
	if (bytes) {
		LLVMValueRef back = LLVMConstInt(L->i64, (uint64_t)-(int64_t)bytes, 1);
		LLVMValueRef lo = LLVMBuildGEP2(L->B, L->i8, L->fp, &back, 1, "");
		LLVMBuildMemSet(L->B, lo, LLVMConstInt(L->i8, 0, 0), c64(L, bytes), 16);
	}
	for (uint32_t pc = start; pc < end; pc++)
		L->bb[pc] = L->shape.block_start[pc] ? new_block(L) : NULL;
	LLVMBuildBr(L->B, L->bb[start]);
	bool open = false; /* the current block still needs a terminator */
	for (uint32_t pc = start; pc < end; pc++) {
		const struct bpf_insn *in = &L->req->insns[pc];
		if (L->bb[pc]) {
			if (open)
				LLVMBuildBr(L->B, L->bb[pc]);
			LLVMPositionBuilderAtEnd(L->B, L->bb[pc]);
			open = true;
		}
		/* The budget is counted at back-edges and calls only (program_shape.h). */
		if (L->req->budgeted && L->shape.charge[pc]) {
			LLVMValueRef left = LLVMBuildLoad2(L->B, L->i64, L->budget, "");
			LLVMValueRef n = c64(L, L->shape.charge[pc]);
			fault_if(L, LLVMBuildICmp(L->B, LLVMIntULT, left, n, ""),
				 fault_code(pc, JF_BUDGET, 0), c64(L, 0));
			LLVMBuildStore(L->B, LLVMBuildSub(L->B, left, n, ""), L->budget);
		}
		uint8_t cls = BPF_CLASS(in->code), op = BPF_OP(in->code);
		if (in->code == LDDW_CODE) {
			set_reg(L, in->dst, c64(L, L->req->lddw_values[pc]));
			pc++;
			continue;
		}
		switch (cls) {
		case CLS_ALU:
		case CLS_ALU64:
			lower_alu(L, in);
			break;
		case CLS_LDX:
			lower_load(L, pc, in);
			break;
		case CLS_ST:
		case CLS_STX:
			if (BPF_MODE(in->code) == MODE_ATOMIC)
				lower_atomic(L, pc, in);
			else
				lower_store(L, pc, in);
			break;
		default:
			if (op == OP_EXIT) {
				emit_ret(L, get_reg(L, 0));
				open = false;
			} else if (op == OP_CALL && cls == CLS_JMP) {
				lower_call(L, pc, in);
			} else if (op == OP_JA) {
				LLVMBuildBr(L->B, L->bb[pc + 1 + (cls == CLS_JMP ? in->off : in->imm)]);
				open = false;
			} else {
				lower_cond_jump(L, pc, in);
				open = false;
			}
		}
	}
	if (open) /* unreachable: the validator ends every subprogram with exit or ja */
		LLVMBuildUnreachable(L->B);
}

/* Whether an instruction of a subprogram other than the main one accesses memory, names r10,
 * calls a helper or has a frame to clear: else its frame pointer and the context block's
 * bounds are of no use to it. */
static bool subs_use_memory(const struct program_shape *shape)
{
	for (uint32_t pc = 0; pc < shape->n; pc++) {
		const struct bpf_insn *in = &shape->insns[pc];
		if (shape->sub_start[pc] && pc > 0 && shape->zero_bytes[pc])
			return true;
		if (!shape->in_sub[pc])
			continue;
		if (in->code == LDDW_CODE) {
			pc++;
			continue;
		}
		uint8_t cls = BPF_CLASS(in->code);
		if (cls == CLS_LDX || cls == CLS_ST || cls == CLS_STX || in->dst == 10 || in->src == 10)
			return true;
		if ((cls == CLS_JMP || cls == CLS_JMP32) && BPF_OP(in->code) == OP_CALL &&
		    in->src != CALL_LOCAL)
			return true;
	}
	return false;
}

/*
 * One LLJIT per process (creating one costs milliseconds); each program is a
 * module with its own resource tracker and entry symbol, removed on release.
 */
static LLVMOrcLLJITRef shared_jit;
static char shared_jit_error[300];
static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static uint64_t next_program_id;

/* bpf_cb_*: a callback's entry (args array of r1-r5, unused, ctx) on a fresh stack. */
static LLVMValueRef lower_callback_entry(struct lower *L, uint32_t pc, const char *name)
{
	L->fn = LLVMAddFunction(L->M, name, L->main_ty);
	LLVMPositionBuilderAtEnd(L->B, new_block(L));
	LLVMValueRef stack =
	    LLVMBuildArrayAlloca(L->B, L->i8, c64(L, BPFTIME_STACK_SIZE * BPFTIME_MAX_CALL_FRAMES), "");
	LLVMSetAlignment(stack, 16);
	LLVMValueRef top = c64(L, BPFTIME_STACK_SIZE * BPFTIME_MAX_CALL_FRAMES);
	LLVMValueRef fp = LLVMBuildGEP2(L->B, L->i8, stack, &top, 1, "");
	L->ctxp = LLVMGetParam(L->fn, 2);
	LLVMBuildStore(L->B, LLVMBuildPtrToInt(L->B, fp, L->i64, ""),
		       ctx_field(L, JIT_CTX_STACK_TOP, L->i64));
	LLVMValueRef argv = LLVMBuildBitCast(L->B, LLVMGetParam(L->fn, 0), LLVMPointerType(L->i64, 0), "");
	LLVMValueRef args[SUB_PARAMS];
	for (int i = 0; i < 10; i++)
		args[i] = c64(L, 0);
	for (int i = 0; i < 5; i++) {
		LLVMValueRef idx = c64(L, (uint64_t)i);
		args[i + 1] = LLVMBuildLoad2(L->B, L->i64, LLVMBuildGEP2(L->B, L->i64, argv, &idx, 1, ""), "");
	}
	args[SUB_FP] = fp;
	args[SUB_CTX] = L->ctxp;
	args[SUB_DEPTH] = c32(L, 0);
	args[SUB_MEM_LO] = LLVMBuildLoad2(L->B, L->i64, ctx_field(L, JIT_CTX_MEM_LO, L->i64), "");
	args[SUB_MEM_LEN] = LLVMBuildLoad2(L->B, L->i64, ctx_field(L, JIT_CTX_MEM_LIMIT, L->i64), "");
	LLVMValueRef budget_p = ctx_field(L, JIT_CTX_BUDGET, L->i64);
	args[SUB_BUDGET] = L->req->budgeted ? LLVMBuildLoad2(L->B, L->i64, budget_p, "") : c64(L, 0);
	LLVMValueRef ret = LLVMBuildCall2(L->B, L->sub_ty, L->sub_fn[pc], args, SUB_PARAMS, "");
	if (L->req->budgeted)
		LLVMBuildStore(L->B, LLVMBuildExtractValue(L->B, ret, 1, ""), budget_p);
	LLVMBuildRet(L->B, LLVMBuildExtractValue(L->B, ret, 0, ""));
	return L->fn;
}

struct tier_handle {
	LLVMOrcResourceTrackerRef tracker;
};

/*
 * A target machine for this CPU (its name and features, not a generic x86-64), without AVX:
 * programs attached to probes run with only xmm0-15 saved (csrc/agent/probe_stubs.S), and any
 * VEX-encoded instruction would clear the upper halves of the traced thread's ymm registers.
 * "-avx" also turns off everything that needs it (AVX2, FMA, AVX-512). "+idivq-to-divl": a
 * 64-bit division whose operands fit in 32 bits uses the faster 32-bit divide, as clang's
 * generic x86-64 tuning does (eBPF programs divide 64-bit registers holding small values).
 */
static LLVMTargetMachineRef host_machine(void)
{
	char *triple = LLVMGetDefaultTargetTriple(), *cpu = LLVMGetHostCPUName(),
	     *host_features = LLVMGetHostCPUFeatures();
	size_t n = strlen(host_features) + 32;
	char *features = malloc(n);
	LLVMTargetRef target;
	LLVMTargetMachineRef tm = NULL;
	char *msg = NULL;
	if (features) {
		snprintf(features, n, "%s%s-avx,+idivq-to-divl", host_features,
			 *host_features ? "," : "");
		if (LLVMGetTargetFromTriple(triple, &target, &msg) == 0)
			tm = LLVMCreateTargetMachine(target, triple, cpu, features,
						     LLVMCodeGenLevelAggressive, LLVMRelocDefault,
						     LLVMCodeModelJITDefault);
	}
	free(features);
	LLVMDisposeMessage(msg);
	LLVMDisposeMessage(triple);
	LLVMDisposeMessage(cpu);
	LLVMDisposeMessage(host_features);
	return tm;
}

static void init_llvm(void)
{
	LLVMInitializeNativeTarget();
	LLVMInitializeNativeAsmPrinter();
	LLVMTargetMachineRef tm = host_machine();
	if (!tm) {
		snprintf(shared_jit_error, sizeof(shared_jit_error), "no target machine for the host");
		return;
	}
	LLVMOrcLLJITBuilderRef builder = LLVMOrcCreateLLJITBuilder();
	LLVMOrcLLJITBuilderSetJITTargetMachineBuilder(
	    builder, LLVMOrcJITTargetMachineBuilderCreateFromTargetMachine(tm));
	LLVMErrorRef e = LLVMOrcCreateLLJIT(&shared_jit, builder);
	if (e) {
		char *msg = LLVMGetErrorMessage(e);
		snprintf(shared_jit_error, sizeof(shared_jit_error), "creating LLJIT: %s", msg);
		LLVMDisposeErrorMessage(msg);
		shared_jit = NULL;
		return;
	}
	LLVMOrcDefinitionGeneratorRef gen;
	e = LLVMOrcCreateDynamicLibrarySearchGeneratorForProcess(
	    &gen, LLVMOrcLLJITGetGlobalPrefix(shared_jit), NULL, NULL);
	if (e) {
		char *msg = LLVMGetErrorMessage(e);
		snprintf(shared_jit_error, sizeof(shared_jit_error), "process symbols: %s", msg);
		LLVMDisposeErrorMessage(msg);
		return;
	}
	LLVMOrcJITDylibAddGenerator(LLVMOrcLLJITGetMainJITDylib(shared_jit), gen);
}

static int take_error(LLVMErrorRef e, char *err, size_t errlen, const char *what)
{
	char *msg = LLVMGetErrorMessage(e);
	snprintf(err, errlen, "%s: %s", what, msg);
	LLVMDisposeErrorMessage(msg);
	return -1;
}

EXPORT void bpftime_llvm_release(void *handle)
{
	struct tier_handle *h = handle;
	if (!h)
		return;
	LLVMErrorRef e = LLVMOrcResourceTrackerRemove(h->tracker);
	if (e)
		LLVMConsumeError(e);
	LLVMOrcReleaseResourceTracker(h->tracker);
	free(h);
}

EXPORT int bpftime_llvm_compile(const struct llvm_request *req, struct llvm_result *out, char *err,
				size_t errlen)
{
	pthread_once(&init_once, init_llvm);
	if (!shared_jit) {
		snprintf(err, errlen, "%s", shared_jit_error);
		return -1;
	}
	struct lower L = {.req = req};
	if (program_shape_analyse(&L.shape, req->insns, req->ninsns) < 0) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	struct tier_handle *h = calloc(1, sizeof(*h));
	L.sub_fn = calloc(req->ninsns, sizeof(LLVMValueRef));
	L.bb = calloc(req->ninsns + 1, sizeof(LLVMBasicBlockRef));
	int rc = -1;
	LLVMOrcThreadSafeContextRef tsctx = NULL;
	if (!h || !L.sub_fn || !L.bb) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	LLVMErrorRef e;
	char entry_name[48];
	snprintf(entry_name, sizeof(entry_name), "bpf_main_%llu",
		 (unsigned long long)__atomic_fetch_add(&next_program_id, 1, __ATOMIC_RELAXED));
	tsctx = LLVMOrcCreateNewThreadSafeContext();
	L.C = LLVMOrcThreadSafeContextGetContext(tsctx);
	L.M = LLVMModuleCreateWithNameInContext("bpf", L.C);
	LLVMSetDataLayout(L.M, LLVMOrcLLJITGetDataLayoutStr(shared_jit));
	LLVMSetTarget(L.M, LLVMOrcLLJITGetTripleString(shared_jit));
	L.B = LLVMCreateBuilderInContext(L.C);
	L.i1 = LLVMInt1TypeInContext(L.C);
	L.i8 = LLVMInt8TypeInContext(L.C);
	L.i16 = LLVMInt16TypeInContext(L.C);
	L.i32 = LLVMInt32TypeInContext(L.C);
	L.i64 = LLVMInt64TypeInContext(L.C);
	L.i8p = LLVMPointerType(L.i8, 0);
	LLVMTypeRef h5[5] = {L.i64, L.i64, L.i64, L.i64, L.i64};
	L.helper_ty = LLVMFunctionType(L.i64, h5, 5, 0);
	LLVMTypeRef sub_params[SUB_PARAMS];
	for (int i = 0; i < SUB_PARAMS; i++)
		sub_params[i] = L.i64;
	sub_params[SUB_FP] = sub_params[SUB_CTX] = L.i8p;
	sub_params[SUB_DEPTH] = L.i32;
	LLVMTypeRef pair[2] = {L.i64, L.i64};
	L.sub_ret_ty = LLVMStructTypeInContext(L.C, pair, 2, 0);
	L.sub_ty = LLVMFunctionType(L.sub_ret_ty, sub_params, SUB_PARAMS, 0);
	LLVMTypeRef main_params[3] = {L.i8p, L.i64, L.i8p};
	L.main_ty = LLVMFunctionType(L.i64, main_params, 3, 0);
	LLVMTypeRef check_params[4] = {L.i8p, L.i64, L.i64, L.i64};
	L.check_ty = LLVMFunctionType(L.i32, check_params, 4, 0);
	L.prof_kind = LLVMGetMDKindIDInContext(L.C, "prof", 4);
	LLVMMetadataRef weights[3] = {LLVMMDStringInContext2(L.C, "branch_weights", 14),
				      LLVMValueAsMetadata(c32(&L, 2000)),
				      LLVMValueAsMetadata(c32(&L, 1))};
	L.likely_weights = LLVMMetadataAsValue(L.C, LLVMMDNodeInContext2(L.C, weights, 3));
	weights[1] = weights[2];
	L.even_weights = LLVMMetadataAsValue(L.C, LLVMMDNodeInContext2(L.C, weights, 3));
	L.cold = LLVMCreateEnumAttribute(L.C, LLVMGetEnumAttributeKindForName("cold", 4), 0);

	L.subs_use_memory = subs_use_memory(&L.shape);
	for (uint32_t pc = 1; pc < req->ninsns; pc++) {
		L.has_callbacks |= L.shape.callback[pc] != 0;
		if (L.shape.sub_start[pc]) {
			char name[32];
			snprintf(name, sizeof(name), "bpf_sub_%u", pc);
			L.sub_fn[pc] = LLVMAddFunction(L.M, name, L.sub_ty);
			LLVMSetLinkage(L.sub_fn[pc], LLVMInternalLinkage);
		}
	}
	for (uint32_t start = 0; start < req->ninsns;) {
		uint32_t end = start + 1;
		while (end < req->ninsns && !(L.shape.sub_start[end]))
			end++;
		lower_function(&L, start, end, entry_name);
		start = end;
	}
	char cb_names[JIT_MAX_CALLBACKS][64];
	uint32_t ncb = 0;
	for (uint32_t pc = 1; pc < req->ninsns && ncb < JIT_MAX_CALLBACKS; pc++) {
		if (!L.shape.callback[pc])
			continue;
		snprintf(cb_names[ncb], sizeof(cb_names[ncb]), "%s_cb_%u", entry_name, pc);
		lower_callback_entry(&L, pc, cb_names[ncb]);
		out->cb_pc[ncb++] = pc;
	}
	char *verify = NULL;
	if (LLVMVerifyModule(L.M, LLVMReturnStatusAction, &verify)) {
		snprintf(err, errlen, "generated IR is invalid: %s", verify ? verify : "");
		LLVMDisposeMessage(verify);
		goto out;
	}
	LLVMDisposeMessage(verify);

	/*
	 * -O3, then inductive range check elimination: a loop whose bounds checks compare an
	 * induction variable with the context's limits is split so that its main part runs
	 * without them and only the iterations that may fault (before or after it) keep them.
	 * No target machine here (the code generator has the host's, see init_llvm): with one,
	 * the unroller and vectorizers doubled compile times (str_hash 60 -> 250 ms) for no
	 * measurable gain on bench/workloads.
	 */
	LLVMPassBuilderOptionsRef popts = LLVMCreatePassBuilderOptions();
	e = LLVMRunPasses(L.M, "default<O3>,function(irce,simplifycfg,instcombine)", NULL, popts);
	LLVMDisposePassBuilderOptions(popts);
	if (e) {
		rc = take_error(e, err, errlen, "optimizing");
		goto out;
	}

	LLVMOrcJITDylibRef jd = LLVMOrcLLJITGetMainJITDylib(shared_jit);
	h->tracker = LLVMOrcJITDylibCreateResourceTracker(jd);
	LLVMOrcThreadSafeModuleRef tsm = LLVMOrcCreateNewThreadSafeModule(L.M, tsctx);
	L.M = NULL; /* owned by the JIT now */
	e = LLVMOrcLLJITAddLLVMIRModuleWithRT(shared_jit, h->tracker, tsm);
	if (e) {
		LLVMOrcDisposeThreadSafeModule(tsm);
		rc = take_error(e, err, errlen, "adding the module");
		goto out;
	}
	LLVMOrcJITTargetAddress addr = 0;
	e = LLVMOrcLLJITLookup(shared_jit, &addr, entry_name);
	if (e) {
		rc = take_error(e, err, errlen, "looking up the entry point");
		goto out;
	}
	for (uint32_t i = 0; i < ncb; i++) {
		LLVMOrcJITTargetAddress cb = 0;
		e = LLVMOrcLLJITLookup(shared_jit, &cb, cb_names[i]);
		if (e) {
			rc = take_error(e, err, errlen, "looking up a callback entry");
			goto out;
		}
		out->cb_entry[i] = (void *)(uintptr_t)cb;
	}
	out->ncallbacks = ncb;
	out->entry = (void *)(uintptr_t)addr;
	out->handle = h;
	h = NULL;
	rc = 0;
out:
	if (L.B)
		LLVMDisposeBuilder(L.B);
	if (L.M)
		LLVMDisposeModule(L.M);
	if (tsctx)
		LLVMOrcDisposeThreadSafeContext(tsctx);
	if (h) {
		if (h->tracker) {
			LLVMErrorRef re = LLVMOrcResourceTrackerRemove(h->tracker);
			if (re)
				LLVMConsumeError(re);
			LLVMOrcReleaseResourceTracker(h->tracker);
		}
		free(h);
	}
	free(L.sub_fn);
	free(L.bb);
	program_shape_free(&L.shape);
	return rc;
}
