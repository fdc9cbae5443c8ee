/*
 * Running a probe's program on a hit: the agent's hot path. Compiled,
 * unbudgeted JIT code on a thread with no run in progress is entered
 * directly, with a run context kept per thread (see below); everything else
 * goes through bpftime_vm_exec_attached.
 */
#include "probes.h"
#include "../vm/vm_runtime.h"

/*
 * Each thread keeps the run contexts of its last probe runs, a few VMs' worth
 * (a uprobe and a uretprobe program take turns): the next run of the same VM
 * with a context of the same length only needs the fields that differ (a
 * clean run leaves the others as it found them; the JIT sets the stack fields
 * itself). Anything else starts from run_init. Static TLS, kept small: the
 * agent is also dlopen'ed into running processes (`bpftime attach`), where
 * glibc has only its surplus (about 1.6 KB) for the static TLS of a library
 * loaded late; two slots cover a uprobe and a uretprobe taking turns.
 */
#define PROBE_CTX_SLOTS 2
static __thread struct jit_ctx probe_ctx[PROBE_CTX_SLOTS] __attribute__((tls_model("initial-exec")));
static __thread uint64_t probe_ctx_serial[PROBE_CTX_SLOTS] __attribute__((tls_model("initial-exec")));

/* Describing a fault formats text through libc, which may use vector registers. */
static uint64_t report_fault(void *run)
{
	return (uint64_t)(int64_t)vm_describe_fault(run);
}

/* NO_VECTORS: see vm_exec_probe. Out of line: the check before it needs no stack frame. */
static __attribute__((noinline)) NO_VECTORS int run_probe(const struct bpftime_vm *vm, void *mem, uint64_t mem_len,
				const struct bpftime_attach_info *info, uint64_t *ret)
{
	unsigned slot = (unsigned)vm->serial % PROBE_CTX_SLOTS;
	struct jit_ctx *ctx = &probe_ctx[slot];
	if (__builtin_expect(probe_ctx_serial[slot] == vm->serial && ctx->mem_limit[0] == mem_len, 1)) {
		ctx->mem_lo = (uintptr_t)mem;
		ctx->attach = info;
		ctx->outer = NULL;
		current_run = ctx;
	} else {
		run_init(ctx, vm, mem, mem_len, info);
		probe_ctx_serial[slot] = vm->serial;
	}
	uint64_t r0 = vm_jit_entry(vm)(mem, mem_len, ctx);
	current_run = NULL;
	if (__builtin_expect(ctx->faulted != 0, 0))
		probe_ctx_serial[slot] = 0; /* a fault, unwind or tail call left state behind */
	if (run_result(ctx, r0, ret))
		return 0;
	return (int)(int64_t)bpftime_vectors_saved_call(report_fault, ctx);
}

/* Out of line, so the fast path below needs no stack frame of its own. */
static __attribute__((noinline)) int exec_probe_slow(struct bpftime_vm *vm, void *mem, uint64_t mem_len,
						     const struct bpftime_attach_info *info, uint64_t *ret)
{
	return bpftime_vm_exec_attached(vm, mem, mem_len, info, ret);
}

/*
 * NO_VECTORS: a vector-clean program's whole run stays away from vector
 * registers (the agent then saves none); the slow path is only taken by
 * programs that are not, which the agent runs with them saved.
 */
NO_VECTORS int vm_exec_probe(struct bpftime_vm *vm, void *mem, uint64_t mem_len,
			     const struct bpftime_attach_info *info, uint64_t *ret)
{
	/* The common case, compiled and unbudgeted JIT code, goes straight in. */
	if (__builtin_expect(vm_probe_fast_path(vm) && !current_run, 1))
		return run_probe(vm, mem, mem_len, info, ret);
	return exec_probe_slow(vm, mem, mem_len, info, ret);
}
