/* Structure of a validated program that the compilers share. */
#ifndef BPFTIME_PROGRAM_SHAPE_H
#define BPFTIME_PROGRAM_SHAPE_H

#include "vm_internal.h"

struct program_shape {
	const struct bpf_insn *insns;
	uint32_t n;
	uint8_t *sub_start;   /* first instruction of a subprogram (pc 0 is the main one) */
	uint8_t *in_sub;      /* inside a subprogram other than the main one */
	uint8_t *block_start; /* first instruction of a basic block */
	uint32_t *block_len;  /* at a block start: instructions in the block (lddw counts once) */
	uint32_t *zero_bytes; /* at a subprogram start: bytes of its frame to clear on entry */
	uint8_t *callback;    /* subprogram whose address the program takes (lddw src 4) */
};

HIDDEN int program_shape_analyse(struct program_shape *shape, const struct bpf_insn *insns,
				 uint32_t n);
HIDDEN void program_shape_free(struct program_shape *shape);

#endif
