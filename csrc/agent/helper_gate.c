/*
 * The gate through which compiled programs that otherwise touch no vector register call a
 * helper (vm_helper_gate_fn, csrc/vm/jit_helper_calls.c): the helper, C that may use vector
 * registers and reach libc, runs with xmm0-15 saved and the syscall hooks' guard up (its
 * system calls are the agent's own, as when a whole run is wrapped: probes.c run_list).
 * The gate itself is NO_VECTORS: it runs before anything is saved.
 */
#include "agent.h"
#include "probes.h"
#include "../vm/vm_runtime.h"

struct gated_call {
	bpftime_helper_fn fn;
	uint64_t r[5];
};

static uint64_t call_helper(void *arg)
{
	const struct gated_call *c = arg;
	return c->fn(c->r[0], c->r[1], c->r[2], c->r[3], c->r[4]);
}

static NO_VECTORS uint64_t helper_gate(bpftime_helper_fn fn, uint64_t r1, uint64_t r2, uint64_t r3, uint64_t r4,
				       uint64_t r5)
{
	struct gated_call c = {fn, {r1, r2, r3, r4, r5}};
	syscall_probes_guard(true);
	uint64_t ret = bpftime_vectors_saved_call(call_helper, &c);
	syscall_probes_guard(false);
	return ret;
}

void helper_gate_install(void)
{
	vm_set_helper_gate(helper_gate);
}
