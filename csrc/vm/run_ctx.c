/* The run in progress on each thread, which helpers consult to check pointers. */
#include "jit.h"

#include <string.h>

__thread struct jit_ctx *current_run __attribute__((tls_model("initial-exec")));
__thread uint32_t next_run_tail_calls __attribute__((tls_model("initial-exec")));
__thread bool next_run_is_callback __attribute__((tls_model("initial-exec")));
__thread uint64_t next_run_extra_lo __attribute__((tls_model("initial-exec")));
__thread uint64_t next_run_extra_hi __attribute__((tls_model("initial-exec")));
__thread const struct bpftime_attach_info *next_run_attach __attribute__((tls_model("initial-exec")));

void run_begin(struct jit_ctx *ctx, const struct bpftime_vm *vm, void *mem, uint64_t len)
{
	/* A nested run (tail call, callback) serves the same probe as its caller. */
	const struct bpftime_attach_info *attach =
		next_run_attach ? next_run_attach : current_run ? current_run->attach : NULL;
	run_init(ctx, vm, mem, len, attach);
	ctx->tail_calls = next_run_tail_calls;
	next_run_tail_calls = 0;
	if (next_run_is_callback && ctx->outer) {
		ctx->outer_lo = ctx->outer->frame_lo;
		ctx->outer_hi = ctx->outer->stack_top;
		ctx->extra_lo = next_run_extra_lo;
		ctx->extra_hi = next_run_extra_hi;
		/* bpf_loop and friends: every callback run counts against the caller's budget. */
		ctx->budget = ctx->outer->budget;
		ctx->shares_budget = true;
	}
	next_run_is_callback = false;
	next_run_extra_lo = next_run_extra_hi = 0;
	next_run_attach = NULL;
}

void run_end(struct jit_ctx *ctx)
{
	if (__builtin_expect(ctx->vm->at_run_end != NULL, 0))
		ctx->vm->at_run_end(ctx);
	/* (Compiled code that ran out leaves the budget wrapped around: the caller has none left.) */
	if (ctx->shares_budget && ctx->outer)
		ctx->outer->budget = ctx->faulted == 1 && ((ctx->fault_code >> 4) & 0xf) == JF_BUDGET
					     ? 0 : ctx->budget;
	current_run = ctx->outer;
}

static bool access_ok(uint64_t addr, uint64_t size, bool write)
{
	const struct jit_ctx *r = current_run;
	if (!r || size == 0)
		return r != NULL;
	if (addr - r->frame_lo < r->stack_top - r->frame_lo && size <= r->stack_top - addr)
		return true;
	if (run_extra_ok(r, addr, size))
		return true;
	uint64_t len = r->mem_limit[0]; /* len - 1 + 1 */
	if ((!write || !r->vm->ctx_readonly) && addr - r->mem_lo < len && size <= len - (addr - r->mem_lo))
		return true;
	return vm_region_ok(r->vm, addr, size);
}

bool run_access_ok(uint64_t addr, uint64_t size)
{
	return access_ok(addr, size, false);
}

bool run_write_ok(uint64_t addr, uint64_t size)
{
	return access_ok(addr, size, true);
}
