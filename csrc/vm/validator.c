/*
 * The validator: structural checks run before any program is accepted.
 * Each refusal names the pc and the reason, in the spirit of the kernel
 * verifier's messages.
 */
#include "vm_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REFUSE(pc, ...)                                                                            \
	do {                                                                                       \
		char why_[400];                                                                    \
		snprintf(why_, sizeof(why_), __VA_ARGS__);                                         \
		set_error("pc %u: %s", (unsigned)(pc), why_);                                   \
		goto fail;                                                                         \
	} while (0)


static bool is_local_call(const struct bpf_insn *in)
{
	return in->code == 0x85 && in->src == CALL_LOCAL;
}

/* Whether the insn at pc jumps or calls locally; if so, *target is where. */
static bool branch_target(const struct bpf_insn *in, uint32_t pc, int64_t *target)
{
	uint8_t cls = BPF_CLASS(in->code), op = BPF_OP(in->code);
	if (cls != CLS_JMP && cls != CLS_JMP32)
		return false;
	if (is_local_call(in) || (cls == CLS_JMP32 && op == OP_JA)) {
		*target = (int64_t)pc + 1 + in->imm;
		return true;
	}
	if (op == OP_EXIT || op == OP_CALL)
		return false;
	*target = (int64_t)pc + 1 + in->off;
	return true;
}

static int check_alu(const struct bpf_insn *in, uint32_t pc)
{
	uint8_t op = BPF_OP(in->code);
	bool reg = in->code & BPF_SRC_REG, is64 = BPF_CLASS(in->code) == CLS_ALU64;
	if (in->dst == 10)
		REFUSE(pc, "frame pointer r10 is read only");
	if (op == OP_END) {
		if (in->src || in->off || (in->imm != 16 && in->imm != 32 && in->imm != 64))
			REFUSE(pc, "byte swap must have width 16, 32 or 64 and no other fields");
		return 0;
	}
	if (op == OP_NEG) {
		if (in->src || in->off || in->imm)
			REFUSE(pc, "neg uses reserved fields");
		return 0;
	}
	if (reg && in->imm)
		REFUSE(pc, "register-source ALU instruction uses reserved imm field");
	if (!reg && in->src)
		REFUSE(pc, "immediate-source ALU instruction uses reserved src field");
	if (op == OP_DIV || op == OP_MOD) {
		if (in->off != 0 && in->off != 1)
			REFUSE(pc, "div/mod offset must be 0 (unsigned) or 1 (signed), not %d", in->off);
	} else if (op == OP_MOV) {
		bool ok = in->off == 0 || (reg && (in->off == 8 || in->off == 16 || (is64 && in->off == 32)));
		if (!ok)
			REFUSE(pc, "invalid movsx offset %d", in->off);
	} else if (in->off) {
		REFUSE(pc, "ALU instruction uses reserved offset field");
	}
	return 0;
fail:
	return -1;
}

static int check_jmp(const struct bpftime_vm *vm, const struct bpf_insn *in, uint32_t pc)
{
	uint8_t op = BPF_OP(in->code), cls = BPF_CLASS(in->code);
	if (op == OP_JA) {
		if (in->src || in->dst || (cls == CLS_JMP ? in->imm != 0 : in->off != 0))
			REFUSE(pc, "%s uses reserved fields", cls == CLS_JMP ? "ja" : "ja32");
		return 0;
	}
	if (op == OP_EXIT) {
		if (in->src || in->dst || in->off || in->imm)
			REFUSE(pc, "exit uses reserved fields");
		return 0;
	}
	if (op == OP_CALL) {
		if (in->code == 0x8d) { /* callx: helper id in the register named by dst */
			if (in->src || in->off || in->imm)
				REFUSE(pc, "callx uses reserved fields");
			return 0;
		}
		if (in->dst || in->off)
			REFUSE(pc, "call uses reserved fields");
		if (in->src == CALL_KFUNC)
			REFUSE(pc, "kfunc calls are not supported (call runtime %d)", in->imm);
		if (in->src == CALL_HELPER) {
			if (in->imm < 0 || !vm_helper_known(vm, (uint32_t)in->imm))
				REFUSE(pc, "call to unknown helper %d", in->imm);
		} else if (in->src != CALL_LOCAL) {
			REFUSE(pc, "call with invalid src %u", in->src);
		}
		return 0;
	}
	if (!(in->code & BPF_SRC_REG) && in->src)
		REFUSE(pc, "immediate-source jump uses reserved src field");
	if ((in->code & BPF_SRC_REG) && in->imm)
		REFUSE(pc, "register-source jump uses reserved imm field");
	return 0;
fail:
	return -1;
}

static int check_mem(const struct bpf_insn *in, uint32_t pc)
{
	uint8_t cls = BPF_CLASS(in->code), mode = BPF_MODE(in->code);
	if (cls == CLS_LDX) {
		if (in->dst == 10)
			REFUSE(pc, "frame pointer r10 is read only");
		if (in->imm)
			REFUSE(pc, "load uses reserved imm field");
	} else if (cls == CLS_ST) {
		if (in->src)
			REFUSE(pc, "store-immediate uses reserved src field");
	} else if (mode == MODE_ATOMIC) {
		switch (in->imm) {
		case ATOMIC_ADD: case ATOMIC_OR: case ATOMIC_AND: case ATOMIC_XOR:
		case ATOMIC_ADD | ATOMIC_FETCH: case ATOMIC_OR | ATOMIC_FETCH:
		case ATOMIC_AND | ATOMIC_FETCH: case ATOMIC_XOR | ATOMIC_FETCH:
		case ATOMIC_XCHG: case ATOMIC_CMPXCHG:
			break;
		default:
			REFUSE(pc, "unknown atomic operation 0x%x", (unsigned)in->imm);
		}
		if ((in->imm & ATOMIC_FETCH) && in->imm != ATOMIC_CMPXCHG && in->src == 10)
			REFUSE(pc, "frame pointer r10 is read only (atomic fetch writes its source)");
	} else if (in->imm) {
		REFUSE(pc, "store uses reserved imm field");
	}
	return 0;
fail:
	return -1;
}

static int check_lddw(const struct bpftime_vm *vm, const struct bpf_insn *in, uint32_t pc,
		      uint32_t n)
{
	if (pc + 1 >= n)
		REFUSE(pc, "lddw is the last instruction (it needs two slots)");
	if (in->dst == 10)
		REFUSE(pc, "frame pointer r10 is read only");
	if (in->off)
		REFUSE(pc, "lddw uses reserved offset field");
	const struct bpf_insn *next = in + 1;
	if (next->code || next->dst || next->src || next->off)
		REFUSE(pc + 1, "second slot of lddw must hold only the upper 32 bits");
	if (in->src > 6)
		REFUSE(pc, "lddw with unknown pseudo source %u", in->src);
	if (in->src == LDDW_PSEUDO_FUNC) {
		if (next->imm)
			REFUSE(pc, "lddw of a callback function uses the upper 32 bits");
		return 0;
	}
	if (in->src && !vm->resolver)
		REFUSE(pc, "lddw pseudo source %u (map reference) but no map resolver is set",
		       in->src);
	return 0;
fail:
	return -1;
}

/*
 * Loops with no way out, as the kernel refuses them ("infinite loop detected"): every
 * instruction reachable from a subprogram's start must have a path to an exit (or to a helper
 * that may end the run: the unwind helper, bpf_tail_call). Where one has none, execution there
 * can only go round for ever; the refusal names the jump that closes that loop.
 * 0, or -1 with the error set.
 */
static int check_termination(const struct bpftime_vm *vm, const struct bpf_insn *insns, uint32_t n,
			     const uint8_t *tail, const uint8_t *sub_start)
{
	/* Successors of each pc: at most two (fallthrough, target). */
	uint32_t *succ = malloc((size_t)n * 2 * sizeof(uint32_t));
	uint32_t *npred = calloc((size_t)n + 1, sizeof(uint32_t));
	uint8_t *mark = calloc(n, 1); /* 1: reaches an exit, 2: reachable from a start */
	uint32_t *work = malloc((size_t)n * sizeof(uint32_t));
	uint32_t *pred = NULL;
	int rc = -1;
	if (!succ || !npred || !mark || !work) {
		set_error("out of memory validating %u instructions", n);
		goto out;
	}
	for (uint32_t pc = 0; pc < n; pc++) {
		succ[2 * pc] = succ[2 * pc + 1] = UINT32_MAX;
		if (tail[pc])
			continue;
		const struct bpf_insn *in = &insns[pc];
		uint8_t cls = BPF_CLASS(in->code), op = BPF_OP(in->code);
		int64_t t;
		if (in->code == LDDW_CODE) {
			succ[2 * pc] = pc + 2 < n ? pc + 2 : UINT32_MAX;
		} else if ((cls == CLS_JMP || cls == CLS_JMP32) && op == OP_EXIT) {
			mark[pc] = 1;
		} else if ((cls == CLS_JMP || cls == CLS_JMP32) && op == OP_JA) {
			branch_target(in, pc, &t);
			succ[2 * pc] = (uint32_t)t;
		} else if ((cls == CLS_JMP || cls == CLS_JMP32) && op == OP_CALL) {
			if (in->code == 0x85 && in->src == CALL_HELPER &&
			    (in->imm == TAIL_CALL_HELPER || in->imm == vm->unwind_id))
				mark[pc] = 1; /* may end the run */
			succ[2 * pc] = pc + 1 < n ? pc + 1 : UINT32_MAX;
		} else if (branch_target(in, pc, &t)) {
			succ[2 * pc] = pc + 1 < n ? pc + 1 : UINT32_MAX;
			succ[2 * pc + 1] = (uint32_t)t;
		} else {
			succ[2 * pc] = pc + 1 < n ? pc + 1 : UINT32_MAX;
		}
		for (int k = 0; k < 2; k++)
			if (succ[2 * pc + k] != UINT32_MAX)
				npred[succ[2 * pc + k] + 1]++;
	}
	/* Predecessor lists (counting sort), then backwards from the exits. */
	for (uint32_t pc = 0; pc < n; pc++)
		npred[pc + 1] += npred[pc];
	pred = malloc((size_t)(npred[n] ? npred[n] : 1) * sizeof(uint32_t));
	if (!pred) {
		set_error("out of memory validating %u instructions", n);
		goto out;
	}
	for (uint32_t pc = 0; pc < n; pc++)
		for (int k = 0; k < 2; k++)
			if (succ[2 * pc + k] != UINT32_MAX)
				pred[npred[succ[2 * pc + k]]++] = pc;
	/* npred[pc] is now the end of pc's list, npred[pc - 1] (or 0) its start. */
	uint32_t nwork = 0;
	for (uint32_t pc = 0; pc < n; pc++)
		if (mark[pc] & 1)
			work[nwork++] = pc;
	while (nwork) {
		uint32_t pc = work[--nwork];
		for (uint32_t i = pc ? npred[pc - 1] : 0; i < npred[pc]; i++) {
			uint32_t p = pred[i];
			if (!(mark[p] & 1)) {
				mark[p] |= 1;
				work[nwork++] = p;
			}
		}
	}
	/* Forwards from every subprogram's start. */
	for (uint32_t pc = 0; pc < n; pc++) {
		if (sub_start[pc] && !(mark[pc] & 2)) {
			mark[pc] |= 2;
			work[nwork++] = pc;
		}
	}
	while (nwork) {
		uint32_t pc = work[--nwork];
		for (int k = 0; k < 2; k++) {
			uint32_t s = succ[2 * pc + k];
			if (s != UINT32_MAX && !(mark[s] & 2)) {
				mark[s] |= 2;
				work[nwork++] = s;
			}
		}
	}
	for (uint32_t pc = 0; pc < n; pc++) {
		int64_t t;
		if (mark[pc] != 2 || tail[pc] || !branch_target(&insns[pc], pc, &t) ||
		    is_local_call(&insns[pc]) || t > (int64_t)pc)
			continue;
		set_error("pc %u: infinite loop detected: the jump back to pc %lld never reaches exit",
			  pc, (long long)t);
		goto out;
	}
	rc = 0;
out:
	free(succ);
	free(npred);
	free(mark);
	free(work);
	free(pred);
	return rc;
}

/*
 * Constant offsets from map value pointers, as the kernel checks them ("invalid access to map
 * value"): along each straight run of instructions (state forgotten at every jump target), a
 * register holding bpf_map_lookup_elem's result for a map named by lddw (or an lddw of a map
 * value), moved or moved by constants, may be dereferenced only inside [0, value_size). What
 * this cannot follow (spills, joins, variable offsets) the run-time check still bounds to one
 * element's value.
 */
static int check_map_values(const struct bpftime_vm *vm, const struct bpf_insn *insns, uint32_t n,
			    const uint8_t *tail)
{
	if (!vm->value_size_fn)
		return 0;
	uint8_t *target = calloc(n + 1, 1);
	if (!target) {
		set_error("out of memory validating %u instructions", n);
		return -1;
	}
	for (uint32_t pc = 0; pc < n; pc++) {
		int64_t t;
		if (tail[pc])
			continue;
		if (insns[pc].code == LDDW_CODE && insns[pc].src == LDDW_PSEUDO_FUNC)
			target[pc + 1 + insns[pc].imm] = 1;
		else if (branch_target(&insns[pc], pc, &t))
			target[t] = 1;
	}
	struct {
		int kind; /* 0 unknown, 1 map (imm), 2 value pointer */
		uint32_t imm;
		int64_t size, off;
	} r[11];
	memset(r, 0, sizeof(r));
	int rc = 0;
	for (uint32_t pc = 0; pc < n; pc++) {
		const struct bpf_insn *in = &insns[pc];
		if (target[pc])
			memset(r, 0, sizeof(r));
		uint8_t cls = BPF_CLASS(in->code), mode = BPF_MODE(in->code);
		if (in->code == LDDW_CODE) {
			r[in->dst].kind = 0;
			if (in->src == 1) {
				r[in->dst].kind = 1;
				r[in->dst].imm = (uint32_t)in->imm;
			} else if (in->src == 2) {
				int64_t size = vm->value_size_fn(vm->value_size_ctx, (uint32_t)in->imm);
				if (size > 0)
					r[in->dst] = (__typeof__(r[0])){2, (uint32_t)in->imm, size, (uint32_t)insns[pc + 1].imm};
			}
			pc++;
			continue;
		}
		int base = -1;
		if (cls == CLS_LDX)
			base = in->src;
		else if ((cls == CLS_ST || cls == CLS_STX) && (mode == MODE_MEM || mode == MODE_ATOMIC))
			base = in->dst;
		if (base >= 0 && r[base].kind == 2) {
			int64_t size = BPF_SIZE(in->code) == SZ_B ? 1 : BPF_SIZE(in->code) == SZ_H ? 2
				       : BPF_SIZE(in->code) == SZ_W ? 4 : 8;
			int64_t off = r[base].off + in->off;
			if (off < 0 || off + size > r[base].size) {
				set_error("pc %u: invalid access to map value, value_size=%lld off=%lld size=%lld",
					  pc, (long long)r[base].size, (long long)off, (long long)size);
				rc = -1;
				break;
			}
		}
		/* What each instruction leaves in its destination. */
		if (cls == CLS_ALU64 && BPF_OP(in->code) == OP_MOV && in->off == 0 && (in->code & BPF_SRC_REG)) {
			r[in->dst] = r[in->src];
		} else if (cls == CLS_ALU64 && (BPF_OP(in->code) == OP_ADD || BPF_OP(in->code) == OP_SUB) &&
			   !(in->code & BPF_SRC_REG) && r[in->dst].kind == 2) {
			r[in->dst].off += BPF_OP(in->code) == OP_ADD ? in->imm : -(int64_t)in->imm;
		} else if (cls == CLS_JMP && BPF_OP(in->code) == OP_CALL) {
			bool lookup = in->code == 0x85 && in->src == CALL_HELPER && in->imm == 1 && r[1].kind == 1;
			int64_t size = lookup ? vm->value_size_fn(vm->value_size_ctx, r[1].imm) : -1;
			for (int i = 0; i <= 5; i++)
				r[i].kind = 0;
			if (size > 0)
				r[0] = (__typeof__(r[0])){2, 0, size, 0};
		} else if (cls == CLS_ALU || cls == CLS_ALU64 || cls == CLS_LDX) {
			r[in->dst].kind = 0;
		} else if (cls == CLS_STX && mode == MODE_ATOMIC && (in->imm & ATOMIC_FETCH)) {
			r[in->imm == ATOMIC_CMPXCHG ? 0 : in->src].kind = 0;
		}
		if ((cls == CLS_JMP || cls == CLS_JMP32) && (BPF_OP(in->code) == OP_EXIT || BPF_OP(in->code) == OP_JA))
			memset(r, 0, sizeof(r)); /* what follows is reached by jumps only */
	}
	free(target);
	return rc;
}

int vm_validate(const struct bpftime_vm *vm, const struct bpf_insn *insns, uint32_t n)
{
	uint8_t *tail = calloc(n + 1, 1);     /* second slot of an lddw */
	uint8_t *sub_start = calloc(n + 1, 1); /* first insn of a subprogram */
	if (!tail || !sub_start) {
		set_error("out of memory validating %u instructions", n);
		goto fail;
	}
	sub_start[0] = 1;
	for (uint32_t pc = 0; pc < n; pc++) {
		const struct bpf_insn *in = &insns[pc];
		if (!bpftime_opcode_name(in->code))
			REFUSE(pc, "unknown opcode 0x%02x", in->code);
		if (in->dst > 10 || in->src > 10)
			REFUSE(pc, "invalid register r%u", in->dst > 10 ? in->dst : in->src);
		uint8_t cls = BPF_CLASS(in->code);
		int rc = 0;
		if (in->code == LDDW_CODE) {
			rc = check_lddw(vm, in, pc, n);
			tail[pc + 1] = 1;
			pc++;
		} else if (cls == CLS_ALU || cls == CLS_ALU64) {
			rc = check_alu(in, pc);
		} else if (cls == CLS_JMP || cls == CLS_JMP32) {
			rc = check_jmp(vm, in, pc);
		} else {
			rc = check_mem(in, pc);
		}
		if (rc < 0)
			goto fail;
	}
	/* Branch targets: inside the program, never the second slot of lddw. */
	for (uint32_t pc = 0; pc < n; pc++) {
		if (tail[pc])
			continue;
		int64_t t;
		bool callback = insns[pc].code == LDDW_CODE && insns[pc].src == LDDW_PSEUDO_FUNC;
		if (callback)
			t = (int64_t)pc + 1 + insns[pc].imm;
		else if (!branch_target(&insns[pc], pc, &t))
			continue;
		bool call = callback || is_local_call(&insns[pc]);
		if (t < 0 || t >= n)
			REFUSE(pc, "%s out of range: target %lld, program has %u instructions",
			       call ? "call" : "jump", (long long)t, n);
		if (tail[t])
			REFUSE(pc, "%s into the middle of lddw at pc %lld", call ? "call" : "jump",
			       (long long)t - 1);
		if (call && t == 0)
			REFUSE(pc, "call to pc 0: the main program cannot be called as a subprogram");
		if (call)
			sub_start[t] = 1;
	}
	/* Jumps stay inside their subprogram; each subprogram ends with exit or ja. */
	uint32_t *sub_of = malloc((n + 1) * sizeof(uint32_t));
	if (!sub_of) {
		set_error("out of memory validating %u instructions", n);
		goto fail;
	}
	for (uint32_t pc = 0, s = 0; pc < n; pc++) {
		if (sub_start[pc])
			s = pc;
		sub_of[pc] = s;
	}
	for (uint32_t pc = 0; pc < n; pc++) {
		bool last = pc + 1 == n || sub_start[pc + 1];
		if (last) {
			uint32_t lp = tail[pc] ? pc - 1 : pc;
			uint8_t code = insns[lp].code;
			if (code != 0x95 && code != 0x05 && code != 0x06) {
				free(sub_of);
				if (pc + 1 == n)
					REFUSE(lp, "last instruction is not exit or ja: execution falls off the end");
				REFUSE(lp, "last instruction of the subprogram before pc %u is not exit or ja",
				       pc + 1);
			}
		}
		if (tail[pc])
			continue;
		int64_t t;
		if (branch_target(&insns[pc], pc, &t) && !is_local_call(&insns[pc]) &&
		    sub_of[t] != sub_of[pc]) {
			uint32_t from = sub_of[pc];
			free(sub_of);
			REFUSE(pc, "jump to pc %lld leaves its subprogram (which starts at pc %u)",
			       (long long)t, from);
		}
	}
	free(sub_of);
	if (check_termination(vm, insns, n, tail, sub_start) < 0 ||
	    check_map_values(vm, insns, n, tail) < 0)
		goto fail;
	free(tail);
	free(sub_start);
	return 0;
fail:
	free(tail);
	free(sub_start);
	return -1;
}
