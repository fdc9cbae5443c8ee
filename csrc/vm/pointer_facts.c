/*
 * Pointer facts (pointer_facts.h): per register a kind and a range, joined at block entries
 * until nothing changes. Ranges are signed 64-bit intervals; INT64_MIN / INT64_MAX stand for
 * "unbounded", and a sum with an unbounded end (or that overflows) knows nothing, since the
 * machine's addition wraps around. A block entered again and again has its
 * ranges widened to the next constant the program compares with (or to unbounded), so loops
 * settle in a few rounds: `for (i = 0; i != 64; i++) buf[i]` keeps i in [0, 63].
 *
 * Soundness rules: only registers are followed (loads give unknown scalars); a scalar's range
 * holds for its value on every path; a helper call forgets r0-r5; a map value pointer comes
 * only from bpf_map_lookup_elem (the runtime's, checked by function) of a map an lddw names,
 * may be NULL until a null check, and registers that copy one result share its id, which a
 * new call at the same pc takes away from older copies first.
 *
 * Widening can overshoot a loop bound held in a register (`i < n` with n in [1, 65536]): once
 * settled, every block entry is computed again from its predecessors' settled states without
 * widening (a narrowing pass). That stays sound, since it only applies the transfer to states
 * that already hold on every path, and the branch conditions then take back what was lost.
 */
#include "pointer_facts.h"

#include <stdlib.h>
#include <string.h>

/* K_CTX: the main program's r1 at entry (the context block) plus an offset in [lo, hi]. */
enum kind { K_SCALAR = 0, K_STACK, K_MAP, K_VALUE, K_VALUE_OR_NULL, K_CTX };

struct fact {
	uint8_t kind;
	uint32_t aux; /* K_MAP: lddw pc; K_VALUE*: value size */
	uint32_t id;  /* K_VALUE_OR_NULL: call pc + 1 */
	int64_t lo, hi;
};

struct state {
	bool live;
	struct fact r[11];
};

#define NEG_INF INT64_MIN
#define POS_INF INT64_MAX
#define U32_MAX_ 0xffffffffll

static const struct fact TOP = {K_SCALAR, 0, 0, NEG_INF, POS_INF};

static struct fact scalar(int64_t lo, int64_t hi)
{
	return (struct fact){K_SCALAR, 0, 0, lo, hi};
}

static bool bounded(const struct fact *f)
{
	return f->lo != NEG_INF && f->hi != POS_INF;
}

static int64_t sat_add(int64_t a, int64_t b)
{
	if (a == NEG_INF || b == NEG_INF)
		return a == POS_INF || b == POS_INF ? 0 : NEG_INF; /* (inf - inf never arises below) */
	if (a == POS_INF || b == POS_INF)
		return POS_INF;
	int64_t r;
	if (__builtin_add_overflow(a, b, &r))
		return a > 0 ? POS_INF : NEG_INF;
	return r;
}

/* [a.lo + b.lo, a.hi + b.hi] (sign = 1) or [a.lo - b.hi, a.hi - b.lo] (sign = -1). */
static void add_range(struct fact *d, int64_t lo, int64_t hi, int sign)
{
	if (sign < 0) {
		int64_t nlo = hi == POS_INF ? NEG_INF : hi == NEG_INF ? POS_INF : -hi;
		int64_t nhi = lo == NEG_INF ? POS_INF : lo == POS_INF ? NEG_INF : -lo;
		lo = nlo, hi = nhi;
	}
	d->lo = d->lo == NEG_INF || lo == NEG_INF ? NEG_INF : sat_add(d->lo, lo);
	d->hi = d->hi == POS_INF || hi == POS_INF ? POS_INF : sat_add(d->hi, hi);
	/* An unbounded end can wrap around to the other: then nothing is known. */
	if (d->lo == NEG_INF || d->hi == POS_INF)
		d->lo = NEG_INF, d->hi = POS_INF;
}

static bool is_ptr(const struct fact *f)
{
	return f->kind != K_SCALAR;
}

static bool fact_eq(const struct fact *a, const struct fact *b)
{
	return a->kind == b->kind && a->aux == b->aux && a->id == b->id && a->lo == b->lo &&
	       a->hi == b->hi;
}

static struct fact join(const struct fact *a, const struct fact *b)
{
	if (a->kind != b->kind || a->aux != b->aux || a->id != b->id)
		return TOP;
	struct fact f = *a;
	f.lo = a->lo < b->lo ? a->lo : b->lo;
	f.hi = a->hi > b->hi ? a->hi : b->hi;
	return f;
}

struct analysis {
	const struct bpftime_vm *vm;
	const struct bpf_insn *insns;
	uint32_t n;
	const struct program_shape *shape;
	int64_t *thresholds; /* sorted constants the program compares with (and +-1) */
	uint32_t nthresholds;
	bool lookup_known; /* helper 1 is the runtime's bpf_map_lookup_elem */
};

/* Index of the first threshold >= v (nthresholds when none is). */
static uint32_t first_at_least(const struct analysis *a, int64_t v)
{
	uint32_t lo = 0, hi = a->nthresholds;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (a->thresholds[mid] < v)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* The largest threshold <= v (or unbounded). */
static int64_t widen_down(const struct analysis *a, int64_t v)
{
	uint32_t i = first_at_least(a, v);
	if (i < a->nthresholds && a->thresholds[i] == v)
		return v;
	return i == 0 ? NEG_INF : a->thresholds[i - 1];
}

/* The smallest threshold >= v (or unbounded). */
static int64_t widen_up(const struct analysis *a, int64_t v)
{
	uint32_t i = first_at_least(a, v);
	return i < a->nthresholds ? a->thresholds[i] : POS_INF;
}

static int cmp_i64(const void *x, const void *y)
{
	int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
	return a < b ? -1 : a > b;
}

static int collect_thresholds(struct analysis *a)
{
	a->thresholds = malloc((3 * (size_t)a->n + 4) * sizeof(int64_t));
	if (!a->thresholds)
		return -1;
	uint32_t k = 0;
	a->thresholds[k++] = -1;
	a->thresholds[k++] = 0;
	a->thresholds[k++] = 1;
	for (uint32_t pc = 0; pc < a->n; pc++) {
		const struct bpf_insn *in = &a->insns[pc];
		if (in->code == LDDW_CODE) {
			pc++;
			continue;
		}
		uint8_t cls = BPF_CLASS(in->code), op = BPF_OP(in->code);
		if ((cls != CLS_JMP && cls != CLS_JMP32) || (in->code & BPF_SRC_REG) || op == OP_JA ||
		    op == OP_CALL || op == OP_EXIT)
			continue;
		a->thresholds[k++] = (int64_t)in->imm - 1;
		a->thresholds[k++] = in->imm;
		a->thresholds[k++] = (int64_t)in->imm + 1;
	}
	qsort(a->thresholds, k, sizeof(int64_t), cmp_i64);
	uint32_t u = 0;
	for (uint32_t i = 0; i < k; i++)
		if (u == 0 || a->thresholds[u - 1] != a->thresholds[i])
			a->thresholds[u++] = a->thresholds[i];
	a->nthresholds = u;
	return 0;
}

static int64_t access_size(uint8_t code)
{
	return BPF_SIZE(code) == SZ_B ? 1 : BPF_SIZE(code) == SZ_H ? 2 : BPF_SIZE(code) == SZ_W ? 4 : 8;
}

/* Whether [base + off, + size) stays in the frame or in one map value for every value of base. */
static bool access_proven(const struct fact *f, int16_t off, int64_t size)
{
	if (!bounded(f) || (f->kind != K_STACK && f->kind != K_VALUE))
		return false;
	int64_t lo = f->lo + off, hi = f->hi + off + size;
	if (f->kind == K_STACK)
		return lo >= -BPFTIME_STACK_SIZE && hi <= 0;
	return lo >= 0 && hi <= (int64_t)f->aux;
}

/* Context bytes [base + off, + size) needs for every value of base, or 0 when unknown. */
static uint64_t ctx_need(const struct fact *f, int16_t off, int64_t size)
{
	if (f->kind != K_CTX || !bounded(f) || f->lo + off < 0 || f->hi > INT32_MAX)
		return 0;
	int64_t end = f->hi + off + size;
	return end > 0 && end <= INT32_MAX ? (uint64_t)end : 0;
}

static void note_ctx(struct pointer_facts *pf, uint32_t pc, const struct fact *f, int16_t off,
		     int64_t size, bool store)
{
	uint64_t need = ctx_need(f, off, size);
	if (!need)
		return;
	pf->ctx_proven[pc] = 1;
	uint64_t *max = store ? &pf->ctx_need_store : &pf->ctx_need_load;
	if (need > *max)
		*max = need;
}

static bool in_u32(const struct fact *f)
{
	return f->kind == K_SCALAR && f->lo >= 0 && f->hi <= U32_MAX_;
}

/* dst op= (lo, hi) for scalars; result TOP when the operation is not one followed here. */
static struct fact scalar_alu(uint8_t op, bool wide, const struct fact *d, int64_t lo, int64_t hi)
{
	if ((op == OP_LSH || op == OP_RSH) && lo == hi)
		lo = hi = lo & (wide ? 63 : 31); /* shift counts are masked */
	switch (op) {
	case OP_ADD:
	case OP_SUB: {
		struct fact r = *d;
		add_range(&r, lo, hi, op == OP_ADD ? 1 : -1);
		return r;
	}
	case OP_AND:
		if (lo >= 0 && lo == hi) /* x & c: [0, c] */
			return scalar(0, d->lo >= 0 && d->hi < hi ? d->hi : hi);
		if (lo >= 0 && hi != POS_INF)
			return scalar(0, hi);
		if (d->lo >= 0 && d->hi != POS_INF)
			return scalar(0, d->hi);
		return TOP;
	case OP_RSH:
		if (lo == hi && lo == 0)
			return *d;
		if (lo != hi)
			return TOP;
		if (d->lo >= 0)
			return scalar(d->lo >> lo, d->hi == POS_INF ? POS_INF >> lo : d->hi >> lo);
		return scalar(0, (int64_t)(UINT64_MAX >> lo));
	case OP_LSH:
		if (lo == hi && lo >= 0 && lo < 62 && d->lo >= 0 && bounded(d) && d->hi < (1ll << (62 - lo)))
			return scalar(d->lo << lo, d->hi << lo);
		return TOP;
	case OP_MUL:
		if (lo == hi && lo >= 0 && lo < (1 << 20) && d->lo >= 0 && bounded(d) && d->hi < (1ll << 40))
			return scalar(d->lo * lo, d->hi * lo);
		return TOP;
	case OP_MOD:
		if (lo == hi && lo > 0)
			return d->lo >= 0 && d->hi < lo ? *d : scalar(0, lo - 1);
		return TOP;
	case OP_DIV:
		if (lo == hi && lo > 0 && d->lo >= 0 && bounded(d))
			return scalar(d->lo / lo, d->hi / lo);
		return TOP;
	default:
		return TOP;
	}
}

static void alu(struct state *s, const struct bpf_insn *in)
{
	bool wide = BPF_CLASS(in->code) == CLS_ALU64, reg = in->code & BPF_SRC_REG;
	uint8_t op = BPF_OP(in->code);
	struct fact *d = &s->r[in->dst];
	struct fact src = reg ? s->r[in->src]
			      : scalar(wide ? (int64_t)in->imm : (int64_t)(uint32_t)in->imm,
				       wide ? (int64_t)in->imm : (int64_t)(uint32_t)in->imm);
	if (op == OP_DIV || op == OP_MOD) {
		if (in->off != 0) { /* signed division */
			*d = wide ? TOP : scalar(0, U32_MAX_);
			return;
		}
	}
	if (op == OP_MOV) {
		if (in->off != 0) /* movsx */
			*d = wide ? TOP : scalar(0, U32_MAX_);
		else if (wide)
			*d = src;
		else
			*d = in_u32(&src) ? src : scalar(0, U32_MAX_);
		return;
	}
	if (op == OP_END) { /* byte swaps (to_be 64 in the 32-bit class too) */
		*d = TOP;
		return;
	}
	if (!wide) {
		if (in_u32(d) && in_u32(&src) && op != OP_SUB && op != OP_END) {
			struct fact r = scalar_alu(op, false, d, src.lo, src.hi);
			*d = in_u32(&r) ? r : scalar(0, U32_MAX_);
		} else {
			*d = scalar(0, U32_MAX_);
		}
		return;
	}
	if (is_ptr(d) || is_ptr(&src)) {
		/* pointer +- scalar keeps the pointer; anything else is an unknown scalar
		 * (a pointer & mask still gives [0, mask]). */
		if (is_ptr(d) && !is_ptr(&src) && (op == OP_ADD || op == OP_SUB) &&
		    (d->kind == K_STACK || d->kind == K_VALUE || d->kind == K_CTX)) {
			add_range(d, src.lo, src.hi, op == OP_ADD ? 1 : -1);
		} else if (op == OP_ADD && !is_ptr(d) &&
			   (src.kind == K_STACK || src.kind == K_VALUE || src.kind == K_CTX)) {
			struct fact r = src;
			add_range(&r, d->lo, d->hi, 1);
			*d = r;
		} else if (op == OP_AND && !is_ptr(&src) && src.lo >= 0 && src.lo == src.hi) {
			*d = scalar(0, src.hi);
		} else {
			*d = TOP;
		}
		return;
	}
	*d = scalar_alu(op, true, d, src.lo, src.hi);
}

/* Narrows a scalar for `x op c` being `taken` (or not); false when that edge cannot happen. */
static bool refine(struct fact *f, uint8_t op, int64_t c, bool taken)
{
	if (f->kind != K_SCALAR)
		return true;
	bool unsigned_ok = f->lo >= 0 && c >= 0;
	int64_t lo = f->lo, hi = f->hi;
	/* Express everything as "x in [a, b]" or "x != c". */
	switch (op) {
	case OP_JEQ:
	case OP_JNE:
		if ((op == OP_JEQ) == taken) {
			lo = lo > c ? lo : c;
			hi = hi < c ? hi : c;
		} else {
			if (lo == c && hi != POS_INF)
				lo = c + 1;
			if (hi == c && lo != NEG_INF)
				hi = c - 1;
		}
		break;
	case OP_JGT: case OP_JSGT: case OP_JLE: case OP_JSLE:
		if ((op == OP_JGT || op == OP_JLE) && !unsigned_ok) {
			/* x <=u c (c >= 0) holds only for x in [0, c], whatever the sign was. */
			if (c < 0 || (op == OP_JGT) == taken)
				return true;
			lo = lo > 0 ? lo : 0;
			hi = hi < c ? hi : c;
			break;
		}
		if ((op == OP_JGT || op == OP_JSGT) == taken) { /* x > c */
			if (c == POS_INF)
				return false;
			lo = lo > c + 1 ? lo : c + 1;
		} else {
			hi = hi < c ? hi : c;
		}
		break;
	case OP_JGE: case OP_JSGE: case OP_JLT: case OP_JSLT:
		if ((op == OP_JGE || op == OP_JLT) && !unsigned_ok) {
			/* x <u c (c >= 0): x in [0, c - 1] */
			if (c < 0 || (op == OP_JGE) == taken)
				return true;
			lo = lo > 0 ? lo : 0;
			hi = hi < c - 1 ? hi : c - 1;
			break;
		}
		if ((op == OP_JGE || op == OP_JSGE) == taken) { /* x >= c */
			lo = lo > c ? lo : c;
		} else {
			if (c == NEG_INF)
				return false;
			hi = hi < c - 1 ? hi : c - 1;
		}
		break;
	default:
		return true;
	}
	if (lo > hi)
		return false;
	f->lo = lo;
	f->hi = hi;
	return true;
}

/* x < y (strict) or x <= y, signed or unsigned: narrows both; false when that cannot hold. */
static bool refine_less(struct fact *x, struct fact *y, bool strict, bool is_unsigned)
{
	int64_t k = strict ? 1 : 0;
	if (is_unsigned) {
		/* x <=u y - k <= y.hi - k for y in [0, y.hi]: x in [0, y.hi - k], whatever its sign. */
		if (y->lo >= 0 && y->hi != POS_INF) {
			if (y->hi - k < 0)
				return false;
			x->lo = x->lo > 0 ? x->lo : 0;
			x->hi = x->hi < y->hi - k ? x->hi : y->hi - k;
		}
		/* y >=u x + k >= x.lo + k, as signed too when y is not negative. */
		if (x->lo >= 0 && y->lo >= 0 && x->lo != POS_INF && y->lo < x->lo + k)
			y->lo = x->lo + k;
	} else {
		if (y->hi != POS_INF && y->hi != NEG_INF && x->hi > y->hi - k)
			x->hi = y->hi - k;
		if (x->lo != NEG_INF && x->lo != POS_INF && y->lo < x->lo + k)
			y->lo = x->lo + k;
	}
	return x->lo <= x->hi && y->lo <= y->hi;
}

/* Narrows two scalars for `d op s` being `taken` (or not); false when that edge cannot happen. */
static bool refine_pair(struct fact *d, struct fact *s, uint8_t op, bool taken)
{
	bool u = op == OP_JGT || op == OP_JGE || op == OP_JLT || op == OP_JLE;
	switch (op) {
	case OP_JEQ:
	case OP_JNE:
		if ((op == OP_JEQ) != taken)
			return true;
		d->lo = s->lo = d->lo > s->lo ? d->lo : s->lo;
		d->hi = s->hi = d->hi < s->hi ? d->hi : s->hi;
		return d->lo <= d->hi;
	case OP_JGT: case OP_JSGT: /* d > s, or d <= s */
		return taken ? refine_less(s, d, true, u) : refine_less(d, s, false, u);
	case OP_JGE: case OP_JSGE: /* d >= s, or d < s */
		return taken ? refine_less(s, d, false, u) : refine_less(d, s, true, u);
	case OP_JLT: case OP_JSLT:
		return taken ? refine_less(d, s, true, u) : refine_less(s, d, false, u);
	case OP_JLE: case OP_JSLE:
		return taken ? refine_less(d, s, false, u) : refine_less(s, d, true, u);
	default:
		return true;
	}
}

/* The state along one edge of a conditional jump at in; false when that edge cannot happen. */
static bool branch(struct state *s, const struct bpf_insn *in, bool taken)
{
	uint8_t op = BPF_OP(in->code);
	bool wide = BPF_CLASS(in->code) == CLS_JMP;
	struct fact *d = &s->r[in->dst];
	int64_t c;
	if (in->code & BPF_SRC_REG) {
		struct fact *src = &s->r[in->src];
		if (src->kind != K_SCALAR)
			return true;
		if (src->lo != src->hi) {
			/* Two registers: JMP32 compares the low halves, the same for values in [0, 2^31). */
			if (d->kind != K_SCALAR || in->dst == in->src ||
			    (!wide && !(d->lo >= 0 && d->hi <= INT32_MAX && src->lo >= 0 &&
					src->hi <= INT32_MAX)))
				return true;
			return refine_pair(d, src, op, taken);
		}
		c = src->lo;
	} else {
		c = wide ? (int64_t)in->imm : (int64_t)(uint32_t)in->imm;
	}
	if (d->kind == K_VALUE_OR_NULL && wide && c == 0 && (op == OP_JEQ || op == OP_JNE)) {
		bool null = (op == OP_JEQ) == taken;
		uint32_t id = d->id;
		for (int i = 0; i < 11; i++) {
			struct fact *f = &s->r[i];
			if (f->kind == K_VALUE_OR_NULL && f->id == id) {
				if (null)
					*f = scalar(0, 0);
				else
					f->kind = K_VALUE, f->id = 0;
			}
		}
		return true;
	}
	/* JMP32 compares the low halves: the same as 64 bits for values in [0, 2^31). */
	if (!wide && !(d->kind == K_SCALAR && d->lo >= 0 && d->hi <= INT32_MAX && c >= 0 && c <= INT32_MAX))
		return true;
	return refine(d, op, c, taken);
}

static void call(const struct analysis *a, struct state *s, uint32_t pc, const struct bpf_insn *in)
{
	struct fact r0 = TOP;
	if (in->code == 0x85 && in->src == CALL_HELPER && in->imm == 1 && a->lookup_known &&
	    s->r[1].kind == K_MAP) {
		const struct bpf_insn *ld = &a->insns[s->r[1].aux];
		int64_t size = a->vm->value_size_fn(a->vm->value_size_ctx, (uint32_t)ld->imm);
		if (size > 0 && size <= INT32_MAX) {
			/* Older copies of this call's result are other values now. */
			for (int i = 0; i < 11; i++)
				if (s->r[i].kind == K_VALUE_OR_NULL && s->r[i].id == pc + 1)
					s->r[i] = TOP;
			r0 = (struct fact){K_VALUE_OR_NULL, (uint32_t)size, pc + 1, 0, 0};
		}
	}
	for (int i = 1; i <= 5; i++)
		s->r[i] = TOP;
	s->r[0] = r0;
}

/* A call with r1 a frame pointer and r2 a constant size that fits where r1 points. */
static void note_frame_dst(const struct state *s, uint32_t pc, struct pointer_facts *pf)
{
	const struct fact *dst = &s->r[1], *size = &s->r[2];
	if (dst->kind != K_STACK || !bounded(dst) || size->kind != K_SCALAR || size->lo != size->hi ||
	    size->lo <= 0 || size->lo > BPFTIME_STACK_SIZE || dst->lo < -BPFTIME_STACK_SIZE ||
	    dst->hi + size->lo > 0)
		return;
	pf->has_frame_dst[pc] = 1;
	pf->frame_dst[pc] = (struct frame_dst_site){(int32_t)dst->lo, (int32_t)dst->hi, (uint32_t)size->lo};
}

/*
 * Runs the instruction at pc on s (for a conditional jump, the fall-through edge). When pf is
 * given, records what the JIT needs at pc.
 */
static void step(const struct analysis *a, struct state *s, uint32_t pc, struct pointer_facts *pf)
{
	const struct bpf_insn *in = &a->insns[pc];
	uint8_t cls = BPF_CLASS(in->code), mode = BPF_MODE(in->code);
	if (in->code == LDDW_CODE) {
		struct fact *d = &s->r[in->dst];
		*d = TOP;
		if (in->src == 0) {
			int64_t k = (int64_t)((uint64_t)(uint32_t)in->imm | (uint64_t)a->insns[pc + 1].imm << 32);
			*d = scalar(k, k);
		} else if (in->src == 1 && a->vm->value_size_fn) {
			*d = (struct fact){K_MAP, pc, 0, 0, 0};
		} else if (in->src == 2 && a->vm->value_size_fn) {
			int64_t size = a->vm->value_size_fn(a->vm->value_size_ctx, (uint32_t)in->imm);
			int64_t off = (uint32_t)a->insns[pc + 1].imm;
			if (size > 0 && size <= INT32_MAX)
				*d = (struct fact){K_VALUE, (uint32_t)size, 0, off, off};
		}
		return;
	}
	switch (cls) {
	case CLS_ALU:
	case CLS_ALU64:
		alu(s, in);
		return;
	case CLS_LDX:
		if (pf) {
			pf->proven[pc] = access_proven(&s->r[in->src], in->off, access_size(in->code));
			note_ctx(pf, pc, &s->r[in->src], in->off, access_size(in->code), false);
		}
		if (mode == MODE_MEMSX) {
			int64_t half = 1ll << (access_size(in->code) * 8 - 1);
			s->r[in->dst] = scalar(-half, half - 1);
		} else {
			int64_t size = access_size(in->code);
			s->r[in->dst] = size == 8 ? TOP : scalar(0, (1ll << (size * 8)) - 1);
		}
		return;
	case CLS_ST:
	case CLS_STX:
		if (mode == MODE_ATOMIC) {
			if (in->imm & ATOMIC_FETCH)
				s->r[in->imm == ATOMIC_CMPXCHG ? 0 : in->src] = TOP;
			return;
		}
		if (pf && mode == MODE_MEM) {
			pf->proven[pc] = access_proven(&s->r[in->dst], in->off, access_size(in->code));
			note_ctx(pf, pc, &s->r[in->dst], in->off, access_size(in->code), true);
		}
		return;
	case CLS_LD: /* legacy packet access: r0 changes, r1-r5 as after a call */
		for (int i = 0; i <= 5; i++)
			s->r[i] = TOP;
		return;
	default:
		break;
	}
	uint8_t op = BPF_OP(in->code);
	if (op == OP_CALL) {
		if (pf && in->code == 0x85 && in->src == CALL_HELPER && in->imm == 1 && a->lookup_known &&
		    s->r[1].kind == K_MAP && s->r[2].kind == K_STACK && bounded(&s->r[2]) &&
		    s->r[2].lo >= -BPFTIME_STACK_SIZE && s->r[2].hi <= 0) {
			pf->lookup[pc] = 1;
			pf->site[pc] = (struct lookup_site){s->r[1].aux, (int32_t)s->r[2].lo,
							   (int32_t)s->r[2].hi};
		}
		if (pf && in->code == 0x85 && in->src == CALL_HELPER)
			note_frame_dst(s, pc, pf);
		call(a, s, pc, in);
		return;
	}
	if (op != OP_JA && op != OP_EXIT)
		s->live = branch(s, in, false);
}

/* At a subprogram's entry; the main program's r1 is its context (a callback's r1 is not). */
static void entry_state(struct state *s, bool main)
{
	s->live = true;
	for (int i = 0; i < 11; i++)
		s->r[i] = TOP;
	s->r[10] = (struct fact){K_STACK, 0, 0, 0, 0};
	if (main)
		s->r[1] = (struct fact){K_CTX, 0, 0, 0, 0};
}

/* Joins `in` into block state *into (widened after a few rounds); true when it changed. */
static bool merge(const struct analysis *a, struct state *into, const struct state *in, bool widen)
{
	if (!in->live)
		return false;
	if (!into->live) {
		*into = *in;
		return true;
	}
	bool changed = false;
	for (int i = 0; i < 11; i++) {
		struct fact j = join(&into->r[i], &in->r[i]);
		if (widen && j.kind == into->r[i].kind) {
			if (j.lo < into->r[i].lo)
				j.lo = widen_down(a, j.lo);
			if (j.hi > into->r[i].hi)
				j.hi = widen_up(a, j.hi);
		}
		if (!fact_eq(&j, &into->r[i])) {
			into->r[i] = j;
			changed = true;
		}
	}
	return changed;
}

void pointer_facts_free(struct pointer_facts *pf)
{
	free(pf->proven);
	free(pf->ctx_proven);
	free(pf->lookup);
	free(pf->site);
	pf->proven = pf->ctx_proven = pf->lookup = NULL;
	pf->site = NULL;
	free(pf->has_frame_dst);
	free(pf->frame_dst);
	pf->has_frame_dst = NULL;
	pf->frame_dst = NULL;
}

/* Blocks, and where their entry states go while the facts settle. */
struct flow {
	const struct program_shape *shape;
	uint32_t nblocks;
	uint32_t *block_of, *block_pc;
	uint32_t *visits; /* merges into each block, for widening (NULL: never widen) */
	uint8_t *pending;
};

/*
 * Runs block b from state s and merges what leaves it into the entries of its successors in
 * `into` (widened after a few visits when f->visits is set); true when one of them changed.
 */
static bool flow_block(const struct analysis *a, const struct flow *f, uint32_t b, struct state s,
		       struct state *into)
{
	const struct program_shape *shape = f->shape;
	bool changed = false;
	uint32_t pc = f->block_pc[b];
	for (;;) {
		const struct bpf_insn *insn = &a->insns[pc];
		uint8_t cls = BPF_CLASS(insn->code), op = BPF_OP(insn->code);
		bool jmp = (cls == CLS_JMP || cls == CLS_JMP32) && op != OP_CALL && insn->code != LDDW_CODE;
		if (jmp && op != OP_EXIT) {
			int64_t t = (int64_t)pc + 1 + (op == OP_JA && cls == CLS_JMP32 ? insn->imm : insn->off);
			struct state taken = s;
			if (op == OP_JA || branch(&taken, insn, true)) {
				uint32_t tb = f->block_of[t];
				if (merge(a, &into[tb], &taken, f->visits && ++f->visits[tb] > 3))
					f->pending[tb] = 1, changed = true;
			}
		}
		step(a, &s, pc, NULL);
		pc += insn->code == LDDW_CODE ? 2 : 1;
		if (jmp && (op == OP_JA || op == OP_EXIT))
			break;
		if (!s.live || pc >= a->n)
			break;
		if (shape->block_start[pc]) {
			uint32_t nb = f->block_of[pc];
			if (!shape->sub_start[pc] &&
			    merge(a, &into[nb], &s, f->visits && ++f->visits[nb] > 3))
				f->pending[nb] = 1, changed = true;
			break;
		}
	}
	return changed;
}

/* Block entry states at subprogram starts, the rest not reached yet. */
static void entry_states(const struct flow *f, struct state *in)
{
	for (uint32_t b = 0; b < f->nblocks; b++) {
		in[b] = (struct state){0};
		if (f->shape->sub_start[f->block_pc[b]])
			entry_state(&in[b], f->block_pc[b] == 0);
	}
}

int pointer_facts_analyse(struct pointer_facts *pf, const struct bpftime_vm *vm,
			  const struct program_shape *shape)
{
	uint32_t n = vm->ninsns;
	*pf = (struct pointer_facts){.n = n};
	pf->proven = calloc(n + 1, 1);
	pf->ctx_proven = calloc(n + 1, 1);
	pf->lookup = calloc(n + 1, 1);
	pf->site = calloc(n + 1, sizeof(*pf->site));
	pf->has_frame_dst = calloc(n + 1, 1);
	pf->frame_dst = calloc(n + 1, sizeof(*pf->frame_dst));
	struct analysis a = {.vm = vm, .insns = vm->insns, .n = n, .shape = shape};
	a.lookup_known = vm->map_lookup_fn && vm->nhelpers > 1 && vm->helpers[1].fn == vm->map_lookup_fn &&
			 vm->value_size_fn;
	struct flow f = {.shape = shape};
	for (uint32_t pc = 0; pc < n; pc++)
		f.nblocks += shape->block_start[pc];
	uint32_t nblocks = f.nblocks;
	f.block_of = malloc((n + 1) * sizeof(uint32_t));
	f.block_pc = malloc((nblocks + 1) * sizeof(uint32_t));
	struct state *in = calloc(nblocks + 1, sizeof(*in));
	struct state *next = calloc(nblocks + 1, sizeof(*next));
	uint32_t *visits = calloc(nblocks + 1, sizeof(uint32_t));
	f.visits = visits;
	f.pending = calloc(nblocks + 1, 1);
	int rc = -1;
	if (!pf->proven || !pf->ctx_proven || !pf->lookup || !pf->site || !f.block_of || !f.block_pc ||
	    !in || !next || !visits || !f.pending || collect_thresholds(&a) < 0)
		goto out;
	if (!pf->has_frame_dst || !pf->frame_dst) /* (only the recording pass below writes them) */
		goto out;
	for (uint32_t pc = 0, b = 0; pc < n; pc++) {
		if (shape->block_start[pc])
			f.block_pc[b++] = pc;
		f.block_of[pc] = b - 1;
	}
	entry_states(&f, in);
	for (uint32_t b = 0; b < nblocks; b++)
		f.pending[b] = in[b].live;
	/* Sweeps in program order until no block entry changes (bounded, for huge programs). */
	uint64_t budget = (uint64_t)nblocks * 64 + 4096;
	for (bool again = true; again;) {
		again = false;
		for (uint32_t b = 0; b < nblocks; b++) {
			if (!f.pending[b])
				continue;
			f.pending[b] = 0;
			if (budget-- == 0) {
				rc = 0;
				goto out;
			}
			again |= flow_block(&a, &f, b, in[b], in);
		}
	}
	/* Narrowing (see the top of this file): two passes recompute every entry, when some block
	 * was widened (entered more than 3 times). */
	bool widened = false;
	for (uint32_t b = 0; b < nblocks; b++)
		widened |= visits[b] > 3;
	f.visits = NULL;
	for (int pass = 0; widened && pass < 2; pass++) {
		entry_states(&f, next);
		for (uint32_t b = 0; b < nblocks; b++)
			if (in[b].live)
				flow_block(&a, &f, b, in[b], next);
		struct state *t = in;
		in = next;
		next = t;
	}
	/* Settled: run each block once more, recording. */
	for (uint32_t b = 0; b < nblocks; b++) {
		if (!in[b].live)
			continue;
		struct state s = in[b];
		for (uint32_t pc = f.block_pc[b]; pc < n && s.live;) {
			const struct bpf_insn *insn = &vm->insns[pc];
			step(&a, &s, pc, pf);
			pc += insn->code == LDDW_CODE ? 2 : 1;
			if (pc < n && shape->block_start[pc])
				break;
		}
	}
	rc = 0;
out:
	if (rc < 0)
		pointer_facts_free(pf);
	free(a.thresholds);
	free(f.block_of);
	free(f.block_pc);
	free(in);
	free(next);
	free(visits);
	free(f.pending);
	return rc;
}
