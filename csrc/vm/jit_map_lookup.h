/* Inline bpf_map_lookup_elem for the x86-64 JIT (jit_map_lookup.c). */
#ifndef BPFTIME_JIT_MAP_LOOKUP_H
#define BPFTIME_JIT_MAP_LOOKUP_H

#include "vm_internal.h"
#include "x86_emit.h"

/*
 * Emits rax = the value of the key at [rsi] in map m (key_size bytes, proven readable), or 0:
 * the lookup as the map itself does it, with no call. Clobbers rcx, rdx, rsi, rdi, r8, r10 and
 * r11 (r1-r5 and scratch, as a call would) but not r9, which may hold the instruction budget.
 * Returns false, emitting nothing, when m cannot be looked up inline (jit_map_lookup_inlinable).
 */
HIDDEN bool jit_emit_map_lookup(struct x86_buf *b, const struct vm_map_inline *m);
HIDDEN bool jit_map_lookup_inlinable(const struct vm_map_inline *m);

#endif
