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
	/*
	 * The instruction budget is counted only where a program can repeat: per pc, what executing
	 * it costs (0 almost everywhere). A jump back to an earlier pc (or to itself) counts the
	 * loop it closes (its length in slots, target to jump), taken or not; a bpf-to-bpf call
	 * counts the callee's length. Straight-line code counts nothing.
	 */
	uint32_t *charge;
	bool counted; /* some pc has a charge */
};

/* What executing the instruction at pc counts against the budget (see program_shape.charge). */
HIDDEN uint32_t program_charge(const struct bpf_insn *insns, uint32_t n, const uint8_t *sub_start,
			       uint32_t pc);

HIDDEN int program_shape_analyse(struct program_shape *shape, const struct bpf_insn *insns,
				 uint32_t n);
HIDDEN void program_shape_free(struct program_shape *shape);

#endif
