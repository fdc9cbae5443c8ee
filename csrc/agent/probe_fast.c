/*
 * The C side of the probe fast path (probe_fast.h): which lists the stubs may
 * run themselves, and what follows a fast run that did not simply return.
 */
#include "probe_fast.h"
#include "probe_exec.h"
#include "probe_state.h"
#include "../helpers/helpers.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>

_Static_assert(offsetof(struct probe_fast, entry) == PF_ENTRY, "probe_fast layout");
_Static_assert(offsetof(struct probe_fast, serial) == PF_SERIAL, "probe_fast layout");
_Static_assert(offsetof(struct probe_fast, ctx_tpoff) == PF_CTX_TPOFF, "probe_fast layout");
_Static_assert(offsetof(struct probe_fast, serial_tpoff) == PF_SERIAL_TPOFF, "probe_fast layout");
_Static_assert(offsetof(struct probe_fast, info) == PF_INFO, "probe_fast layout");
_Static_assert(offsetof(struct probe_fast, ip) == PF_IP, "probe_fast layout");
_Static_assert(offsetof(struct probe_fast, no_ctx) == PF_NO_CTX, "probe_fast layout");
_Static_assert(offsetof(struct hook, owner) == HOOK_OWNER, "hook layout");
_Static_assert(offsetof(struct probe_site, fast) == SITE_FAST, "probe_site layout");
_Static_assert(offsetof(struct probe_site, ret_fast) == SITE_RET_FAST, "probe_site layout");
_Static_assert(offsetof(struct jit_ctx, mem_lo) == CTX_MEM_LO, "jit_ctx layout");
_Static_assert(offsetof(struct jit_ctx, mem_limit) == CTX_MEM_LIMIT0, "jit_ctx layout");
_Static_assert(offsetof(struct jit_ctx, faulted) == CTX_FAULTED, "jit_ctx layout");
_Static_assert(offsetof(struct jit_ctx, outer) == CTX_OUTER, "jit_ctx layout");
_Static_assert(offsetof(struct jit_ctx, attach) == CTX_ATTACH, "jit_ctx layout");
_Static_assert(offsetof(struct override_request, requested) == OVERRIDE_REQUESTED, "override_request layout");
_Static_assert(offsetof(struct shadow_stack, e) == SHADOW_ENTRIES, "shadow_stack layout");
_Static_assert(sizeof(struct shadow_entry) == SHADOW_ENTRY_SIZE, "shadow_stack layout");
_Static_assert(sizeof(struct pt_regs) == PT_REGS_SIZE, "pt_regs layout");
_Static_assert(sizeof(in_probe) == 4, "the stubs test in_probe as 32 bits");

/*
 * Whether the program may read its context: whether it calls anything (a helper or
 * subprogram gets r1, a helper may reach the context through current_run), or an instruction
 * that reads r1 (copying it included) is reached while r1 may still hold the context pointer,
 * on any path. r1 stops holding it where it is overwritten without being read (mov, a load
 * into it, lddw). Stubs rely on it: a program that reads no context calls nothing.
 * The instructions are read in their encoding (code, dst | src << 4, off, imm; lddw takes two).
 */
static bool may_read_ctx(const struct bpftime_vm *vm)
{
	const uint8_t *code = (const uint8_t *)vm->insns;
	uint32_t n = vm->ninsns;
	/* Any call, even after r1 is overwritten: a helper may find the context through current_run. */
	for (uint32_t pc = 0; pc < n; pc++) {
		uint8_t op = code[(uint64_t)pc * 8];
		if (((op & 7) == 5 || (op & 7) == 6) && (op & 0xf0) == 0x80)
			return true;
		if (op == 0x18)
			pc++;
	}
	bool *seen = calloc(n ? n : 1, 1);
	uint32_t *work = malloc((n ? n : 1) * sizeof(uint32_t));
	if (!seen || !work) {
		free(seen), free(work);
		return true;
	}
	bool reads = false;
	uint32_t top = 0;
	work[top++] = 0;
	seen[0] = true;
	while (top && !reads) {
		uint32_t pc = work[--top];
		const uint8_t *in = code + (uint64_t)pc * 8;
		uint8_t op = in[0], dst = in[1] & 0xf, src = in[1] >> 4, cls = op & 7;
		bool reg_src = op & 0x08, kills = false;
		int16_t off = (int16_t)(in[2] | in[3] << 8);
		int32_t imm = (int32_t)((uint32_t)in[4] | (uint32_t)in[5] << 8 | (uint32_t)in[6] << 16 |
					(uint32_t)in[7] << 24);
		int64_t next[2] = {(int64_t)pc + 1, -1};
		switch (cls) {
		case 0: /* LD: lddw writes dst; legacy packet loads read the context */
			reads = op != 0x18;
			kills = dst == 1;
			next[0] = (int64_t)pc + 2;
			break;
		case 4: /* ALU */
		case 7: /* ALU64 */
			reads = (reg_src && src == 1) || (dst == 1 && (op & 0xf0) != 0xb0);
			kills = dst == 1;
			break;
		case 1: /* LDX: reads memory at src */
			reads = src == 1;
			kills = dst == 1;
			break;
		case 2: /* ST: stores at dst */
			reads = dst == 1;
			break;
		case 3: /* STX (and atomics) */
			reads = dst == 1 || src == 1;
			break;
		case 5: /* JMP */
		case 6: /* JMP32 */
			if ((op & 0xf0) == 0x80) { /* call */
				reads = true;
			} else if ((op & 0xf0) == 0x90) { /* exit */
				next[0] = -1;
			} else if ((op & 0xf0) == 0x00) { /* ja, gotol */
				next[0] = (int64_t)pc + 1 + (cls == 6 ? imm : off);
			} else {
				reads = dst == 1 || (reg_src && src == 1);
				next[1] = (int64_t)pc + 1 + off;
			}
			break;
		}
		if (reads || kills)
			continue;
		for (int i = 0; i < 2; i++) {
			if (next[i] == -1)
				continue;
			if (next[i] < 0 || next[i] >= (int64_t)n) {
				reads = true; /* not a program the validator passed: assume the worst */
				break;
			}
			if (!seen[next[i]]) {
				seen[next[i]] = true;
				work[top++] = (uint32_t)next[i];
			}
		}
	}
	free(seen);
	free(work);
	return reads;
}

struct probe_fast *probe_fast_build(const struct probe_list *l, uint64_t ip)
{
	if (!l || l->n != 1 || !l->vector_clean || l->any_pid)
		return NULL;
	const struct probe_prog *p = &l->progs[0];
	/*
	 * vm_probe_fast_path is fixed once the program is loaded (its budget is set before, by
	 * the agent): the stubs enter the JIT code without asking again.
	 */
	if (p->pid >= 0 || p->replace || !vm_probe_fast_path(p->vm))
		return NULL;
	struct probe_fast *f = calloc(1, sizeof(*f));
	if (!f)
		return NULL;
	f->entry = (void *)vm_jit_entry(p->vm);
	f->serial = p->vm->serial;
	f->slot = (unsigned)(p->vm->serial % PROBE_CTX_SLOTS);
	uint64_t tp;
	__asm__("mov %%fs:0, %0" : "=r"(tp));
	f->ctx_tpoff = (uint64_t)(uintptr_t)&probe_ctx[f->slot] - tp;
	f->serial_tpoff = (uint64_t)(uintptr_t)&probe_ctx_serial[f->slot] - tp;
	f->info = &p->info;
	f->ip = ip;
	f->prog = p;
	f->may_override = ip != 0;
	f->no_ctx = !may_read_ctx(p->vm);
	return f;
}

NO_VECTORS uint64_t bpftime_probe_fast_after(const struct probe_fast *f, struct pt_regs *regs, uint64_t r0)
{
	uint64_t ret;
	if (probe_ctx[f->slot].faulted != 0 && probe_run_finish(f->slot, r0, &ret) < 0)
		probe_note_fault(f->prog);
	uint64_t returns = 0;
	if (override_request.requested && f->may_override) {
		regs->ax = override_request.value;
		returns = 1;
	}
	in_probe--;
	return returns;
}
