/*
 * The rare parts of running a probe's program (the hot path is inline, in
 * probe_exec.h).
 *
 * Each thread keeps the run contexts of its last probe runs, a few VMs' worth
 * (a uprobe and a uretprobe program take turns): the next run of the same VM
 * with a context of the same length only needs the fields that differ (a
 * clean run leaves the others as it found them; the JIT sets the stack fields
 * itself). Anything else starts from run_init. Static TLS, kept small: the
 * agent is also dlopen'ed into running processes (`bpftime attach`), where
 * glibc has only its surplus (about 1.6 KB) for the static TLS of a library
 * loaded late; two slots cover a uprobe and a uretprobe taking turns.
 */
#include "probe_exec.h"

__thread struct jit_ctx probe_ctx[PROBE_CTX_SLOTS] __attribute__((tls_model("initial-exec")));
__thread uint64_t probe_ctx_serial[PROBE_CTX_SLOTS] __attribute__((tls_model("initial-exec")));

NO_VECTORS void probe_ctx_setup(unsigned slot, const struct bpftime_vm *vm, void *mem, uint64_t mem_len,
				const struct bpftime_attach_info *info)
{
	run_init(&probe_ctx[slot], vm, mem, mem_len, info);
	probe_ctx_serial[slot] = vm->serial;
}

/* Describing a fault formats text through libc, which may use vector registers. */
static uint64_t report_fault(void *run)
{
	return (uint64_t)(int64_t)vm_describe_fault(run);
}

/* After a run that faulted, unwound or tail-called: it may have left state behind. */
NO_VECTORS int probe_run_finish(unsigned slot, uint64_t r0, uint64_t *ret)
{
	struct jit_ctx *ctx = &probe_ctx[slot];
	probe_ctx_serial[slot] = 0;
	if (run_result(ctx, r0, ret))
		return 0;
	return (int)(int64_t)bpftime_vectors_saved_call(report_fault, ctx);
}

/* Not compiled JIT code for this budget setting, or a run already in progress on this thread. */
NO_VECTORS int probe_exec_slow(struct bpftime_vm *vm, void *mem, uint64_t mem_len,
			       const struct bpftime_attach_info *info, uint64_t *ret)
{
	return bpftime_vm_exec_attached(vm, mem, mem_len, info, ret);
}
