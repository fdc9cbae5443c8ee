/*
 * bpf_probe_read{,_user} and bpf_probe_read{,_user}_str compiled into the program, for calls
 * whose destination pointer_facts.c proves to lie in the running frame with room for a constant
 * size: exactly what the runtime's helpers (csrc/helpers/process_helpers.c) do there, without
 * their argument checks, which the proof makes always pass.
 *
 * A read of up to INLINE_READ_MAX bytes becomes loads from the source and stores into the
 * frame, in safe_copy_asm's order (8-byte words, then 4, 2, 1 bytes), and r0 = 0. Those
 * instructions form one entry of the program's exception table (base/fault_fixup.h): a fault
 * there sends the SIGSEGV handler of base/safe_copy.c to the fixup emitted after the program,
 * which zeroes the destination and sets r0 = -EFAULT, the helper's result on a bad source. A
 * string read calls safe_read_str_direct, the helper's copy itself.
 *
 * Both need the fault handler installed: when it is not (another thread is installing it), the
 * helper is called, and its slower system-call path used meanwhile.
 */
#include "jit_probe_read.h"
#include "../base/safe_copy.h"

#include <stdlib.h>

#define INLINE_READ_MAX 64

static bool add_site(struct jit_reads *r, struct inline_read s)
{
	if (r->n == r->cap) {
		uint32_t cap = r->cap ? r->cap * 2 : 16;
		struct inline_read *n = realloc(r->site, cap * sizeof(*n));
		if (!n) {
			r->failed = true;
			return false;
		}
		r->site = n;
		r->cap = cap;
	}
	r->site[r->n++] = s;
	return true;
}

/* movzx r11d, word/byte [base + disp] */
static void load_zx(struct x86_buf *b, uint8_t op, int base, int32_t disp)
{
	emit_rex(b, false, R11, 0, base, false);
	emit1(b, 0x0f);
	emit1(b, op);
	emit_modrm_mem(b, R11, base, disp);
}

/* [rdi + off, + size) = r11's low bytes (r11 = 0: zeroes) or the bytes at [rdx + off]. */
static void copy_chunks(struct x86_buf *b, uint32_t size, bool zero)
{
	uint32_t off = 0;
	for (; off + 8 <= size; off += 8) {
		if (!zero)
			emit_mem(b, 0x8b, true, R11, RDX, (int32_t)off);
		emit_mem(b, 0x89, true, R11, RDI, (int32_t)off);
	}
	if (size - off >= 4) {
		if (!zero)
			emit_mem(b, 0x8b, false, R11, RDX, (int32_t)off);
		emit_mem(b, 0x89, false, R11, RDI, (int32_t)off);
		off += 4;
	}
	if (size - off >= 2) {
		if (!zero)
			load_zx(b, 0xb7, RDX, (int32_t)off);
		emit1(b, 0x66);
		emit_mem(b, 0x89, false, R11, RDI, (int32_t)off);
		off += 2;
	}
	if (size - off >= 1) {
		if (!zero)
			load_zx(b, 0xb6, RDX, (int32_t)off);
		emit_mem(b, 0x88, false, R11, RDI, (int32_t)off);
	}
}

static bool handler_and_slot(struct jit_reads *r)
{
	if (!safe_copy_ready())
		return false;
	if (!r->slot)
		r->slot = fault_fixup_reserve();
	return r->slot != 0;
}

uintptr_t probe_read_direct_fn(const struct bpftime_vm *vm, int32_t id, uint32_t size)
{
	if (id < 0 || (uint32_t)id >= vm->nhelpers || size == 0 || !vm->helpers[id].fn)
		return 0;
	bpftime_helper_fn fn = vm->helpers[id].fn;
	if ((fn != vm->probe_read_fn && fn != vm->probe_read_str_fn) || !safe_copy_ready())
		return 0;
	return fn == vm->probe_read_fn ? (uintptr_t)safe_read_direct : (uintptr_t)safe_read_str_direct;
}

bool jit_emit_probe_read(struct jit_reads *r, struct x86_buf *b, const struct bpftime_vm *vm,
			 int32_t id, uint32_t size)
{
	uintptr_t direct = probe_read_direct_fn(vm, id, size);
	if (!direct)
		return false;
	if (direct != (uintptr_t)safe_read_direct || size > INLINE_READ_MAX || !handler_and_slot(r)) {
		/* r1 = dst, r2 = size, r3 = src already: the helper's order. */
		emit_mov_imm64(b, R10, direct);
		emit_call_reg(b, R10);
		return true;
	}
	struct inline_read s = {.start = b->len, .size = size};
	copy_chunks(b, size, false);
	s.end = b->len;
	emit_rr(b, 0x31, false, RAX, RAX);
	s.resume = b->len;
	return add_site(r, s);
}

void jit_emit_read_fixups(struct jit_reads *r, struct x86_buf *b)
{
	free(r->table);
	r->table = r->n ? calloc(r->n, sizeof(*r->table)) : NULL;
	if (r->n && !r->table) {
		r->failed = true;
		return;
	}
	for (uint32_t i = 0; i < r->n; i++) {
		const struct inline_read *s = &r->site[i];
		r->table[i] = (struct fault_fixup){s->start, s->end, b->len};
		emit_rr(b, 0x31, false, R11, R11);
		copy_chunks(b, s->size, true);
		emit_mov_imm64(b, RAX, (uint64_t)-EFAULT);
		patch_rel32(b, emit_jmp32(b), s->resume);
	}
}

void jit_reads_free(struct jit_reads *r, bool keep)
{
	if (!keep && r->slot)
		fault_fixup_release(r->slot);
	free(r->site);
	free(r->table);
	*r = (struct jit_reads){0};
}
