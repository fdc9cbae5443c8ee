/*
 * Body of the threaded interpreter, included twice by interp_run.c: once
 * with INTERP_COUNTED 0 (no instruction budget, the fast path) and once
 * with INTERP_COUNTED 1. Expects INTERP_NAME and INTERP_COUNTED.
 */

static int INTERP_NAME(const struct bpftime_vm *vm, void *mem, uint64_t mem_len, uint32_t start,
		       const uint64_t *args, uint64_t *ret)
{
	static const void *const labels[IOP_COUNT] = {
#define X(n) [IOP_##n] = &&L_##n,
		INTERP_OPS
#undef X
	};
	_Alignas(16) uint8_t stack[BPFTIME_STACK_SIZE * BPFTIME_MAX_CALL_FRAMES];
	struct frame frames[BPFTIME_MAX_CALL_FRAMES];
	uint32_t depth = 0;
	uint64_t R[11] = {0};
	const struct decoded_insn *const code = vm->code, *d = code + start;
	/* Frames grow down from the top; a frame may touch itself and its callers' frames. */
	const uintptr_t stack_top = (uintptr_t)(stack + sizeof(stack));
	uintptr_t stack_lo = stack_top - BPFTIME_STACK_SIZE;
	struct jit_ctx run; /* what helpers check pointers against */
	struct bounds b = {(uintptr_t)mem, mem ? mem_len : 0, mem && !vm->ctx_readonly ? mem_len : 0, vm, &run};
	struct fault f;
	int rc = 0;
	/* The budget (run.budget, shared with callbacks) is counted only at back-edges and calls. */
#if INTERP_COUNTED
#define CHARGE(w)                                                                                  \
	do {                                                                                       \
		uint64_t w_ = (w);                                                                 \
		if (unlikely(run.budget < w_))                                                     \
			goto out_of_budget;                                                        \
		run.budget -= w_;                                                                  \
	} while (0)
#define BACK_EDGE()                                                                                \
	do {                                                                                       \
		if ((uint32_t)d->aux <= (uint32_t)(d - code))                                      \
			CHARGE((uint64_t)(d - code) - (uint64_t)d->aux + 1);                       \
	} while (0)
#else
#define CHARGE(w) do {} while (0)
#define BACK_EDGE() do {} while (0)
#endif
#define DISPATCH()                                                                                 \
	do {                                                                                       \
		goto *labels[d->op];                                                               \
	} while (0)
#define NEXT()                                                                                     \
	do {                                                                                       \
		d++;                                                                               \
		DISPATCH();                                                                        \
	} while (0)
#define JUMP() do { d = code + d->aux; DISPATCH(); } while (0)
#define CHECK(addr, size, store)                                                                   \
	do {                                                                                       \
		if (unlikely(!(addr - stack_lo <= (stack_top - stack_lo) - (size) ||              \
			       in_bounds(&b, addr, size, store)))) {                                      \
			f = (struct fault){addr, size, store};                                     \
			goto out_of_bounds;                                                        \
		}                                                                                  \
	} while (0)

	R[1] = (uint64_t)(uintptr_t)mem;
	R[2] = mem_len;
	if (args) /* a callback: r1-r5 from the helper that calls it */
		for (int i = 0; i < 5; i++)
			R[i + 1] = args[i];
	R[10] = (uint64_t)stack_top;
	/* Zeroed frames: a program never sees the host's old stack contents. */
	memset((void *)stack_lo, 0, BPFTIME_STACK_SIZE);
	run_begin(&run, vm, mem, mem_len);
	run.stack_top = stack_top;
	DISPATCH();

	/* ALU: `a` is dst, `s` the source (register or pre-extended immediate). */
#define ALU64(name, expr)                                                                          \
	L_ALU64_##name##_IMM : { uint64_t a = R[d->dst], s = d->k; R[d->dst] = (expr); NEXT(); }  \
	L_ALU64_##name##_REG : { uint64_t a = R[d->dst], s = R[d->src]; R[d->dst] = (expr); NEXT(); }
#define ALU32(name, expr)                                                                          \
	L_ALU32_##name##_IMM : {                                                                   \
		uint32_t a = (uint32_t)R[d->dst], s = (uint32_t)d->k;                             \
		R[d->dst] = (uint32_t)(expr);                                                      \
		NEXT();                                                                            \
	}                                                                                          \
	L_ALU32_##name##_REG : {                                                                   \
		uint32_t a = (uint32_t)R[d->dst], s = (uint32_t)R[d->src];                        \
		R[d->dst] = (uint32_t)(expr);                                                      \
		NEXT();                                                                            \
	}
	ALU64(ADD, a + s)
	ALU64(SUB, a - s)
	ALU64(MUL, a * s)
	ALU64(DIV, s ? a / s : 0)
	ALU64(SDIV, sdiv64(a, s))
	ALU64(OR, a | s)
	ALU64(AND, a & s)
	ALU64(LSH, a << (s & 63))
	ALU64(RSH, a >> (s & 63))
	ALU64(MOD, s ? a % s : a)
	ALU64(SMOD, smod64(a, s))
	ALU64(XOR, a ^ s)
	ALU64(MOV, ((void)a, s))
	ALU64(ARSH, (uint64_t)((int64_t)a >> (s & 63)))
	ALU32(ADD, a + s)
	ALU32(SUB, a - s)
	ALU32(MUL, a * s)
	ALU32(DIV, s ? a / s : 0)
	ALU32(SDIV, sdiv32(a, s))
	ALU32(OR, a | s)
	ALU32(AND, a & s)
	ALU32(LSH, a << (s & 31))
	ALU32(RSH, a >> (s & 31))
	ALU32(MOD, s ? a % s : a)
	ALU32(SMOD, smod32(a, s))
	ALU32(XOR, a ^ s)
	ALU32(MOV, ((void)a, s))
	ALU32(ARSH, (uint32_t)((int32_t)a >> (s & 31)))
L_NEG64:
	R[d->dst] = -R[d->dst];
	NEXT();
L_NEG32:
	R[d->dst] = (uint32_t)-(uint32_t)R[d->dst];
	NEXT();
L_MOVSX64_8:
	R[d->dst] = (uint64_t)(int64_t)(int8_t)R[d->src];
	NEXT();
L_MOVSX64_16:
	R[d->dst] = (uint64_t)(int64_t)(int16_t)R[d->src];
	NEXT();
L_MOVSX64_32:
	R[d->dst] = (uint64_t)(int64_t)(int32_t)R[d->src];
	NEXT();
L_MOVSX32_8:
	R[d->dst] = (uint32_t)(int32_t)(int8_t)R[d->src];
	NEXT();
L_MOVSX32_16:
	R[d->dst] = (uint32_t)(int32_t)(int16_t)R[d->src];
	NEXT();
L_ZX16:
	R[d->dst] = (uint16_t)R[d->dst];
	NEXT();
L_ZX32:
	R[d->dst] = (uint32_t)R[d->dst];
	NEXT();
L_NOP:
	NEXT();
L_BSWAP16:
	R[d->dst] = __builtin_bswap16((uint16_t)R[d->dst]);
	NEXT();
L_BSWAP32:
	R[d->dst] = __builtin_bswap32((uint32_t)R[d->dst]);
	NEXT();
L_BSWAP64:
	R[d->dst] = __builtin_bswap64(R[d->dst]);
	NEXT();

	/* Jumps */
L_JA:
	BACK_EDGE();
	JUMP();
#define JCOND(name, T, expr)                                                                       \
	L_##name##_IMM : { BACK_EDGE(); T a = (T)R[d->dst], s = (T)d->k; if (expr) JUMP(); NEXT(); } \
	L_##name##_REG : { BACK_EDGE(); T a = (T)R[d->dst], s = (T)R[d->src]; if (expr) JUMP(); NEXT(); }
#define JCOND2(name, U, S, expr_u)                                                                 \
	JCOND(name, U, expr_u)                                                                     \
	JCOND(name##32, S, expr_u)
	JCOND2(JEQ, uint64_t, uint32_t, a == s)
	JCOND2(JNE, uint64_t, uint32_t, a != s)
	JCOND2(JGT, uint64_t, uint32_t, a > s)
	JCOND2(JGE, uint64_t, uint32_t, a >= s)
	JCOND2(JLT, uint64_t, uint32_t, a < s)
	JCOND2(JLE, uint64_t, uint32_t, a <= s)
	JCOND2(JSET, uint64_t, uint32_t, (a & s) != 0)
	JCOND2(JSGT, int64_t, int32_t, a > s)
	JCOND2(JSGE, int64_t, int32_t, a >= s)
	JCOND2(JSLT, int64_t, int32_t, a < s)
	JCOND2(JSLE, int64_t, int32_t, a <= s)

	/* Calls */
L_CALL_HELPER:
	run.frame_lo = stack_lo;
	R[0] = ((bpftime_helper_fn)(uintptr_t)d->k)(R[1], R[2], R[3], R[4], R[5]);
	NEXT();
L_CALL_TAIL:
	run.frame_lo = stack_lo;
	R[0] = ((bpftime_helper_fn)(uintptr_t)d->k)(R[1], R[2], R[3], R[4], R[5]);
	if (run.faulted == RUN_TAIL_CALLED) { /* the next program ran: its r0 is ours */
		*ret = run.tail_value;
		goto done;
	}
	NEXT();
L_CALL_UNWIND:
	run.frame_lo = stack_lo;
	R[0] = ((bpftime_helper_fn)(uintptr_t)d->k)(R[1], R[2], R[3], R[4], R[5]);
	if (R[0] == 0)
		goto unwind;
	NEXT();
L_CALLX: {
	uint64_t id = R[d->dst];
	if (unlikely(id >= vm->nhelpers || !vm->helpers[id].fn)) {
		set_error("pc %u: callx to unknown helper id %llu (r%u)",
			     (unsigned)(d - code), (unsigned long long)id, d->dst);
		rc = -1;
		goto done;
	}
	run.frame_lo = stack_lo;
	R[0] = vm->helpers[id].fn(R[1], R[2], R[3], R[4], R[5]);
	if ((int64_t)id == vm->unwind_id && R[0] == 0)
		goto unwind;
	NEXT();
}
L_CALL_LOCAL:
	CHARGE(d->k); /* the callee's length */
	if (unlikely(depth + 1 >= BPFTIME_MAX_CALL_FRAMES)) {
		set_error("pc %u: call depth exceeds %d frames", (unsigned)(d - code),
			     BPFTIME_MAX_CALL_FRAMES);
		rc = -1;
		goto done;
	}
	frames[depth] = (struct frame){d + 1, {R[6], R[7], R[8], R[9]}, R[10]};
	depth++;
	R[10] -= BPFTIME_STACK_SIZE;
	stack_lo -= BPFTIME_STACK_SIZE;
	memset((void *)stack_lo, 0, BPFTIME_STACK_SIZE);
	JUMP();
L_EXIT:
	if (depth == 0) {
		*ret = R[0];
		goto done;
	}
	depth--;
	stack_lo += BPFTIME_STACK_SIZE;
	R[6] = frames[depth].saved[0];
	R[7] = frames[depth].saved[1];
	R[8] = frames[depth].saved[2];
	R[9] = frames[depth].saved[3];
	R[10] = frames[depth].fp;
	d = frames[depth].ret;
	DISPATCH();
L_LDDW:
	R[d->dst] = d->k;
	d += 2;
	DISPATCH();
L_LDDW_TAIL:
	set_error("pc %u: executed the second slot of lddw", (unsigned)(d - code));
	rc = -1;
	goto done;

	/* Loads and stores */
#define LOAD(name, T, ext)                                                                         \
	L_##name : {                                                                               \
		uint64_t addr = R[d->src] + (uint64_t)(int64_t)d->aux;                            \
		CHECK(addr, sizeof(T), 0);                                                         \
		T v;                                                                               \
		memcpy(&v, (const void *)(uintptr_t)addr, sizeof(T));                            \
		R[d->dst] = (uint64_t)(ext)v;                                                      \
		NEXT();                                                                            \
	}
	LOAD(LDXB, uint8_t, uint64_t)
	LOAD(LDXH, uint16_t, uint64_t)
	LOAD(LDXW, uint32_t, uint64_t)
	LOAD(LDXDW, uint64_t, uint64_t)
	LOAD(LDXSB, int8_t, int64_t)
	LOAD(LDXSH, int16_t, int64_t)
	LOAD(LDXSW, int32_t, int64_t)
#define STORE(name, T, value)                                                                      \
	L_##name : {                                                                               \
		uint64_t addr = R[d->dst] + (uint64_t)(int64_t)d->aux;                            \
		CHECK(addr, sizeof(T), 1);                                                         \
		T v = (T)(value);                                                                  \
		memcpy((void *)(uintptr_t)addr, &v, sizeof(T));                                  \
		NEXT();                                                                            \
	}
	STORE(STB, uint8_t, d->k)
	STORE(STH, uint16_t, d->k)
	STORE(STW, uint32_t, d->k)
	STORE(STDW, uint64_t, d->k)
	STORE(STXB, uint8_t, R[d->src])
	STORE(STXH, uint16_t, R[d->src])
	STORE(STXW, uint32_t, R[d->src])
	STORE(STXDW, uint64_t, R[d->src])

	/* Atomics: naturally aligned, sequentially consistent like the kernel's lock-prefixed forms. */
#define ATOMIC_ADDR(T)                                                                             \
	uint64_t addr = R[d->dst] + (uint64_t)(int64_t)d->aux;                                    \
	CHECK(addr, sizeof(T), 1);                                                                 \
	if (unlikely(addr & (sizeof(T) - 1))) {                                                    \
		f = (struct fault){addr, sizeof(T), 2};                                            \
		goto out_of_bounds;                                                                \
	}                                                                                          \
	T *p = (T *)(uintptr_t)addr;
#define ATOMIC_OP(name, T, builtin, fetch)                                                         \
	L_ATOMIC##name : {                                                                         \
		ATOMIC_ADDR(T)                                                                     \
		T old = builtin(p, (T)R[d->src], __ATOMIC_SEQ_CST);                                \
		if (fetch)                                                                         \
			R[d->src] = (uint64_t)old;                                                 \
		NEXT();                                                                            \
	}
#define ATOMIC_WIDTHS(op, builtin, fetch)                                                          \
	ATOMIC_OP(64_##op, uint64_t, builtin, fetch) ATOMIC_OP(32_##op, uint32_t, builtin, fetch)
	ATOMIC_WIDTHS(ADD, __atomic_fetch_add, 0)
	ATOMIC_WIDTHS(OR, __atomic_fetch_or, 0)
	ATOMIC_WIDTHS(AND, __atomic_fetch_and, 0)
	ATOMIC_WIDTHS(XOR, __atomic_fetch_xor, 0)
	ATOMIC_WIDTHS(FADD, __atomic_fetch_add, 1)
	ATOMIC_WIDTHS(FOR, __atomic_fetch_or, 1)
	ATOMIC_WIDTHS(FAND, __atomic_fetch_and, 1)
	ATOMIC_WIDTHS(FXOR, __atomic_fetch_xor, 1)
	ATOMIC_WIDTHS(XCHG, __atomic_exchange_n, 1)
#define CMPXCHG(name, T)                                                                           \
	L_ATOMIC##name : {                                                                         \
		ATOMIC_ADDR(T)                                                                     \
		T expected = (T)R[0];                                                              \
		__atomic_compare_exchange_n(p, &expected, (T)R[d->src], 0, __ATOMIC_SEQ_CST,     \
					    __ATOMIC_SEQ_CST);                                     \
		R[0] = (uint64_t)expected;                                                         \
		NEXT();                                                                            \
	}
	CMPXCHG(64_CMPXCHG, uint64_t)
	CMPXCHG(32_CMPXCHG, uint32_t)

unwind:
	*ret = 0;
	goto done;
out_of_bounds:
	report_fault(&f, (uint32_t)(d - code));
	rc = -1;
	goto done;
#if INTERP_COUNTED
out_of_budget:
	set_error("pc %u: instruction budget of %llu exhausted", (unsigned)(d - code),
		     (unsigned long long)vm->budget);
	*ret = 0;
	rc = -1;
	goto done;
#endif
done:
	run_end(&run);
	return rc;

#undef CHARGE
#undef BACK_EDGE
#undef DISPATCH
#undef NEXT
#undef JUMP
#undef CHECK
#undef ALU64
#undef ALU32
#undef JCOND
#undef JCOND2
#undef LOAD
#undef STORE
#undef ATOMIC_ADDR
#undef ATOMIC_OP
#undef ATOMIC_WIDTHS
#undef CMPXCHG
}
