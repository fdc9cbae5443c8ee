/*
 * The C side of the probe fast path (probe_fast.h): which lists the stubs may
 * run themselves, and what follows a fast run that did not simply return.
 */
#include "probe_fast.h"
#include "probe_exec.h"
#include "probe_state.h"
#include "../helpers/helpers.h"

#include <stddef.h>
#include <stdlib.h>

_Static_assert(offsetof(struct probe_fast, entry) == PF_ENTRY, "probe_fast layout");
_Static_assert(offsetof(struct probe_fast, serial) == PF_SERIAL, "probe_fast layout");
_Static_assert(offsetof(struct probe_fast, ctx_off) == PF_CTX_OFF, "probe_fast layout");
_Static_assert(offsetof(struct probe_fast, serial_off) == PF_SERIAL_OFF, "probe_fast layout");
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
 * Whether the program may read its context pointer, r1 at entry. Conservatively: whether any
 * instruction reads r1 at all (only overwriting it is allowed) or calls anything (a helper or
 * subprogram gets r1). The instructions are read in their encoding (code, dst | src << 4, off,
 * imm; lddw takes two).
 */
static bool may_read_ctx(const struct bpftime_vm *vm)
{
	const uint8_t *in = (const uint8_t *)vm->insns;
	for (uint32_t pc = 0; pc < vm->ninsns; pc++, in += 8) {
		uint8_t code = in[0], dst = in[1] & 0xf, src = in[1] >> 4, cls = code & 7, op = code & 0xf0;
		bool reg_src = code & 0x08;
		if (code == 0x18) { /* lddw: writes dst (its src is a pseudo kind, not a register) */
			pc++, in += 8;
			continue;
		}
		switch (cls) {
		case 4: /* ALU */
		case 7: /* ALU64: mov only writes dst */
			if ((reg_src && src == 1) || (dst == 1 && op != 0xb0))
				return true;
			break;
		case 5: /* JMP */
		case 6: /* JMP32 */
			if (op == 0x80) /* call */
				return true;
			if (op != 0x00 && op != 0x90 && (dst == 1 || (reg_src && src == 1)))
				return true; /* a conditional jump comparing r1 (ja and exit read none) */
			break;
		case 1: /* LDX: reads memory at src */
			if (src == 1)
				return true;
			break;
		case 2: /* ST: stores at dst */
			if (dst == 1)
				return true;
			break;
		case 3: /* STX (and atomics) */
			if (dst == 1 || src == 1)
				return true;
			break;
		default: /* legacy packet loads */
			return true;
		}
	}
	return false;
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
	f->ctx_off = f->slot * sizeof(struct jit_ctx);
	f->serial_off = f->slot * sizeof(uint64_t);
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
