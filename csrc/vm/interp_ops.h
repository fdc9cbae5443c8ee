/*
 * The interpreter's internal operations: each eBPF instruction is decoded
 * once at load time into one of these, with operands pre-computed
 * (sign-extended immediates, absolute jump targets, helper pointers).
 */
#ifndef BPFTIME_INTERP_OPS_H
#define BPFTIME_INTERP_OPS_H

#include <stdint.h>

#define INTERP_ALU_OPS(X) X(ADD) X(SUB) X(MUL) X(DIV) X(SDIV) X(OR) X(AND) X(LSH) X(RSH) \
	X(MOD) X(SMOD) X(XOR) X(MOV) X(ARSH)
#define INTERP_JMP_OPS(X) X(JEQ) X(JGT) X(JGE) X(JSET) X(JNE) X(JSGT) X(JSGE) X(JLT) X(JLE) \
	X(JSLT) X(JSLE)
#define INTERP_ATOMIC_OPS(X) X(ADD) X(OR) X(AND) X(XOR) X(FADD) X(FOR) X(FAND) X(FXOR) \
	X(XCHG) X(CMPXCHG)

#define X_ALU(n) X(ALU64_##n##_IMM) X(ALU64_##n##_REG) X(ALU32_##n##_IMM) X(ALU32_##n##_REG)
#define X_JMP(n) X(n##_IMM) X(n##_REG) X(n##32_IMM) X(n##32_REG)
#define X_ATOMIC(n) X(ATOMIC64_##n) X(ATOMIC32_##n)

/* X-macro over every internal op; X(name) is defined by the user. */
#define INTERP_OPS                                                                                 \
	INTERP_ALU_OPS(X_ALU)                                                                      \
	X(NEG64) X(NEG32) X(MOVSX64_8) X(MOVSX64_16) X(MOVSX64_32) X(MOVSX32_8) X(MOVSX32_16)      \
	X(ZX16) X(ZX32) X(NOP) X(BSWAP16) X(BSWAP32) X(BSWAP64)                                    \
	X(JA) INTERP_JMP_OPS(X_JMP)                                                                \
	X(CALL_HELPER) X(CALL_UNWIND) X(CALL_TAIL) X(CALLX) X(CALL_LOCAL) X(EXIT) X(LDDW) X(LDDW_TAIL)           \
	X(LDXB) X(LDXH) X(LDXW) X(LDXDW) X(LDXSB) X(LDXSH) X(LDXSW)                                \
	X(STB) X(STH) X(STW) X(STDW) X(STXB) X(STXH) X(STXW) X(STXDW)                              \
	INTERP_ATOMIC_OPS(X_ATOMIC)

enum interp_op {
#define X(n) IOP_##n,
	INTERP_OPS
#undef X
	IOP_COUNT
};

struct decoded_insn {
	uint16_t op;
	uint8_t dst;
	uint8_t src;
	int32_t aux; /* jump/call target pc, or memory offset */
	uint64_t k;  /* immediate (pre-extended), lddw value, or helper function */
};

#endif
