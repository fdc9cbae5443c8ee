/*
 * Running compiled code, whichever compiler produced it (the x86-64 JIT or the
 * LLVM tier): both follow one contract (jit.h: the run context reached
 * through r12, fault codes), so one runner enters the code, turns a recorded
 * fault into the VM error, and answers the bounds checks compiled code cannot.
 */
#include "jit.h"

/* 1 when a non-context access is inside the caller frames' stack or a registered region. */
/* general-regs-only: JIT code that needs no vector registers calls it (the agent's probe hits). */
__attribute__((target("general-regs-only"))) int jit_slow_check(struct jit_ctx *ctx, uint64_t addr, uint64_t code, uint64_t rbp)
{
	uint64_t size = 1ull << (code & 0xf);
	uint64_t lo = rbp - BPFTIME_STACK_SIZE;
	if (addr - lo < ctx->stack_top - lo && size <= ctx->stack_top - addr)
		return 1;
	if (run_extra_ok(ctx, addr, size))
		return 1;
	/* A registered region's element (a map value) lasts as long as the VM: remember it for the
	 * next access, which then needs no call as long as it stays inside that one element. */
	uint64_t e;
	const struct region *r = vm_region_of(ctx->vm, addr, size, &e);
	if (r) {
		run_set_window(ctx, r, e);
		/* Shared by every thread running this VM: a relaxed hint, re-checked on use. */
		uint64_t *last = (uint64_t *)&ctx->vm->last_window;
		uint64_t hint = e <= UINT32_MAX ? (uint64_t)((r - ctx->vm->regions) + 1) << 32 | e : 0;
		__atomic_store_n(last, hint, __ATOMIC_RELAXED);
		return 1;
	}
	return vm_region_ok(ctx->vm, addr, size);
}

int jit_run(const struct bpftime_vm *vm, void *mem, uint64_t mem_len, uint64_t *ret)
{
	return jit_call(vm, (jit_entry)(void *)vm->jit.code, mem, mem_len, ret);
}

int vm_describe_fault(const struct jit_ctx *run)
{
	const struct bpftime_vm *vm = run->vm;
	struct jit_ctx ctx = *run;
	uint32_t pc = (uint32_t)(ctx.fault_code >> 8), detail = ctx.fault_code & 0xf;
	switch ((ctx.fault_code >> 4) & 0xf) {
	case JF_LOAD:
	case JF_STORE:
		set_error("pc %u: out-of-bounds %s of %u bytes at 0x%llx (outside the stack, the "
			     "context and every registered region)",
			     pc, ((ctx.fault_code >> 4) & 0xf) == JF_STORE ? "store" : "load",
			     1u << detail, (unsigned long long)ctx.fault_addr);
		break;
	case JF_MISALIGNED:
		set_error("pc %u: misaligned %u-byte atomic access at 0x%llx", pc, 1u << detail,
			     (unsigned long long)ctx.fault_addr);
		break;
	case JF_DEPTH:
		set_error("pc %u: call depth exceeds %d frames", pc, BPFTIME_MAX_CALL_FRAMES);
		break;
	case JF_CALLX:
		set_error("pc %u: callx to unknown helper id %llu (r%u)", pc,
			     (unsigned long long)ctx.fault_addr, detail);
		break;
	default:
		set_error("pc %u: instruction budget of %llu exhausted", pc,
			     (unsigned long long)vm->budget);
	}
	return -1;
}

/* r0 of a finished run, or -1 with the fault described. */
static int finish_run(const struct jit_ctx *run, uint64_t r0, uint64_t *ret)
{
	if (run_result(run, r0, ret))
		return 0;
	*ret = 0;
	return vm_describe_fault(run);
}

static int call_entry(const struct bpftime_vm *vm, jit_entry entry, void *a1, uint64_t a2,
		      void *mem, uint64_t mem_len, uint64_t *ret)
{
	struct jit_ctx ctx;
	run_begin(&ctx, vm, mem, mem_len);
	uint64_t r0 = entry(a1, a2, &ctx);
	run_end(&ctx);
	return finish_run(&ctx, r0, ret);
}

int jit_call(const struct bpftime_vm *vm, jit_entry entry, void *mem, uint64_t mem_len,
	     uint64_t *ret)
{
	return call_entry(vm, entry, mem, mem_len, mem, mem_len, ret);
}

int jit_call_callback(const struct bpftime_vm *vm, jit_entry entry, const uint64_t args[5],
		      void *mem, uint64_t mem_len, uint64_t *ret)
{
	return call_entry(vm, entry, (void *)args, 0, mem, mem_len, ret);
}
