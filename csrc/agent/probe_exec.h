/*
 * Running a probe's program on a hit, the agent's hot path, inlined into the
 * loops that run a hook's programs (probes.c, syscall_probes.c): compiled,
 * unbudgeted-or-budgeted JIT code on a thread with no run in progress is
 * entered directly with a run context kept per thread (probe_exec.c says how);
 * everything else, and everything rare (a context to set up, a fault), is out
 * of line in probe_exec.c.
 */
#ifndef BPFTIME_PROBE_EXEC_H
#define BPFTIME_PROBE_EXEC_H

#include "../vm/vm_runtime.h"
#include "probes.h"

#define PROBE_CTX_SLOTS 2
HIDDEN extern __thread struct jit_ctx probe_ctx[PROBE_CTX_SLOTS] __attribute__((tls_model("initial-exec")));
HIDDEN extern __thread uint64_t probe_ctx_serial[PROBE_CTX_SLOTS] __attribute__((tls_model("initial-exec")));

/* Out of line (probe_exec.c): a slot's context set up for `vm`, a run that faulted, any other run. */
HIDDEN void probe_ctx_setup(unsigned slot, const struct bpftime_vm *vm, void *mem, uint64_t mem_len,
			    const struct bpftime_attach_info *info);
HIDDEN int probe_run_finish(unsigned slot, uint64_t r0, uint64_t *ret);
HIDDEN int probe_exec_slow(struct bpftime_vm *vm, void *mem, uint64_t mem_len,
			   const struct bpftime_attach_info *info, uint64_t *ret);

/*
 * bpftime_vm_exec_attached for a probe hit: 0 and *ret, or -1 (the error set).
 * NO_VECTORS: a vector-clean program's whole run stays away from vector
 * registers (the agent then saves none); the slow path is only taken by
 * programs that are not, which the agent runs with them saved.
 */
static inline __attribute__((always_inline)) NO_VECTORS int
vm_exec_probe(struct bpftime_vm *vm, void *mem, uint64_t mem_len, const struct bpftime_attach_info *info,
	      uint64_t *ret)
{
	if (__builtin_expect(!vm_probe_fast_path(vm) || current_run != NULL, 0))
		return probe_exec_slow(vm, mem, mem_len, info, ret);
	unsigned slot = (unsigned)vm->serial % PROBE_CTX_SLOTS;
	struct jit_ctx *ctx = &probe_ctx[slot];
	if (__builtin_expect(probe_ctx_serial[slot] == vm->serial && ctx->mem_limit[0] == mem_len, 1)) {
		/* The same VM and context length as this slot's last clean run: only these differ. */
		ctx->mem_lo = (uintptr_t)mem;
		ctx->attach = info;
		ctx->outer = NULL;
		current_run = ctx;
	} else {
		probe_ctx_setup(slot, vm, mem, mem_len, info);
	}
	uint64_t r0 = vm_jit_entry(vm)(mem, mem_len, ctx);
	current_run = NULL;
	if (__builtin_expect(ctx->faulted != 0, 0))
		return probe_run_finish(slot, r0, ret);
	*ret = r0;
	return 0;
}

#endif
