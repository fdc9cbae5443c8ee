/*
 * What the JIT may take as proven about a program's memory accesses: a forward abstract
 * interpretation over each subprogram's blocks that follows, per register, what it points
 * into (its own stack frame, the value of a map the program names, the context block the main
 * program gets in r1) and the range of its offset, or the range of a scalar. Memory is not followed: whatever a load gives is an
 * unknown scalar, so a pointer stored and reloaded is never trusted.
 */
#ifndef BPFTIME_POINTER_FACTS_H
#define BPFTIME_POINTER_FACTS_H

#include "program_shape.h"

/* A map lookup the JIT may inline: bpf_map_lookup_elem of a map an lddw names, key on the stack. */
struct lookup_site {
	uint32_t lddw_pc;  /* the lddw (src 1) that put the map in r1 */
	int32_t key_lo;    /* r2 = r10 + [key_lo, key_hi] in the caller's frame */
	int32_t key_hi;
};

/*
 * A helper call whose r1 points into the running frame, at r10 + [dst_lo, dst_hi], with room
 * there for the constant size in r2 (the destination of bpf_probe_read and friends).
 */
struct frame_dst_site {
	int32_t dst_lo, dst_hi;
	uint32_t size;
};

struct pointer_facts {
	uint32_t n;
	/* Per pc: 1 when the load or store there stays inside the running frame or inside one map
	 * value on every path (the JIT emits it without a bounds check). */
	uint8_t *proven;
	/*
	 * Per pc (main program only): 1 when the load or store there stays inside the context
	 * block whenever that block holds at least ctx_need_load (loads) or ctx_need_store (stores)
	 * bytes: its offset from the block's start is in a range known at compile time. The context's
	 * length is known only when a run starts, so the JIT checks it once there (jit_x86_64.c).
	 */
	uint8_t *ctx_proven;
	uint64_t ctx_need_load, ctx_need_store; /* 0: no such access */
	/* Per pc: 1 at calls of bpf_map_lookup_elem described in site[pc]. */
	uint8_t *lookup;
	struct lookup_site *site;
	/* Per pc: 1 at helper calls described in frame_dst[pc]. */
	uint8_t *has_frame_dst;
	struct frame_dst_site *frame_dst;
};

/*
 * Analyses vm->insns. On failure (memory, or a program too large to settle in the step limit)
 * every access stays unproven; returns -1 only when out of memory.
 */
HIDDEN int pointer_facts_analyse(struct pointer_facts *pf, const struct bpftime_vm *vm,
				 const struct program_shape *shape);
HIDDEN void pointer_facts_free(struct pointer_facts *pf);

#endif
