/*
 * Helper calls for the x86-64 JIT, so that the commonest programs on a probe (take the ids,
 * count in a map) run without the vector registers saved:
 *  - bpf_get_current_pid_tgid reads the helper's per-thread cache (a TLS word at a fixed
 *    offset from fs, valid while it agrees with the process's tgid word) and calls the helper
 *    only when that does not hold or a synthetic task asks for the leader's ids;
 *  - a program with at most one other helper call (and no loop, subprogram or callback, so
 *    that call runs at most once per run) calls it through the agent's gate, which keeps the
 *    vector registers, instead of having every run save them (jit_x86_64.c decides).
 */
#include "jit_helper_calls.h"

static bool fits_i32(int64_t v)
{
	return v >= INT32_MIN && v <= INT32_MAX;
}

/* fs: prefix, then op with ModRM reg `reg` on [disp32] (SIB without base or index). */
static void emit_fs_abs(struct x86_buf *b, bool w, uint8_t op, int reg, int32_t disp)
{
	emit1(b, 0x64);
	emit_rex(b, w, reg, 0, 0, false);
	emit1(b, op);
	emit1(b, (uint8_t)(0x04 | (reg & 7) << 3));
	emit1(b, 0x25);
	emit4(b, (uint32_t)disp);
}

uint32_t jit_emit_pid_tgid_cached(struct x86_buf *b, const struct vm_pid_tgid_inline *p, uint64_t fn)
{
	if (!p->fn || (uint64_t)(uintptr_t)p->fn != fn || !p->tgid_word || !fits_i32(p->cache_tls_off) ||
	    !fits_i32(p->leader_tls_off))
		return 0;
	emit_fs_abs(b, true, 0x8b, RAX, (int32_t)p->cache_tls_off); /* mov rax, fs:[cache] */
	emit_rr(b, 0x85, true, RAX, RAX);
	uint32_t none = emit_jcc32(b, CC_E);
	emit_mov_rr(b, true, RDX, RAX); /* edx = the cached tgid */
	emit_rex(b, true, 0, 0, RDX, false); /* shr rdx, 32 */
	emit1(b, 0xc1);
	emit_modrm_reg(b, 5, RDX);
	emit1(b, 32);
	emit_mov_imm64(b, RCX, p->tgid_word);
	emit_mem(b, 0x3b, false, RDX, RCX, 0); /* cmp edx, [tgid word]: 0 in a forked child */
	uint32_t stale = emit_jcc32(b, CC_NE);
	emit1(b, 0x64); /* cmp dword fs:[leader], 0 */
	emit1(b, 0x83);
	emit1(b, 0x3c);
	emit1(b, 0x25);
	emit4(b, (uint32_t)(int32_t)p->leader_tls_off);
	emit1(b, 0);
	uint32_t leader = emit_jcc32(b, CC_NE);
	uint32_t done = emit_jmp32(b);
	patch_rel32(b, none, b->len);
	patch_rel32(b, stale, b->len);
	patch_rel32(b, leader, b->len);
	return done;
}

void jit_emit_helper_call(struct x86_buf *b, uint64_t fn, vm_helper_gate_fn gate)
{
	if (gate) { /* gate(fn, r1..r5): the arguments move up one register */
		emit_mov_rr(b, true, R9, R8);
		emit_mov_rr(b, true, R8, RCX);
		emit_mov_rr(b, true, RCX, RDX);
		emit_mov_rr(b, true, RDX, RSI);
		emit_mov_rr(b, true, RSI, RDI);
		emit_mov_imm64(b, RDI, fn);
		fn = (uint64_t)(uintptr_t)gate;
	}
	emit_mov_imm64(b, R10, fn);
	emit_call_reg(b, R10);
}
