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
	/* Field by field: a memset of the struct becomes `rep stos`, slow to start on every probe hit. */
	ctx->mem_lo = (uintptr_t)mem;
	/* Per access size 1, 2, 4, 8: the last offset + 1 where it still fits. */
	uint64_t l = mem ? len : 0;
	ctx->mem_limit[0] = l;
	ctx->mem_limit[1] = l >= 2 ? l - 1 : 0;
	ctx->mem_limit[2] = l >= 4 ? l - 3 : 0;
	ctx->mem_limit[3] = l >= 8 ? l - 7 : 0;
	ctx->stack_top = ctx->saved_rsp = 0;
	ctx->budget = vm->budget;
	ctx->depth = 0;
	ctx->tail_calls = next_run_tail_calls;
	ctx->fault_addr = ctx->fault_code = 0;
	ctx->vm = vm;
	ctx->faulted = 0;
	ctx->frame_lo = 0;
	ctx->tail_value = 0;
	ctx->outer_lo = ctx->outer_hi = ctx->extra_lo = ctx->extra_hi = 0;
	next_run_tail_calls = 0;
	if (next_run_is_callback && current_run) {
		ctx->outer_lo = current_run->frame_lo;
		ctx->outer_hi = current_run->stack_top;
		ctx->extra_lo = next_run_extra_lo;
		ctx->extra_hi = next_run_extra_hi;
	}
	next_run_is_callback = false;
	next_run_extra_lo = next_run_extra_hi = 0;
	/* A nested run (tail call, callback) serves the same probe as its caller. */
	ctx->attach = next_run_attach ? next_run_attach : current_run ? current_run->attach : NULL;
	next_run_attach = NULL;
	ctx->outer = current_run;
	current_run = ctx;
}

void run_end(struct jit_ctx *ctx)
{
	current_run = ctx->outer;
}

bool run_access_ok(uint64_t addr, uint64_t size)
{
	const struct jit_ctx *r = current_run;
	if (!r || size == 0)
		return r != NULL;
	if (addr - r->frame_lo < r->stack_top - r->frame_lo && size <= r->stack_top - addr)
		return true;
	if (run_extra_ok(r, addr, size))
		return true;
	uint64_t len = r->mem_limit[0]; /* len - 1 + 1 */
	if (addr - r->mem_lo < len && size <= len - (addr - r->mem_lo))
		return true;
	return vm_region_ok(r->vm, addr, size);
}
