/* Inline bpf_probe_read{,_user} and bpf_probe_read{,_user}_str for the x86-64 JIT (jit_probe_read.c). */
#ifndef BPFTIME_JIT_PROBE_READ_H
#define BPFTIME_JIT_PROBE_READ_H

#include "../base/fault_fixup.h"
#include "vm_internal.h"
#include "x86_emit.h"

/* An inline read's faulting range and where its fixup code must resume. */
struct inline_read {
	uint32_t start, end; /* the loads (and stores) that may fault */
	uint32_t resume;     /* after the read, r0 set */
	uint32_t size;
};

/* The inline reads of one compilation, and its exception table once the fixups are emitted. */
struct jit_reads {
	uint32_t slot; /* fault_fixup_reserve()'s, claimed at the first inline read (0: none yet) */
	struct inline_read *site;
	struct fault_fixup *table; /* one entry per site, filled by jit_emit_read_fixups */
	uint32_t n, cap;
	bool failed; /* out of memory */
};

/*
 * At a call of helper `id` whose r1 points into the running frame with room for `size` bytes
 * (pointer_facts.h frame_dst), r2 == size and r3 the source: emits what the helper would do,
 * when it is the runtime's probe read of a size compiled inline. Clobbers what a call may.
 * Returns false, emitting nothing, when the helper must be called.
 */
HIDDEN bool jit_emit_probe_read(struct jit_reads *r, struct x86_buf *b, const struct bpftime_vm *vm,
				int32_t id, uint32_t size);
/*
 * The same call site (r1 a frame pointer with room for size bytes): a function to call instead
 * of helper `id`, with the helper's arguments and results but without its checks (the copy
 * itself), or 0 when the helper must be called. For the LLVM tier, and reads too large to inline.
 */
HIDDEN uintptr_t probe_read_direct_fn(const struct bpftime_vm *vm, int32_t id, uint32_t size);
/* After the program's code: the fixups of the inline reads, and their table entries. */
HIDDEN void jit_emit_read_fixups(struct jit_reads *r, struct x86_buf *b);
/* Frees the lists; releases the slot unless `keep` (it was published with the code). */
HIDDEN void jit_reads_free(struct jit_reads *r, bool keep);

#endif
