/* Helper calls for the x86-64 JIT: cached bpf_get_current_pid_tgid, gated calls (jit_helper_calls.c). */
#ifndef BPFTIME_JIT_HELPER_CALLS_H
#define BPFTIME_JIT_HELPER_CALLS_H

#include "vm_internal.h"
#include "x86_emit.h"

/*
 * For a call of helper `fn` when it is p's bpf_get_current_pid_tgid: emits rax = the thread's
 * cached ids and a jump past the call that must follow (the slow path, taken when the cache
 * does not hold), and returns that jump's rel32 to patch once the call is emitted; 0, emitting
 * nothing, otherwise. Clobbers rcx and rdx (r4 and r3, as the call would).
 */
HIDDEN uint32_t jit_emit_pid_tgid_cached(struct x86_buf *b, const struct vm_pid_tgid_inline *p, uint64_t fn);

/* call fn(rdi, rsi, rdx, rcx, r8): directly, or through gate (vm_helper_gate_fn) when not NULL. */
HIDDEN void jit_emit_helper_call(struct x86_buf *b, uint64_t fn, vm_helper_gate_fn gate);

#endif
