/*
 * x86-64 JIT. eBPF registers live in machine registers (r0 rax, r1 rdi,
 * r2 rsi, r3 rdx, r4 rcx, r5 r8: the SysV argument registers, so helper
 * calls need no shuffling; r6 rbx, r7 r13, r8 r14, r9 r15, r10 rbp).
 * r12 holds the struct jit_ctx; r9, r10, r11 are scratch, except that r9 holds the
 * instruction budget in programs that call no helper (budget_in_r9).
 *
 * The eBPF stack is a 4 KiB area of the native stack holding 8 frames of
 * 512 bytes; return addresses and saved registers live outside it, so a
 * program can never reach them. Accesses through r10 with a constant
 * offset inside the current frame are safe by construction; every other
 * access is checked inline against the context block and, failing that,
 * by a slow path (caller frames, registered regions), unless pointer_facts.c
 * proves it stays inside the running frame or inside one map value. When it proves context
 * accesses in bounds for a context of at least some length (ctx_proven), the main program is
 * compiled twice: an entry check of the run's context length picks the copy without those
 * checks, or the fully checked one.
 * bpf_map_lookup_elem of a map an lddw names is compiled inline where the
 * map allows (jit_map_lookup.c), and bpf_probe_read{,_str} into the frame where
 * the size is constant (jit_probe_read.c).
 */
#include "jit.h"
#include "jit_map_lookup.h"
#include "jit_helper_calls.h"
#include "pointer_facts.h"
#include "program_shape.h"
#include "interp_ops.h"
#include "x86_emit.h"
#include "jit_probe_read.h"

#include <stdlib.h>
#include <sys/mman.h>

static const int REG[11] = {RAX, RDI, RSI, RDX, RCX, R8, RBX, R13, R14, R15, RBP};

#define STACK_AREA (BPFTIME_STACK_SIZE * BPFTIME_MAX_CALL_FRAMES)

enum label { L_EPILOGUE, L_UNWIND, L_FAULT, L_SLOW_CHECK, L_ZERO_FRAME, L_COUNT };
enum fix_kind { FIX_INSN, FIX_SUB, FIX_LABEL };

struct fixup {
	uint32_t at;
	uint32_t target;
	enum fix_kind kind;
};

/* An out-of-line slow bounds check: keeps the checked access's fast path free of taken jumps. */
struct cold_path {
	uint32_t jcc_at; /* rel32 of the jump that leaves the fast path */
	uint32_t resume; /* where the fast path continues */
	uint32_t code;   /* fault code for the slow check */
};

struct jit_state {
	struct x86_buf b;
	const struct bpftime_vm *vm;
	const struct bpf_insn *insns;
	uint32_t n;
	bool budgeted;
	struct program_shape shape;
	struct pointer_facts facts;
	struct jit_reads reads; /* inline probe reads and their exception table */
	uint32_t *insn_off;  /* code offset of each instruction's body */
	uint32_t *sub_entry; /* code offset of a subprogram's prologue */
	struct fixup *fix;
	uint32_t nfix, capfix;
	struct cold_path *cold; /* slow bounds checks, emitted after the body */
	uint32_t ncold, capcold;
	struct cold_path *spent; /* budget and call depth faults, emitted after the body */
	uint32_t nspent, capspent;
	uint32_t ncallbacks, cb_pc[JIT_MAX_CALLBACKS], cb_off[JIT_MAX_CALLBACKS];
	uint32_t label[L_COUNT];
	bool failed;
	/* Whether eBPF r6-r9 (rbx, r13-r15) appear anywhere: if not, entry neither saves nor clears them. */
	bool uses_r6_r9;
	uint8_t sub_saved; /* the subprogram being compiled saves these of r6-r9 (bit 0: r6) */
	bool run_end_calls; /* a call of a run-end helper (or callx) was emitted */
	vm_helper_gate_fn gate; /* helper calls go through it (jit_helper_calls.h) */
	uint32_t direct_calls;  /* helper calls (and callx) emitted without the gate */
	uint32_t hot_calls;     /* helper calls emitted but the cached pid_tgid's slow path */
	bool callx;
	/* Compiling the main program's copy for runs whose context is long enough (ctx_proven
	 * accesses unchecked); its instructions' offsets are insn_off[insn_base + pc]. */
	bool ctx_fast;
	uint32_t insn_base;
	bool budget_r9; /* see budget_in_r9 */
};

static void add_fixup(struct jit_state *st, uint32_t at, uint32_t target, enum fix_kind kind)
{
	if (kind == FIX_INSN)
		target += st->insn_base; /* a jump stays in the copy it is in */
	if (st->nfix == st->capfix) {
		uint32_t cap = st->capfix ? st->capfix * 2 : 256;
		struct fixup *f = realloc(st->fix, cap * sizeof(*f));
		if (!f) {
			st->failed = true;
			return;
		}
		st->fix = f;
		st->capfix = cap;
	}
	st->fix[st->nfix++] = (struct fixup){at, target, kind};
}

static void jmp_label(struct jit_state *st, enum label l)
{
	add_fixup(st, emit_jmp32(&st->b), l, FIX_LABEL);
}
static void jcc_label(struct jit_state *st, uint8_t cc, enum label l)
{
	add_fixup(st, emit_jcc32(&st->b, cc), l, FIX_LABEL);
}

/* r10d = code; jmp fault (r11 holds the address or value the message names). */
static void emit_fault(struct jit_state *st, uint32_t code)
{
	emit_mov_imm64(&st->b, R10, code);
	jmp_label(st, L_FAULT);
}

/*
 * Operand for a memory access of `size` bytes at bpf register `base` + off.
 * Returns the x86 base register (rbp for proven-safe stack accesses, else
 * r11 holding the checked address) and sets *disp.
 */
static int emit_address(struct jit_state *st, uint32_t pc, int base, int16_t off, uint32_t size,
			bool store, int32_t *disp)
{
	struct x86_buf *b = &st->b;
	if (base == 10 && off >= -BPFTIME_STACK_SIZE && off + (int32_t)size <= 0) {
		*disp = off;
		return RBP;
	}
	int lg = size_log2(size);
	emit_mem(b, 0x8d, true, R11, REG[base], off);                 /* lea r11, [base+off] */
	emit_mov_rr(b, true, R10, R11);                                /* mov r10, r11 */
	emit_mem(b, 0x2b, true, R10, R12, JIT_CTX_MEM_LO);             /* sub r10, mem_lo */
	int limits = store ? JIT_CTX_STORE_LIMIT : JIT_CTX_MEM_LIMIT;
	emit_mem(b, 0x3b, true, R10, R12, limits + 8 * lg); /* cmp r10, limit */
	uint32_t slow = emit_jcc32(b, CC_AE);
	if (st->ncold == st->capcold) {
		uint32_t cap = st->capcold ? st->capcold * 2 : 64;
		struct cold_path *c = realloc(st->cold, cap * sizeof(*c));
		if (!c) {
			st->failed = true;
			return R11;
		}
		st->cold = c;
		st->capcold = cap;
	}
	st->cold[st->ncold++] = (struct cold_path){slow, b->len,
						   fault_code(pc, store ? JF_STORE : JF_LOAD, (uint32_t)lg)};
	*disp = 0;
	return R11;
}

/* Whether the access at pc needs no check (a store, when the context may be written). */
static bool access_unchecked(const struct jit_state *st, uint32_t pc, bool store)
{
	return st->facts.proven[pc] ||
	       (st->ctx_fast && st->facts.ctx_proven[pc] && !(store && st->vm->ctx_readonly));
}

/*
 * Whether a ctx_proven access of the main program sits in a loop (between a backward jump and
 * its target): only then is the unchecked copy worth its code and compile time.
 */
static bool ctx_proven_in_loop(const struct jit_state *st)
{
	uint32_t *before = malloc(((size_t)st->n + 1) * sizeof(uint32_t)); /* ctx_proven pcs < pc */
	if (!before)
		return false;
	before[0] = 0;
	for (uint32_t pc = 0; pc < st->n; pc++)
		before[pc + 1] = before[pc] + st->facts.ctx_proven[pc];
	bool found = false;
	for (uint32_t pc = 0; pc < st->n && (pc == 0 || !st->shape.sub_start[pc]) && !found; pc++) {
		const struct bpf_insn *in = &st->insns[pc];
		uint8_t cls = BPF_CLASS(in->code), op = BPF_OP(in->code);
		if (in->code == LDDW_CODE) {
			pc++;
			continue;
		}
		if ((cls != CLS_JMP && cls != CLS_JMP32) || op == OP_CALL || op == OP_EXIT)
			continue;
		int64_t t = (int64_t)pc + 1 + (op == OP_JA && cls == CLS_JMP32 ? in->imm : in->off);
		found = t <= pc && before[pc + 1] > before[t];
	}
	free(before);
	return found;
}

/*
 * At the main entry: when the run's context holds every byte the ctx_proven accesses may touch,
 * jump to the main program's unchecked copy (patched at the returned offset; none: 0).
 */
static uint32_t emit_ctx_dispatch(struct jit_state *st)
{
	struct x86_buf *b = &st->b;
	if (!ctx_proven_in_loop(st))
		return 0;
	uint64_t load = st->facts.ctx_need_load;
	uint64_t store = st->vm->ctx_readonly ? 0 : st->facts.ctx_need_store;
	if (!load && !store)
		return 0;
	uint32_t checked[2], nchecked = 0;
	if (load) { /* cmp qword [r12+mem_limit], need (mem_limit[0] is the length) */
		emit_alu_mem_imm(b, 7, true, R12, JIT_CTX_MEM_LIMIT, (int32_t)load);
		checked[nchecked++] = emit_jcc32(b, CC_B);
	}
	if (store) { /* 0 when the context is read-only */
		emit_alu_mem_imm(b, 7, true, R12, JIT_CTX_STORE_LIMIT, (int32_t)store);
		checked[nchecked++] = emit_jcc32(b, CC_B);
	}
	uint32_t fast = emit_jmp32(b);
	for (uint32_t i = 0; i < nchecked; i++)
		patch_rel32(b, checked[i], b->len);
	return fast;
}

/* Makes the jump whose rel32 is at jcc_at go to a fault with `code`, emitted after the body. */
static void add_cold_fault(struct jit_state *st, uint32_t jcc_at, uint32_t code)
{
	if (st->nspent == st->capspent) {
		uint32_t cap = st->capspent ? st->capspent * 2 : 16;
		struct cold_path *c = realloc(st->spent, cap * sizeof(*c));
		if (!c) {
			st->failed = true;
			return;
		}
		st->spent = c;
		st->capspent = cap;
	}
	st->spent[st->nspent++] = (struct cold_path){jcc_at, st->b.len, code};
}

/*
 * Counts w against the budget before a back-edge or call (program_shape.h): sub, and a jump
 * out of line when it runs out (sub borrows). Code with nothing to count pays nothing.
 */
static void emit_charge(struct jit_state *st, uint32_t pc, uint32_t w)
{
	struct x86_buf *b = &st->b;
	if (st->budget_r9)
		emit_alu_imm(b, 5, true, R9, (int32_t)w); /* sub r9, w */
	else
		emit_alu_mem_imm(b, 5, true, R12, JIT_CTX_BUDGET, (int32_t)w); /* sub qword [r12+budget], w */
	add_cold_fault(st, emit_jcc32(b, CC_B), fault_code(pc, JF_BUDGET, 0));
}

/* The main entry starts each run with the VM's whole budget (callbacks share their caller's). */
static void emit_budget_reset(struct jit_state *st)
{
	struct x86_buf *b = &st->b;
	emit_mem(b, 0x8b, true, R11, R12, (int32_t)offsetof(struct jit_ctx, vm));
	emit_mem(b, 0x8b, true, R11, R11, (int32_t)offsetof(struct bpftime_vm, budget));
	emit_mem(b, 0x89, true, R11, R12, JIT_CTX_BUDGET);
	if (st->budget_r9)
		emit_mov_rr(b, true, R9, R11);
}

/*
 * Counting the budget in memory makes every charge wait for the last one's store (a few cycles
 * per loop round or call); programs that call no helper keep it in r9 instead, stored back into
 * the run context at the one way out (the epilogue, which faults and budget faults reach too).
 * No C code runs in such a program but the slow bounds check, whose stub keeps r9, and the few
 * JIT sequences that use r9 as scratch are absent (helper calls, callx, atomics) or keep it
 * (division); map lookups compiled inline (jit_map_lookup.h) leave it alone. Nothing reads the
 * run context's budget during such a run.
 */
static bool inline_lookup_at(const struct jit_state *st, uint32_t pc, struct vm_map_inline *m);
static bool budget_in_r9(const struct jit_state *st)
{
	if (!st->budgeted || !st->shape.counted)
		return false;
	for (uint32_t pc = 0; pc < st->n; pc++) {
		const struct bpf_insn *in = &st->insns[pc];
		uint8_t cls = BPF_CLASS(in->code);
		if (in->code == LDDW_CODE) {
			if (in->src == LDDW_PSEUDO_FUNC)
				return false; /* a callback shares its caller's budget through memory */
			pc++;
			continue;
		}
		struct vm_map_inline m;
		if ((cls == CLS_JMP || cls == CLS_JMP32) && BPF_OP(in->code) == OP_CALL &&
		    !(in->code == 0x85 && in->src == CALL_LOCAL) && !inline_lookup_at(st, pc, &m))
			return false; /* C code: r9 is not kept (inline lookups leave it alone) */
		if ((cls == CLS_STX || cls == CLS_ST) && BPF_MODE(in->code) == MODE_ATOMIC)
			return false;
		if (st->shape.callback[pc])
			return false;
	}
	return true;
}

static void emit_cold_paths(struct jit_state *st)
{
	struct x86_buf *b = &st->b;
	for (uint32_t i = 0; i < st->nspent; i++) {
		patch_rel32(b, st->spent[i].jcc_at, b->len);
		emit_fault(st, st->spent[i].code);
	}
	for (uint32_t i = 0; i < st->ncold; i++) {
		patch_rel32(b, st->cold[i].jcc_at, b->len);
		/* Inside the window the last slow check found? r10 = addr - win_lo < win_len, and the
		 * access inside one element: (r10 & win_mask) + size <= win_size (jit_ctx.win_mask). */
		emit_mov_rr(b, true, R10, R11);
		emit_mem(b, 0x2b, true, R10, R12, JIT_CTX_WIN_LO);  /* sub r10, win_lo */
		emit_mem(b, 0x3b, true, R10, R12, JIT_CTX_WIN_LEN); /* cmp r10, win_len */
		uint32_t slow1 = emit_jcc32(b, CC_AE);
		emit_mem(b, 0x23, true, R10, R12, JIT_CTX_WIN_MASK); /* and r10, win_mask */
		emit_alu_imm(b, 0, true, R10, 1 << (st->cold[i].code & 0xf));
		emit_mem(b, 0x3b, true, R10, R12, JIT_CTX_WIN_SIZE); /* cmp r10, win_size */
		uint32_t slow2 = emit_jcc32(b, CC_A);
		patch_rel32(b, emit_jmp32(b), st->cold[i].resume);
		patch_rel32(b, slow1, b->len);
		patch_rel32(b, slow2, b->len);
		emit_mov_imm64(b, R10, st->cold[i].code);
		add_fixup(st, emit_call32(b), L_SLOW_CHECK, FIX_LABEL);
		patch_rel32(b, emit_jmp32(b), st->cold[i].resume);
	}
}

static void emit_load(struct jit_state *st, uint32_t pc, const struct bpf_insn *in)
{
	struct x86_buf *b = &st->b;
	uint32_t size = BPF_SIZE(in->code) == SZ_B ? 1 : BPF_SIZE(in->code) == SZ_H ? 2
			: BPF_SIZE(in->code) == SZ_W ? 4 : 8;
	bool sx = BPF_MODE(in->code) == MODE_MEMSX;
	int32_t disp = in->off;
	int base = access_unchecked(st, pc, false)
			   ? REG[in->src]
			   : emit_address(st, pc, in->src, in->off, size, false, &disp);
	int d = REG[in->dst];
	switch (size) {
	case 1:
	case 2:
		emit_rex(b, sx, d, 0, base, false);
		emit1(b, 0x0f);
		emit1(b, (uint8_t)((sx ? 0xbe : 0xb6) + (size == 2)));
		emit_modrm_mem(b, d, base, disp);
		break;
	case 4:
		emit_mem(b, sx ? 0x63 : 0x8b, sx, d, base, disp);
		break;
	default:
		emit_mem(b, 0x8b, true, d, base, disp);
	}
}

static void emit_store(struct jit_state *st, uint32_t pc, const struct bpf_insn *in)
{
	struct x86_buf *b = &st->b;
	uint32_t size = BPF_SIZE(in->code) == SZ_B ? 1 : BPF_SIZE(in->code) == SZ_H ? 2
			: BPF_SIZE(in->code) == SZ_W ? 4 : 8;
	bool imm = BPF_CLASS(in->code) == CLS_ST;
	int32_t disp = in->off;
	int base = access_unchecked(st, pc, true)
			   ? REG[in->dst]
			   : emit_address(st, pc, in->dst, in->off, size, true, &disp);
	int s = imm ? 0 : REG[in->src];
	if (size == 2)
		emit1(b, 0x66);
	emit_rex(b, size == 8, s, 0, base, size == 1 && !imm);
	if (imm) {
		emit1(b, size == 1 ? 0xc6 : 0xc7);
		emit_modrm_mem(b, 0, base, disp);
		if (size == 1)
			emit1(b, (uint8_t)in->imm);
		else if (size == 2)
			emit_bytes(b, &in->imm, 2);
		else
			emit4(b, (uint32_t)in->imm);
	} else {
		emit1(b, size == 1 ? 0x88 : 0x89);
		emit_modrm_mem(b, s, base, disp);
	}
}

static void emit_atomic(struct jit_state *st, uint32_t pc, const struct bpf_insn *in)
{
	struct x86_buf *b = &st->b;
	bool w = BPF_SIZE(in->code) == SZ_DW;
	uint32_t size = w ? 8 : 4;
	int32_t disp;
	int base = emit_address(st, pc, in->dst, in->off, size, true, &disp);
	uint32_t misaligned = fault_code(pc, JF_MISALIGNED, (uint32_t)size_log2(size));
	if (base == RBP) {
		if (disp & (int32_t)(size - 1)) { /* statically misaligned: always faults */
			emit_mem(b, 0x8d, true, R11, RBP, disp);
			emit_fault(st, misaligned);
			return;
		}
	} else {
		emit_rex(b, true, 0, 0, R11, false); /* test r11, size-1 */
		emit1(b, 0xf7);
		emit_modrm_reg(b, 0, R11);
		emit4(b, size - 1);
		uint32_t aligned = emit_jcc32(b, CC_E);
		emit_fault(st, misaligned);
		patch_rel32(b, aligned, b->len);
	}
	int s = REG[in->src];
	int op = in->imm;
	if (op == ATOMIC_ADD || op == ATOMIC_OR || op == ATOMIC_AND || op == ATOMIC_XOR ||
	    op == (ATOMIC_ADD | ATOMIC_FETCH) || op == ATOMIC_XCHG || op == ATOMIC_CMPXCHG) {
		if (op != ATOMIC_XCHG)
			emit1(b, 0xf0); /* lock */
		emit_rex(b, w, s, 0, base, false);
		switch (op) {
		case ATOMIC_ADD: emit1(b, 0x01); break;
		case ATOMIC_OR: emit1(b, 0x09); break;
		case ATOMIC_AND: emit1(b, 0x21); break;
		case ATOMIC_XOR: emit1(b, 0x31); break;
		case ATOMIC_ADD | ATOMIC_FETCH: emit1(b, 0x0f); emit1(b, 0xc1); break; /* xadd */
		case ATOMIC_XCHG: emit1(b, 0x87); break;
		default: emit1(b, 0x0f); emit1(b, 0xb1); break; /* cmpxchg */
		}
		emit_modrm_mem(b, s, base, disp);
		if (op == ATOMIC_CMPXCHG && !w)
			emit_mov_rr(b, false, RAX, RAX); /* r0 is the zero-extended old value */
		return;
	}
	/* fetch or/and/xor: a compare-and-swap loop through rax (r0 saved in r10). */
	uint8_t alu = (op & ~ATOMIC_FETCH) == ATOMIC_OR ? 0x09 : (op & ~ATOMIC_FETCH) == ATOMIC_AND ? 0x21 : 0x31;
	int operand = s == RAX ? R10 : s;
	emit_mov_rr(b, true, R10, RAX);
	uint32_t loop = b->len;
	emit_mem(b, 0x8b, w, RAX, base, disp);
	emit_mov_rr(b, true, R9, RAX);
	emit_rr(b, alu, w, R9, operand);
	emit1(b, 0xf0);
	emit_rex(b, w, R9, 0, base, false);
	emit1(b, 0x0f);
	emit1(b, 0xb1);
	emit_modrm_mem(b, R9, base, disp);
	patch_rel32(b, emit_jcc32(b, CC_NE), loop);
	if (s != RAX) {
		emit_mov_rr(b, true, s, RAX);
		emit_mov_rr(b, true, RAX, R10);
	}
}

/* RFC 9669: x / 0 = 0 and x % 0 = x (32-bit forms zero-extend). */
static void emit_div_by_zero(struct x86_buf *b, int d, bool w, bool is_mod)
{
	if (!is_mod)
		emit_rr(b, 0x31, false, d, d);
	else if (!w)
		emit_mov_rr(b, false, d, d);
}

/* Signed x / -1 = -x (INT_MIN stays INT_MIN) and x % -1 = 0, without trapping. */
static void emit_div_by_neg1(struct x86_buf *b, int d, bool w, bool is_mod)
{
	if (is_mod) {
		emit_rr(b, 0x31, false, d, d);
	} else {
		emit_rex(b, w, 0, 0, d, false);
		emit1(b, 0xf7);
		emit_modrm_reg(b, 3, d);
	}
}

static void emit_div_insn(struct x86_buf *b, bool w, bool is_signed)
{
	if (is_signed) {
		if (w)
			emit1(b, 0x48);
		emit1(b, 0x99); /* cqo / cdq */
	} else {
		emit_rr(b, 0x31, false, RDX, RDX);
	}
	emit_rex(b, w, 0, 0, R11, false);
	emit1(b, 0xf7);
	emit_modrm_reg(b, is_signed ? 7 : 6, R11); /* idiv / div r11 */
}

/*
 * d = d (div|mod) r11 with the hardware divider; r0/r3 (rax/rdx) are parked
 * in r9/r10. A 64-bit division whose operands both fit in 32 bits (so both
 * are non-negative) uses the much faster 32-bit divider, as compilers do.
 */
static void emit_hw_div(struct x86_buf *b, int d, bool w, bool is_mod, bool is_signed)
{
	emit_mov_rr(b, true, R9, RAX);
	emit_mov_rr(b, true, R10, RDX);
	emit_mov_rr(b, w, RAX, d == RAX ? R9 : d == RDX ? R10 : d);
	if (w) {
		emit_mov_rr(b, true, RDX, RAX);
		emit_rr(b, 0x09, true, RDX, R11); /* or rdx, r11 */
		emit_rex(b, true, 0, 0, RDX, false); /* shr rdx, 32 */
		emit1(b, 0xc1);
		emit_modrm_reg(b, 5, RDX);
		emit1(b, 32);
		uint32_t wide = emit_jcc32(b, CC_NE);
		emit_div_insn(b, false, false);
		uint32_t done = emit_jmp32(b);
		patch_rel32(b, wide, b->len);
		emit_div_insn(b, true, is_signed);
		patch_rel32(b, done, b->len);
	} else {
		emit_div_insn(b, false, is_signed);
	}
	emit_mov_rr(b, w, R11, is_mod ? RDX : RAX);
	emit_mov_rr(b, true, RAX, R9);
	emit_mov_rr(b, true, RDX, R10);
	emit_mov_rr(b, w, d, R11);
}

static void emit_divmod(struct jit_state *st, const struct bpf_insn *in, bool w, bool is_mod,
			bool is_signed)
{
	struct x86_buf *b = &st->b;
	int d = REG[in->dst];
	if (!(in->code & BPF_SRC_REG)) {
		if (in->imm == 0)
			emit_div_by_zero(b, d, w, is_mod);
		else if (is_signed && in->imm == -1)
			emit_div_by_neg1(b, d, w, is_mod);
		else {
			emit_mov_imm64(b, R11, w ? (uint64_t)(int64_t)in->imm : (uint32_t)in->imm);
			if (st->budget_r9)
				emit_push(b, R9);
			emit_hw_div(b, d, w, is_mod, is_signed);
			if (st->budget_r9)
				emit_pop(b, R9);
		}
		return;
	}
	emit_mov_rr(b, w, R11, REG[in->src]);
	emit_rr(b, 0x85, w, R11, R11);
	uint32_t nonzero = emit_jcc32(b, CC_NE);
	emit_div_by_zero(b, d, w, is_mod);
	uint32_t done_zero = emit_jmp32(b);
	patch_rel32(b, nonzero, b->len);
	uint32_t done_neg1 = 0;
	if (is_signed) {
		emit_alu_imm(b, 7, w, R11, -1);
		uint32_t normal = emit_jcc32(b, CC_NE);
		emit_div_by_neg1(b, d, w, is_mod);
		done_neg1 = emit_jmp32(b);
		patch_rel32(b, normal, b->len);
	}
	if (st->budget_r9)
		emit_push(b, R9);
	emit_hw_div(b, d, w, is_mod, is_signed);
	if (st->budget_r9)
		emit_pop(b, R9);
	patch_rel32(b, done_zero, b->len);
	if (is_signed)
		patch_rel32(b, done_neg1, b->len);
}

static void emit_shift(struct jit_state *st, const struct bpf_insn *in, bool w, int ext)
{
	struct x86_buf *b = &st->b;
	int d = REG[in->dst];
	if (!(in->code & BPF_SRC_REG)) {
		int count = in->imm & (w ? 63 : 31);
		if (count) {
			emit_rex(b, w, 0, 0, d, false);
			emit1(b, 0xc1);
			emit_modrm_reg(b, ext, d);
			emit1(b, (uint8_t)count);
		} else if (!w) {
			emit_mov_rr(b, false, d, d);
		}
		return;
	}
	int s = REG[in->src];
	int target = d;
	if (s != RCX) {
		emit_mov_rr(b, true, R11, RCX); /* park r4 */
		if (d == RCX)
			target = R11;
		emit_mov_rr(b, true, RCX, s);
	}
	emit_rex(b, w, 0, 0, target, false);
	emit1(b, 0xd3);
	emit_modrm_reg(b, ext, target);
	if (s != RCX)
		emit_mov_rr(b, true, RCX, R11); /* restore r4, or move the result into it */
	if (!w)
		emit_mov_rr(b, false, d, d);
}

static void emit_alu(struct jit_state *st, const struct bpf_insn *in)
{
	struct x86_buf *b = &st->b;
	bool w = BPF_CLASS(in->code) == CLS_ALU64, reg = in->code & BPF_SRC_REG;
	int d = REG[in->dst], s = REG[in->src];
	uint8_t op = BPF_OP(in->code);
	switch (op) {
	case OP_ADD: case OP_SUB: case OP_AND: case OP_OR: case OP_XOR: {
		static const uint8_t rr[16] = {[OP_ADD >> 4] = 0x01, [OP_SUB >> 4] = 0x29,
					       [OP_AND >> 4] = 0x21, [OP_OR >> 4] = 0x09,
					       [OP_XOR >> 4] = 0x31};
		static const uint8_t ext[16] = {[OP_ADD >> 4] = 0, [OP_SUB >> 4] = 5, [OP_AND >> 4] = 4,
						[OP_OR >> 4] = 1, [OP_XOR >> 4] = 6};
		if (reg)
			emit_rr(b, rr[op >> 4], w, d, s);
		else
			emit_alu_imm(b, ext[op >> 4], w, d, in->imm);
		return;
	}
	case OP_MOV:
		if (!reg) {
			emit_mov_imm64(b, d, w ? (uint64_t)(int64_t)in->imm : (uint32_t)in->imm);
		} else if (in->off == 0) {
			emit_mov_rr(b, w, d, s);
		} else if (in->off == 32) {
			emit_rex(b, true, d, 0, s, false); /* movsxd d, s32 */
			emit1(b, 0x63);
			emit_modrm_reg(b, d, s);
		} else {
			emit_0f_rr(b, in->off == 8 ? 0xbe : 0xbf, w, d, s, in->off == 8);
		}
		return;
	case OP_MUL:
		if (reg) {
			emit_0f_rr(b, 0xaf, w, d, s, false);
		} else {
			emit_rex(b, w, d, 0, d, false);
			emit1(b, 0x69);
			emit_modrm_reg(b, d, d);
			emit4(b, (uint32_t)in->imm);
		}
		return;
	case OP_NEG:
		emit_rex(b, w, 0, 0, d, false);
		emit1(b, 0xf7);
		emit_modrm_reg(b, 3, d);
		return;
	case OP_DIV:
	case OP_MOD:
		emit_divmod(st, in, w, op == OP_MOD, in->off == 1);
		return;
	case OP_LSH: emit_shift(st, in, w, 4); return;
	case OP_RSH: emit_shift(st, in, w, 5); return;
	case OP_ARSH: emit_shift(st, in, w, 7); return;
	default: /* OP_END */
		break;
	}
	bool to_le = !w && !reg;
	if (to_le) {
		if (in->imm == 16)
			emit_0f_rr(b, 0xb7, false, d, d, false); /* movzx d32, d16 */
		else if (in->imm == 32)
			emit_mov_rr(b, false, d, d);
		return;
	}
	if (in->imm == 16) {
		emit1(b, 0x66); /* rol d16, 8 */
		emit_rex(b, false, 0, 0, d, false);
		emit1(b, 0xc1);
		emit_modrm_reg(b, 0, d);
		emit1(b, 8);
		emit_0f_rr(b, 0xb7, false, d, d, false);
	} else {
		emit_rex(b, in->imm == 64, 0, 0, d, false); /* bswap */
		emit1(b, 0x0f);
		emit1(b, (uint8_t)(0xc8 + (d & 7)));
	}
}

static void emit_jump(struct jit_state *st, uint32_t pc, const struct bpf_insn *in)
{
	struct x86_buf *b = &st->b;
	bool w = BPF_CLASS(in->code) == CLS_JMP, reg = in->code & BPF_SRC_REG;
	uint8_t op = BPF_OP(in->code);
	int d = REG[in->dst], s = REG[in->src];
	if (op == OP_JA) {
		add_fixup(st, emit_jmp32(b), pc + 1 + (w ? in->off : in->imm), FIX_INSN);
		return;
	}
	if (op == OP_JSET) {
		if (reg) {
			emit_rr(b, 0x85, w, d, s);
		} else {
			emit_rex(b, w, 0, 0, d, false);
			emit1(b, 0xf7);
			emit_modrm_reg(b, 0, d);
			emit4(b, (uint32_t)in->imm);
		}
	} else if (reg) {
		emit_rr(b, 0x39, w, d, s);
	} else {
		emit_alu_imm(b, 7, w, d, in->imm);
	}
	uint8_t cc;
	switch (op) {
	case OP_JEQ: cc = CC_E; break;
	case OP_JNE: case OP_JSET: cc = CC_NE; break;
	case OP_JGT: cc = CC_A; break;
	case OP_JGE: cc = CC_AE; break;
	case OP_JLT: cc = CC_B; break;
	case OP_JLE: cc = CC_BE; break;
	case OP_JSGT: cc = CC_G; break;
	case OP_JSGE: cc = CC_GE; break;
	case OP_JSLT: cc = CC_L; break;
	default: cc = CC_LE; break;
	}
	add_fixup(st, emit_jcc32(b, cc), pc + 1 + in->off, FIX_INSN);
}

static void emit_unwind_check(struct jit_state *st)
{
	emit_rr(&st->b, 0x85, true, RAX, RAX);
	jcc_label(st, CC_E, L_UNWIND);
}

/* Helpers check pointers against the running frame: record its bottom. */
static void emit_frame_for_helper(struct jit_state *st)
{
	emit_mem(&st->b, 0x8d, true, R11, RBP, -BPFTIME_STACK_SIZE);
	emit_mem(&st->b, 0x89, true, R11, R12, JIT_CTX_FRAME_LO);
}

/* Whether the bpf_map_lookup_elem at pc is compiled inline (pointer_facts.h lookup_site), and how. */
static bool inline_lookup_at(const struct jit_state *st, uint32_t pc, struct vm_map_inline *m)
{
	const struct bpftime_vm *vm = st->vm;
	const struct lookup_site *site = &st->facts.site[pc];
	if (!st->facts.lookup[pc] || !vm->map_inline_fn ||
	    !vm->map_inline_fn(vm->map_inline_ctx, vm->code[site->lddw_pc].k, m))
		return false;
	if ((int64_t)site->key_hi + m->key_size > 0) /* the key must be readable in the frame */
		return false;
	return jit_map_lookup_inlinable(m);
}

/* bpf_map_lookup_elem compiled inline; false: call it. */
static bool emit_inline_lookup(struct jit_state *st, uint32_t pc)
{
	struct vm_map_inline m;
	return inline_lookup_at(st, pc, &m) && jit_emit_map_lookup(&st->b, &m);
}

static void emit_call(struct jit_state *st, uint32_t pc, const struct bpf_insn *in)
{
	struct x86_buf *b = &st->b;
	const struct bpftime_vm *vm = st->vm;
	if (in->code == 0x8d) { /* callx: helper id in a register */
		st->run_end_calls = true;
		st->callx = true;
		st->direct_calls++;
		emit_mov_rr(b, true, R11, REG[in->dst]);
		uint32_t code = fault_code(pc, JF_CALLX, in->dst);
		emit_alu_imm(b, 7, true, R11, (int32_t)vm->nhelpers);
		uint32_t in_range = emit_jcc32(b, CC_B);
		emit_fault(st, code);
		patch_rel32(b, in_range, b->len);
		emit_mov_rr(b, true, R10, R11);
		emit_rex(b, true, R10, 0, R10, false); /* imul r10, r10, sizeof(struct helper) */
		emit1(b, 0x69);
		emit_modrm_reg(b, R10, R10);
		emit4(b, (uint32_t)sizeof(struct helper));
		emit_mov_imm64(b, R9, (uint64_t)(uintptr_t)vm->helpers);
		emit_rex(b, true, R10, R10, R9, false); /* mov r10, [r9 + r10] */
		emit1(b, 0x8b);
		emit1(b, (uint8_t)(0x04 | (R10 & 7) << 3));
		emit1(b, (uint8_t)((R10 & 7) << 3 | (R9 & 7)));
		emit_rr(b, 0x85, true, R10, R10);
		uint32_t known = emit_jcc32(b, CC_NE);
		emit_fault(st, code);
		patch_rel32(b, known, b->len);
		emit_push(b, R11);
		emit_push(b, R11);
		emit_mem(b, 0x8d, true, R9, RBP, -BPFTIME_STACK_SIZE); /* frame bottom, for helpers */
		emit_mem(b, 0x89, true, R9, R12, JIT_CTX_FRAME_LO);
		emit_call_reg(b, R10);
		emit_pop(b, R11);
		emit_pop(b, R11);
		if (vm->unwind_id >= 0) {
			emit_alu_imm(b, 7, true, R11, (int32_t)vm->unwind_id);
			uint32_t other = emit_jcc32(b, CC_NE);
			emit_unwind_check(st);
			patch_rel32(b, other, b->len);
		}
		return;
	}
	if (in->src == CALL_LOCAL) {
		/* The depth is where rbp is: frame d starts 512 * d bytes below the main one's (a
		 * load and a compare, where a counter in memory would chain every call to the last). */
		emit_mem(b, 0x8b, true, R11, R12, JIT_CTX_STACK_TOP); /* r11 = stack_top - rbp */
		emit_rr(b, 0x29, true, R11, RBP);
		emit_alu_imm(b, 7, true, R11, BPFTIME_STACK_SIZE * (BPFTIME_MAX_CALL_FRAMES - 1));
		add_cold_fault(st, emit_jcc32(b, CC_AE), fault_code(pc, JF_DEPTH, 0)); /* out of line */
		add_fixup(st, emit_call32(b), pc + 1 + in->imm, FIX_SUB);
		return;
	}
	if (st->facts.has_frame_dst[pc] &&
	    jit_emit_probe_read(&st->reads, b, vm, in->imm, st->facts.frame_dst[pc].size))
		return;
	if (st->facts.lookup[pc] && emit_inline_lookup(st, pc))
		return; /* (no run end needed for it: only plain maps are looked up inline) */
	for (uint32_t i = 0; i < vm->n_run_end_helpers; i++)
		st->run_end_calls |= (uint32_t)in->imm == vm->run_end_helpers[i];
	uint32_t cached = jit_emit_pid_tgid_cached(b, &vm->pid_tgid, vm->code[pc].k);
	bool safe = (uint32_t)in->imm < vm->nhelpers && vm->helpers[in->imm].vector_safe;
	st->hot_calls += cached == 0 && !safe;
	st->direct_calls += st->gate == NULL && !safe;
	emit_frame_for_helper(st);
	jit_emit_helper_call(b, vm->code[pc].k, safe ? NULL : st->gate);
	if (cached)
		patch_rel32(b, cached, b->len);
	if (in->imm == vm->unwind_id)
		emit_unwind_check(st);
	if (in->imm == TAIL_CALL_HELPER) { /* the next program ran: stop with its r0 */
		emit_rex(b, true, 0, 0, R12, false); /* cmp qword [r12+faulted], 3 */
		emit1(b, 0x83);
		emit_modrm_mem(b, 7, R12, JIT_CTX_FAULTED);
		emit1(b, RUN_TAIL_CALLED);
		jcc_label(st, CC_E, L_UNWIND);
	}
}

/* Frames up to this size are cleared inline with general registers (no vector register used). */
#define ZERO_FRAME_INLINE_MAX 64

/* Clears the `bytes` (a multiple of 16) below rbp; clobbers r11 (and xmm0 past the inline size). */
static void emit_zero_frame(struct jit_state *st, uint32_t bytes)
{
	if (bytes == 0)
		return;
	if (bytes <= ZERO_FRAME_INLINE_MAX) {
		emit_rr(&st->b, 0x31, false, R11, R11);
		for (uint32_t off = 8; off <= bytes; off += 8)
			emit_mem(&st->b, 0x89, true, R11, RBP, -(int32_t)off);
		return;
	}
	emit_mov_imm64(&st->b, R11, (uint64_t)-(int64_t)bytes);
	add_fixup(st, emit_call32(&st->b), L_ZERO_FRAME, FIX_LABEL);
}

/*
 * A subprogram saves the host registers of eBPF r6-r9 that it mentions (its caller's values must
 * survive the call), and pads its frame to keep rsp 16-byte aligned for helper calls.
 */
static const int SUB_SAVED[4] = {RBX, R13, R14, R15};
static uint8_t sub_saved_mask(const struct jit_state *st, uint32_t start)
{
	uint8_t mask = 0;
	for (uint32_t pc = start; pc < st->n && (pc == start || !st->shape.sub_start[pc]); pc++) {
		const struct bpf_insn *in = &st->insns[pc];
		for (int r = 6; r <= 9; r++)
			if (in->dst == r || in->src == r)
				mask |= (uint8_t)(1u << (r - 6));
		if (in->code == LDDW_CODE)
			pc++;
	}
	return mask;
}

static bool sub_pad(uint8_t mask)
{
	return __builtin_popcount(mask) % 2 == 0;
}

static void emit_sub_prologue(struct jit_state *st, uint32_t bytes)
{
	struct x86_buf *b = &st->b;
	for (int i = 0; i < 4; i++)
		if (st->sub_saved >> i & 1)
			emit_push(b, SUB_SAVED[i]);
	if (sub_pad(st->sub_saved))
		emit_alu_imm(b, 5, true, RSP, 8);
	emit_alu_imm(b, 5, true, RBP, BPFTIME_STACK_SIZE);
	emit_zero_frame(st, bytes);
}

static void emit_sub_epilogue(struct jit_state *st)
{
	struct x86_buf *b = &st->b;
	emit_alu_imm(b, 0, true, RBP, BPFTIME_STACK_SIZE);
	if (sub_pad(st->sub_saved))
		emit_alu_imm(b, 0, true, RSP, 8);
	for (int i = 3; i >= 0; i--)
		if (st->sub_saved >> i & 1)
			emit_pop(b, SUB_SAVED[i]);
	emit1(b, 0xc3);
}

/*
 * Host callee-saved registers the main entry saves: rbp (r10) and r12 (the
 * run context) always; rbx and r13-r15 (r6-r9) when the program uses them.
 * Either way an even number, so the frame keeps its 16-byte alignment.
 */
static const int MAIN_SAVED[] = {RBP, R12, RBX, R13, R14, R15};
static int main_saved_count(const struct jit_state *st)
{
	return st->uses_r6_r9 ? 6 : 2;
}

static void emit_main_prologue(struct jit_state *st, uint32_t bytes)
{
	struct x86_buf *b = &st->b;
	for (int i = 0; i < main_saved_count(st); i++)
		emit_push(b, MAIN_SAVED[i]);
	emit_mov_rr(b, true, R12, RDX);
	emit_alu_imm(b, 5, true, RSP, STACK_AREA + 8);
	emit_mem(b, 0x89, true, RSP, R12, JIT_CTX_SAVED_RSP);
	emit_mem(b, 0x8d, true, RBP, RSP, STACK_AREA);
	emit_mem(b, 0x89, true, RBP, R12, JIT_CTX_STACK_TOP);
	emit_zero_frame(st, bytes);
	static const int zeroed[] = {RAX, RDX, RCX, R8, RBX, R13, R14, R15};
	for (int i = 0; i < (st->uses_r6_r9 ? 8 : 4); i++)
		emit_rr(b, 0x31, false, zeroed[i], zeroed[i]);
}

static void emit_stubs(struct jit_state *st, uint64_t slow_check)
{
	struct x86_buf *b = &st->b;
	st->label[L_EPILOGUE] = b->len;
	if (st->budget_r9)
		emit_mem(b, 0x89, true, R9, R12, JIT_CTX_BUDGET);
	emit_alu_imm(b, 0, true, RSP, STACK_AREA + 8);
	for (int i = main_saved_count(st) - 1; i >= 0; i--)
		emit_pop(b, MAIN_SAVED[i]);
	emit1(b, 0xc3);

	st->label[L_UNWIND] = b->len;
	emit_mem(b, 0x8b, true, RSP, R12, JIT_CTX_SAVED_RSP);
	emit_rr(b, 0x31, false, RAX, RAX);
	jmp_label(st, L_EPILOGUE);

	st->label[L_FAULT] = b->len;
	emit_mem(b, 0x8b, true, RSP, R12, JIT_CTX_SAVED_RSP);
	emit_mem(b, 0x89, true, R11, R12, JIT_CTX_FAULT_ADDR);
	emit_mem(b, 0x89, true, R10, R12, JIT_CTX_FAULT_CODE);
	emit_rex(b, true, 0, 0, R12, false); /* mov qword [r12+faulted], 1 */
	emit1(b, 0xc7);
	emit_modrm_mem(b, 0, R12, JIT_CTX_FAULTED);
	emit4(b, 1);
	jmp_label(st, L_EPILOGUE);

	/* Slow bounds check: r11 = address, r10 = fault code; returns or faults. */
	st->label[L_SLOW_CHECK] = b->len;
	static const int keep[] = {RAX, RCX, RDX, RSI, RDI, R8, R9, R10, R11};
	for (int i = 0; i < 9; i++)
		emit_push(b, keep[i]);
	emit_mov_rr(b, true, RDI, R12);
	emit_mov_rr(b, true, RSI, R11);
	emit_mov_rr(b, true, RDX, R10);
	emit_mov_rr(b, true, RCX, RBP);
	emit_mov_imm64(b, RAX, slow_check);
	emit_call_reg(b, RAX);
	emit_rr(b, 0x85, false, RAX, RAX);
	for (int i = 8; i >= 1; i--)
		emit_pop(b, keep[i]);
	jcc_label(st, CC_E, L_FAULT);
	emit_pop(b, RAX);
	emit1(b, 0xc3);

	/* Zero [rbp+r11, rbp) for r11 = -bytes; clobbers r11 and xmm0 only. */
	st->label[L_ZERO_FRAME] = b->len;
	emit1(b, 0x0f); /* xorps xmm0, xmm0 */
	emit1(b, 0x57);
	emit1(b, 0xc0);
	uint32_t loop = b->len;
	static const uint8_t movups[] = {0x42, 0x0f, 0x11, 0x44, 0x1d, 0x00}; /* [rbp+r11], xmm0 */
	emit_bytes(b, movups, sizeof(movups));
	emit_alu_imm(b, 0, true, R11, 16);
	patch_rel32(b, emit_jcc32(b, CC_NE), loop);
	emit1(b, 0xc3);
}

/*
 * Entry points for callbacks (bpf_loop and friends): the main prologue, r1-r5
 * loaded from the args array (first argument), then a call of the subprogram.
 */
static void emit_callback_entries(struct jit_state *st)
{
	struct x86_buf *b = &st->b;
	st->ncallbacks = 0;
	for (uint32_t pc = 1; pc < st->n; pc++) {
		if (!st->shape.callback[pc])
			continue;
		if (st->ncallbacks < JIT_MAX_CALLBACKS) {
			st->cb_pc[st->ncallbacks] = pc;
			st->cb_off[st->ncallbacks++] = b->len;
		}
		emit_main_prologue(st, 0);
		emit_mov_rr(b, true, R11, RDI);
		static const int args[5] = {RDI, RSI, RDX, RCX, R8};
		for (int i = 0; i < 5; i++)
			emit_mem(b, 0x8b, true, args[i], R11, 8 * i);
		add_fixup(st, emit_call32(b), pc, FIX_SUB);
		jmp_label(st, L_EPILOGUE);
	}
}

static int compile_into(struct jit_state *st)
{
	struct x86_buf *b = &st->b;
	st->reads.n = 0;
	for (uint32_t pc = 0; pc < st->n; pc++)
		st->uses_r6_r9 |= (st->insns[pc].dst >= 6 && st->insns[pc].dst <= 9) ||
				  (st->insns[pc].src >= 6 && st->insns[pc].src <= 9);
	st->budget_r9 = budget_in_r9(st);
	emit_main_prologue(st, st->shape.zero_bytes[0]);
	if (st->budgeted && st->shape.counted)
		emit_budget_reset(st);
	st->ctx_fast = false;
	st->insn_base = 0;
	uint32_t to_fast = emit_ctx_dispatch(st), end = st->n;
again: /* the whole program; then, if to_fast, the main program's unchecked copy */
	for (uint32_t pc = 0; pc < end; pc++) {
		const struct bpf_insn *in = &st->insns[pc];
		if (st->shape.sub_start[pc] && pc != 0) {
			st->sub_entry[pc] = b->len;
			st->sub_saved = sub_saved_mask(st, pc);
			emit_sub_prologue(st, st->shape.zero_bytes[pc]);
		}
		st->insn_off[st->insn_base + pc] = b->len;
		if (st->budgeted && st->shape.charge[pc])
			emit_charge(st, pc, st->shape.charge[pc]);
		uint8_t cls = BPF_CLASS(in->code);
		if (in->code == LDDW_CODE) {
			emit_mov_imm64(b, REG[in->dst], st->vm->code[pc].k);
			pc++;
			continue;
		}
		switch (cls) {
		case CLS_ALU:
		case CLS_ALU64:
			emit_alu(st, in);
			break;
		case CLS_LDX:
			emit_load(st, pc, in);
			break;
		case CLS_ST:
		case CLS_STX:
			if (BPF_MODE(in->code) == MODE_ATOMIC)
				emit_atomic(st, pc, in);
			else
				emit_store(st, pc, in);
			break;
		default: /* JMP, JMP32 */
			if (BPF_OP(in->code) == OP_EXIT) {
				if (st->shape.in_sub[pc])
					emit_sub_epilogue(st);
				else
					jmp_label(st, L_EPILOGUE);
			} else if (BPF_OP(in->code) == OP_CALL && cls == CLS_JMP) {
				emit_call(st, pc, in);
			} else {
				emit_jump(st, pc, in);
			}
		}
	}
	if (to_fast && !st->ctx_fast) {
		patch_rel32(b, to_fast, b->len);
		st->ctx_fast = true;
		st->insn_base = st->n + 1;
		for (end = 1; end < st->n && !st->shape.sub_start[end];)
			end++;
		goto again;
	}
	st->ctx_fast = false;
	st->insn_base = 0;
	emit_cold_paths(st);
	jit_emit_read_fixups(&st->reads, b);
	emit_stubs(st, (uint64_t)(uintptr_t)jit_slow_check);
	emit_callback_entries(st);
	if (b->overflow || st->failed || st->reads.failed)
		return -1;
	for (uint32_t i = 0; i < st->nfix; i++) {
		const struct fixup *f = &st->fix[i];
		uint32_t target = f->kind == FIX_INSN ? st->insn_off[f->target]
				  : f->kind == FIX_SUB ? st->sub_entry[f->target]
						       : st->label[f->target];
		patch_rel32(b, f->at, target);
	}
	return 0;
}

/* Whether the compiled code leaves every vector register alone (see jit_code.vector_clean). */
static bool vector_clean(const struct jit_state *st)
{
	if (st->direct_calls) /* a helper (or callx) called directly: C and libc code */
		return false;
	for (uint32_t pc = 0; pc < st->n; pc++) {
		const struct bpf_insn *in = &st->insns[pc];
		if (in->code == LDDW_CODE) {
			pc++;
			continue;
		}
		if (st->shape.zero_bytes[pc] > ZERO_FRAME_INLINE_MAX)
			return false;
	}
	return true;
}

/*
 * Whether calling the program's helpers through the gate beats saving the vector registers for
 * every run: its other code stays clear of them, and the one helper call that may run on a hot
 * path runs at most once per run (no back edge, subprogram or callback repeats it).
 */
static bool gate_pays(const struct jit_state *st)
{
	if (!vm_helper_gate() || !st->direct_calls || st->callx || st->hot_calls > 1 || st->ncallbacks)
		return false;
	for (uint32_t pc = 0; pc < st->n; pc++) {
		const struct bpf_insn *in = &st->insns[pc];
		if (in->code == LDDW_CODE) {
			pc++;
			continue;
		}
		uint8_t cls = BPF_CLASS(in->code), op = BPF_OP(in->code);
		if (st->shape.zero_bytes[pc] > ZERO_FRAME_INLINE_MAX)
			return false;
		if (cls != CLS_JMP && cls != CLS_JMP32)
			continue;
		if (op == OP_CALL || op == OP_EXIT) {
			if (cls == CLS_JMP && op == OP_CALL && in->src == CALL_LOCAL)
				return false; /* a subprogram may run more than once */
			continue;
		}
		int32_t off = cls == CLS_JMP32 && op == OP_JA ? in->imm : in->off; /* gotol: imm */
		if (off < 0)
			return false; /* a back edge */
	}
	return true;
}

void jit_release(struct bpftime_vm *vm)
{
	fault_fixup_release(vm->jit_fault_slot); /* before the code (and its table) goes */
	vm->jit_fault_slot = 0;
	if (vm->jit.code)
		munmap(vm->jit.code, vm->jit.size);
	vm->jit.code = NULL;
	vm->jit.size = 0;
}

int jit_compile(struct bpftime_vm *vm, bool budgeted)
{
	uint64_t start = vm_now_ns();
	struct jit_state st = {.vm = vm, .insns = vm->insns, .n = vm->ninsns, .budgeted = budgeted};
	int rc = -1;
	st.insn_off = calloc(2 * ((size_t)vm->ninsns + 1), sizeof(uint32_t)); /* 2: see ctx_fast */
	st.sub_entry = calloc(vm->ninsns + 1, sizeof(uint32_t));
	if (!st.insn_off || !st.sub_entry || program_shape_analyse(&st.shape, vm->insns, vm->ninsns) < 0 ||
	    pointer_facts_analyse(&st.facts, vm, &st.shape) < 0) {
		set_error("JIT: out of memory analysing %u instructions", vm->ninsns);
		goto out;
	}
	size_t cap = (size_t)vm->ninsns * 96 + 1024;
	for (int attempt = 0; attempt < 3; attempt++, cap *= 2) {
		uint8_t *buf = malloc(cap);
		if (!buf) {
			set_error("JIT: out of memory for %zu bytes of code", cap);
			goto out;
		}
		st.b = (struct x86_buf){buf, 0, (uint32_t)cap, false};
		st.nfix = 0;
		st.ncold = 0;
		st.nspent = 0;
		st.failed = false;
		st.run_end_calls = st.callx = false;
		st.direct_calls = st.hot_calls = 0;
		int compiled = compile_into(&st);
		if (compiled == 0 && !st.gate && gate_pays(&st)) {
			/* Once more, in a buffer of the same size, with the helper calls gated. */
			free(buf);
			st.gate = vm_helper_gate();
			attempt--;
			cap /= 2;
			continue;
		}
		if (compiled == 0) {
			size_t size = (st.b.len + 4095) & ~(size_t)4095;
			/* The exception table follows the code, in the same read-only mapping. */
			size_t table_at = (st.b.len + 7) & ~(size_t)7;
			size_t table_bytes = st.reads.n * sizeof(struct fault_fixup);
			size = (table_at + table_bytes + 4095) & ~(size_t)4095;
			void *mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			if (mem == MAP_FAILED) {
				free(buf);
				set_error("JIT: cannot map %zu bytes of code", size);
				goto out;
			}
			memcpy(mem, buf, st.b.len);
			if (table_bytes)
				memcpy((uint8_t *)mem + table_at, st.reads.table, table_bytes);
			free(buf);
			if (mprotect(mem, size, PROT_READ | PROT_EXEC) != 0) {
				munmap(mem, size);
				set_error("JIT: cannot make code executable");
				goto out;
			}
			jit_release(vm);
			vm->jit = (struct jit_code){mem, size, budgeted, vm_now_ns() - start, st.ncallbacks, {0}, {0}, false, false};
			memcpy(vm->jit.cb_pc, st.cb_pc, sizeof(st.cb_pc));
			vm->jit.vector_clean = vector_clean(&st);
			vm->jit.run_end_calls = st.run_end_calls;
			memcpy(vm->jit.cb_off, st.cb_off, sizeof(st.cb_off));
			if (st.reads.n) {
				fault_fixup_publish(st.reads.slot, (uintptr_t)mem, st.b.len,
						    (const struct fault_fixup *)((uint8_t *)mem + table_at), st.reads.n);
				vm->jit_fault_slot = st.reads.slot;
			}
			rc = 0;
			goto out;
		}
		free(buf);
		if (st.failed) {
			set_error("JIT: out of memory");
			goto out;
		}
	}
	set_error("JIT: code for %u instructions does not fit", vm->ninsns);
out:
	program_shape_free(&st.shape);
	pointer_facts_free(&st.facts);
	free(st.insn_off);
	free(st.sub_entry);
	free(st.fix);
	free(st.cold);
	free(st.spent);
	jit_reads_free(&st.reads, rc == 0 && vm->jit_fault_slot == st.reads.slot);
	return rc;
}
