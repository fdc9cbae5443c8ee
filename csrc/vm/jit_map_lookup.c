/*
 * Inline map lookups for the x86-64 JIT: the code a call of bpf_map_lookup_elem would run for
 * a plain array or a plain hash map, with the map's layout (struct vm_map_inline) as
 * constants. Hash lookups follow hash.c's lock-free path exactly: the key's hash
 * (map_hash_bytes, seed 0, for 4- and 8-byte keys), the bucket, then the chain
 * with a bounded number of steps and every index checked, as find() does. On x86-64 every load
 * is an acquire load, so this is the same protocol against concurrent writers.
 */
#include "jit_map_lookup.h"
#include "../base/map_hash.h"

static void imul_imm(struct x86_buf *b, int dst, int src, int32_t imm)
{
	emit_rex(b, true, dst, 0, src, false);
	emit1(b, 0x69);
	emit_modrm_reg(b, dst, src);
	emit4(b, (uint32_t)imm);
}

static void imul_rr(struct x86_buf *b, int dst, int src)
{
	emit_0f_rr(b, 0xaf, true, dst, src, false);
}

static void shr_imm(struct x86_buf *b, int r, uint8_t n)
{
	emit_rex(b, true, 0, 0, r, false);
	emit1(b, 0xc1);
	emit_modrm_reg(b, 5, r);
	emit1(b, n);
}

static bool fits_i32(uint64_t v)
{
	return v <= INT32_MAX;
}

/*
 * Branch-free: rax = values + index * stride, replaced by 0 when the index is out of range (a
 * jump around the computation cost a taken branch per lookup, and the index never steers a
 * speculative load either).
 */
static void emit_array(struct x86_buf *b, const struct vm_map_inline *m)
{
	emit_mem(b, 0x8b, false, RCX, RSI, 0);                 /* mov ecx, [rsi] */
	imul_imm(b, RDX, RCX, (int32_t)m->value_stride);       /* rdx = index * stride */
	emit_mov_imm64(b, RAX, m->values);
	emit_rr(b, 0x01, true, RAX, RDX);                      /* rax += rdx */
	emit_rr(b, 0x31, false, RDX, RDX);
	emit_alu_imm(b, 7, false, RCX, (int32_t)m->max_entries); /* cmp ecx, max_entries */
	emit_0f_rr(b, 0x43, true, RAX, RDX, false);            /* cmovae rax, rdx */
}

/* r10 = map_hash_bytes(key in rsi, key_size, 0) (csrc/base/map_hash.h: 4 or 8 bytes). */
static void emit_hash(struct x86_buf *b, uint32_t key_size)
{
	emit_mov_imm64(b, R10, MAP_HASH_BASE ^ key_size);
	emit_rr(b, 0x31, true, R10, RSI);
	for (int round = 0; round < 2; round++) {
		emit_mov_rr(b, true, RCX, R10);
		shr_imm(b, RCX, 33);
		emit_rr(b, 0x31, true, R10, RCX);
		emit_mov_imm64(b, R11, round == 0 ? MAP_HASH_MIX1 : MAP_HASH_MIX2);
		imul_rr(b, R10, R11);
	}
	emit_mov_rr(b, true, RCX, R10);
	shr_imm(b, RCX, 33);
	emit_rr(b, 0x31, true, R10, RCX);
	emit_mov_rr(b, false, R10, R10); /* the low 32 bits */
}

static void emit_hash_map(struct x86_buf *b, const struct vm_map_inline *m)
{
	bool wide = m->key_size == 8;
	emit_mem(b, 0x8b, wide, RSI, RSI, 0); /* rsi = the key (its address is not needed again) */
	emit_hash(b, m->key_size);
	emit_mov_rr(b, false, RDX, R10); /* rdx = &buckets[h & mask] */
	emit_alu_imm(b, 4, false, RDX, (int32_t)m->bucket_mask);
	emit_rex(b, true, 0, 0, RDX, false); /* shl rdx, 2 */
	emit1(b, 0xc1);
	emit_modrm_reg(b, 4, RDX);
	emit1(b, 2);
	emit_mov_imm64(b, RDI, m->buckets);
	emit_rr(b, 0x01, true, RDX, RDI);
	emit_mem(b, 0x8b, false, RAX, RDX, 0); /* eax = element index + 1 */
	emit_rr(b, 0x31, false, R8, R8);       /* r8d = steps */
	emit_mov_imm64(b, RDI, m->elems);
	uint32_t loop = b->len;
	emit_rr(b, 0x85, false, RAX, RAX);
	uint32_t miss1 = emit_jcc32(b, CC_E);
	emit_alu_imm(b, 7, false, RAX, (int32_t)m->max_entries);
	uint32_t miss2 = emit_jcc32(b, CC_A);
	emit_alu_imm(b, 7, false, R8, (int32_t)m->max_entries);
	uint32_t miss3 = emit_jcc32(b, CC_A);
	emit_mov_rr(b, false, RDX, RAX); /* rdx = element (index + 1 - 1) */
	emit_alu_imm(b, 5, false, RDX, 1);
	imul_imm(b, RDX, RDX, (int32_t)m->elem_size);
	emit_rr(b, 0x01, true, RDX, RDI);
	emit_mem(b, 0x3b, false, R10, RDX, (int32_t)m->elem_hash_off); /* cmp r10d, [hash] */
	uint32_t other1 = emit_jcc32(b, CC_NE);
	emit_mem(b, 0x3b, wide, RSI, RDX, (int32_t)m->elem_key_off); /* cmp rsi, [key] */
	uint32_t other2 = emit_jcc32(b, CC_NE);
	emit_alu_imm(b, 5, false, RAX, 1); /* found: values + (index) * stride */
	imul_imm(b, RAX, RAX, (int32_t)m->value_stride);
	emit_mov_imm64(b, R11, m->values);
	emit_rr(b, 0x01, true, RAX, R11);
	uint32_t done = emit_jmp32(b);
	patch_rel32(b, other1, b->len);
	patch_rel32(b, other2, b->len);
	emit_mem(b, 0x8b, false, RAX, RDX, (int32_t)m->elem_next_off); /* the next in the chain */
	emit_alu_imm(b, 0, false, R8, 1);
	patch_rel32(b, emit_jmp32(b), loop);
	patch_rel32(b, miss1, b->len);
	patch_rel32(b, miss2, b->len);
	patch_rel32(b, miss3, b->len);
	emit_rr(b, 0x31, false, RAX, RAX);
	patch_rel32(b, done, b->len);
}

bool jit_map_lookup_inlinable(const struct vm_map_inline *m)
{
	if (!fits_i32(m->value_stride) || !fits_i32(m->max_entries))
		return false;
	if (m->kind == VM_INLINE_ARRAY)
		return true;
	return m->kind == VM_INLINE_HASH && (m->key_size == 4 || m->key_size == 8) && fits_i32(m->elem_size) &&
	       fits_i32(m->bucket_mask) && fits_i32(m->elem_hash_off) && fits_i32(m->elem_key_off) &&
	       fits_i32(m->elem_next_off);
}

bool jit_emit_map_lookup(struct x86_buf *b, const struct vm_map_inline *m)
{
	if (!jit_map_lookup_inlinable(m))
		return false;
	if (m->kind == VM_INLINE_ARRAY)
		emit_array(b, m);
	else
		emit_hash_map(b, m);
	return true;
}
