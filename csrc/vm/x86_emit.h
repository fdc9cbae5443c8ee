/*
 * A small x86-64 encoder for the JIT: just the instruction forms it emits.
 * Every jump is rel32, so an instruction's size never depends on its target.
 */
#ifndef BPFTIME_X86_EMIT_H
#define BPFTIME_X86_EMIT_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

enum x86_reg {
	RAX = 0, RCX, RDX, RBX, RSP, RBP, RSI, RDI,
	R8, R9, R10, R11, R12, R13, R14, R15,
};

struct x86_buf {
	uint8_t *code;
	uint32_t len;
	uint32_t cap;
	bool overflow;
};

static inline void emit_bytes(struct x86_buf *b, const void *p, uint32_t n)
{
	if (b->len + n > b->cap) {
		b->overflow = true;
		return;
	}
	memcpy(b->code + b->len, p, n);
	b->len += n;
}
static inline void emit1(struct x86_buf *b, uint8_t v) { emit_bytes(b, &v, 1); }
static inline void emit4(struct x86_buf *b, uint32_t v) { emit_bytes(b, &v, 4); }
static inline void emit8(struct x86_buf *b, uint64_t v) { emit_bytes(b, &v, 8); }

/* REX prefix; `force` emits it even when empty (byte access to sil/dil/bpl/spl). */
static inline void emit_rex(struct x86_buf *b, bool w, int reg, int index, int base, bool force)
{
	uint8_t rex = 0x40 | (w ? 8 : 0) | ((reg >> 3) & 1) << 2 | ((index >> 3) & 1) << 1 |
		      ((base >> 3) & 1);
	if (rex != 0x40 || force)
		emit1(b, rex);
}

static inline void emit_modrm_reg(struct x86_buf *b, int reg, int rm)
{
	emit1(b, (uint8_t)(0xc0 | (reg & 7) << 3 | (rm & 7)));
}

/* ModRM (+SIB, +disp) for [base + disp]. */
static inline void emit_modrm_mem(struct x86_buf *b, int reg, int base, int32_t disp)
{
	int mod = disp == 0 && (base & 7) != RBP ? 0 : (disp >= -128 && disp <= 127 ? 1 : 2);
	emit1(b, (uint8_t)(mod << 6 | (reg & 7) << 3 | (base & 7)));
	if ((base & 7) == RSP)
		emit1(b, 0x24); /* SIB: no index, base */
	if (mod == 1)
		emit1(b, (uint8_t)(int8_t)disp);
	else if (mod == 2)
		emit4(b, (uint32_t)disp);
}

/* op r/m, reg (register form), e.g. 0x01 add, 0x29 sub, 0x89 mov, 0x39 cmp, 0x85 test. */
static inline void emit_rr(struct x86_buf *b, uint8_t op, bool w, int dst, int src)
{
	emit_rex(b, w, src, 0, dst, false);
	emit1(b, op);
	emit_modrm_reg(b, src, dst);
}

/* Two-byte opcode 0F xx with reg, r/m operands (imul, movzx, movsx). */
static inline void emit_0f_rr(struct x86_buf *b, uint8_t op, bool w, int reg, int rm, bool force_rex)
{
	emit_rex(b, w, reg, 0, rm, force_rex);
	emit1(b, 0x0f);
	emit1(b, op);
	emit_modrm_reg(b, reg, rm);
}

/* Group-1 ALU with immediate: ext 0 add, 1 or, 4 and, 5 sub, 6 xor, 7 cmp. */
static inline void emit_alu_imm(struct x86_buf *b, int ext, bool w, int dst, int32_t imm)
{
	emit_rex(b, w, 0, 0, dst, false);
	if (imm >= -128 && imm <= 127) {
		emit1(b, 0x83);
		emit_modrm_reg(b, ext, dst);
		emit1(b, (uint8_t)(int8_t)imm);
	} else {
		emit1(b, 0x81);
		emit_modrm_reg(b, ext, dst);
		emit4(b, (uint32_t)imm);
	}
}

/* Group-1 ALU on memory with immediate: op qword/dword [base+disp], imm. */
static inline void emit_alu_mem_imm(struct x86_buf *b, int ext, bool w, int base, int32_t disp,
				    int32_t imm)
{
	emit_rex(b, w, 0, 0, base, false);
	emit1(b, 0x81);
	emit_modrm_mem(b, ext, base, disp);
	emit4(b, (uint32_t)imm);
}

static inline void emit_mov_rr(struct x86_buf *b, bool w, int dst, int src)
{
	emit_rr(b, 0x89, w, dst, src);
}

/* dst = imm64, with the shortest encoding. */
static inline void emit_mov_imm64(struct x86_buf *b, int dst, uint64_t v)
{
	if (v == 0) {
		emit_rr(b, 0x31, false, dst, dst); /* xor r32, r32 */
	} else if (v <= 0xffffffffu) {
		emit_rex(b, false, 0, 0, dst, false);
		emit1(b, (uint8_t)(0xb8 + (dst & 7)));
		emit4(b, (uint32_t)v);
	} else if ((int64_t)v >= INT32_MIN && (int64_t)v <= INT32_MAX) {
		emit_rex(b, true, 0, 0, dst, false);
		emit1(b, 0xc7);
		emit_modrm_reg(b, 0, dst);
		emit4(b, (uint32_t)v);
	} else {
		emit_rex(b, true, 0, 0, dst, false);
		emit1(b, (uint8_t)(0xb8 + (dst & 7)));
		emit8(b, v);
	}
}

/* reg <-> [base+disp] with a one-byte opcode (0x8b load, 0x89 store, 0x8d lea). */
static inline void emit_mem(struct x86_buf *b, uint8_t op, bool w, int reg, int base, int32_t disp)
{
	emit_rex(b, w, reg, 0, base, false);
	emit1(b, op);
	emit_modrm_mem(b, reg, base, disp);
}

static inline void emit_push(struct x86_buf *b, int r)
{
	emit_rex(b, false, 0, 0, r, false);
	emit1(b, (uint8_t)(0x50 + (r & 7)));
}
static inline void emit_pop(struct x86_buf *b, int r)
{
	emit_rex(b, false, 0, 0, r, false);
	emit1(b, (uint8_t)(0x58 + (r & 7)));
}

/* call reg */
static inline void emit_call_reg(struct x86_buf *b, int r)
{
	emit_rex(b, false, 0, 0, r, false);
	emit1(b, 0xff);
	emit_modrm_reg(b, 2, r);
}

/* Jumps with a rel32 placeholder; return the offset of the rel32 to patch. */
static inline uint32_t emit_jmp32(struct x86_buf *b)
{
	emit1(b, 0xe9);
	uint32_t at = b->len;
	emit4(b, 0);
	return at;
}
static inline uint32_t emit_jcc32(struct x86_buf *b, uint8_t cc)
{
	emit1(b, 0x0f);
	emit1(b, (uint8_t)(0x80 | cc));
	uint32_t at = b->len;
	emit4(b, 0);
	return at;
}
static inline uint32_t emit_call32(struct x86_buf *b)
{
	emit1(b, 0xe8);
	uint32_t at = b->len;
	emit4(b, 0);
	return at;
}
static inline void patch_rel32(struct x86_buf *b, uint32_t at, uint32_t target)
{
	if (b->overflow)
		return;
	int32_t rel = (int32_t)(target - (at + 4));
	memcpy(b->code + at, &rel, 4);
}

enum {
	CC_B = 0x2, CC_AE = 0x3, CC_E = 0x4, CC_NE = 0x5, CC_BE = 0x6, CC_A = 0x7,
	CC_L = 0xc, CC_GE = 0xd, CC_LE = 0xe, CC_G = 0xf,
};

#endif
