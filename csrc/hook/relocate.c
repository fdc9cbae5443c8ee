/*
 * Building a hook's trampoline: decode (Zydis) the instructions the 5-byte
 * jump will cover, and copy them into the trampoline so they behave as at
 * their original address: RIP-relative operands are rebased, relative jumps,
 * conditional jumps and calls become absolute. Refuses what cannot be moved.
 */
#include "hook.h"

#include <Zydis/Zydis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ERR(...) (snprintf(err, errlen, __VA_ARGS__), (struct hook *)NULL)

struct emitter {
	uint8_t *p;
	uint8_t *end;
};

static void emit(struct emitter *e, const void *bytes, size_t n)
{
	if (e->p + n <= e->end)
		memcpy(e->p, bytes, n);
	e->p += n;
}

/* jmp [rip+0]; .quad target: an absolute jump that clobbers nothing. */
static void emit_abs_jmp(struct emitter *e, uint64_t target)
{
	static const uint8_t jmp[] = {0xff, 0x25, 0, 0, 0, 0};
	emit(e, jmp, sizeof(jmp));
	emit(e, &target, 8);
}

/* call [rip+2]; jmp +8; .quad target: returns into the trampoline, after the literal. */
static void emit_abs_call(struct emitter *e, uint64_t target)
{
	static const uint8_t call[] = {0xff, 0x15, 2, 0, 0, 0, 0xeb, 0x08};
	emit(e, call, sizeof(call));
	emit(e, &target, 8);
}

static bool is_terminator(const ZydisDecodedInstruction *in)
{
	switch (in->mnemonic) {
	case ZYDIS_MNEMONIC_RET:
	case ZYDIS_MNEMONIC_JMP:
	case ZYDIS_MNEMONIC_UD2:
	case ZYDIS_MNEMONIC_INT3:
	case ZYDIS_MNEMONIC_HLT:
		return true;
	default:
		return false;
	}
}

/* Copies one instruction from `from` (decoded `in`) to the emitter. */
static int relocate_one(struct emitter *e, const uint8_t *code, uint64_t from,
			const ZydisDecodedInstruction *in, char *err, uint64_t errlen)
{
	uint64_t next = from + in->length;
	bool relative = (in->attributes & ZYDIS_ATTRIB_IS_RELATIVE) != 0;
	if (!relative) {
		emit(e, code, in->length);
		return 0;
	}
	if (in->raw.imm[0].is_relative) {
		uint64_t target = next + (uint64_t)in->raw.imm[0].value.s;
		switch (in->meta.category) {
		case ZYDIS_CATEGORY_UNCOND_BR:
			emit_abs_jmp(e, target);
			return 0;
		case ZYDIS_CATEGORY_CALL:
			emit_abs_call(e, target);
			return 0;
		case ZYDIS_CATEGORY_COND_BR: {
			uint8_t cc;
			if (code[0] >= 0x70 && code[0] <= 0x7f)
				cc = code[0] & 0xf;
			else if (code[0] == 0x0f && code[1] >= 0x80 && code[1] <= 0x8f)
				cc = code[1] & 0xf;
			else {
				snprintf(err, errlen, "cannot relocate %s (loop/jrcxz) at 0x%llx",
					 ZydisMnemonicGetString(in->mnemonic), (unsigned long long)from);
				return -1;
			}
			/* j!cc over an absolute jump to the target. */
			const uint8_t skip[] = {(uint8_t)(0x70 | (cc ^ 1)), 14};
			emit(e, skip, 2);
			emit_abs_jmp(e, target);
			return 0;
		}
		default:
			break;
		}
		snprintf(err, errlen, "cannot relocate relative %s at 0x%llx",
			 ZydisMnemonicGetString(in->mnemonic), (unsigned long long)from);
		return -1;
	}
	/* A RIP-relative memory operand: rebase its 32-bit displacement. */
	if (in->raw.disp.size == 32) {
		uint64_t at = (uint64_t)e->p;
		int64_t disp = in->raw.disp.value + (int64_t)(from - at);
		if (disp != (int32_t)disp) {
			snprintf(err, errlen, "RIP-relative operand at 0x%llx out of reach of the trampoline",
				 (unsigned long long)from);
			return -1;
		}
		uint8_t buf[16];
		memcpy(buf, code, in->length);
		int32_t d32 = (int32_t)disp;
		memcpy(buf + in->raw.disp.offset, &d32, 4);
		emit(e, buf, in->length);
		return 0;
	}
	snprintf(err, errlen, "cannot relocate %s at 0x%llx", ZydisMnemonicGetString(in->mnemonic),
		 (unsigned long long)from);
	return -1;
}

/* Refuses when code after the patch jumps back into the bytes it replaces. */
static int check_branches_into(const ZydisDecoder *dec, uint64_t addr, const uint8_t *code, uint64_t func_size,
			       uint64_t patched, char *err, uint64_t errlen)
{
	ZydisDecodedInstruction in;
	for (uint64_t off = 0; off < func_size;) {
		if (!ZYAN_SUCCESS(ZydisDecoderDecodeInstruction(dec, NULL, code + off, func_size - off, &in)))
			return 0; /* data or padding: stop the linear sweep */
		uint64_t next = addr + off + in.length;
		if ((in.attributes & ZYDIS_ATTRIB_IS_RELATIVE) && in.raw.imm[0].is_relative) {
			uint64_t target = next + (uint64_t)in.raw.imm[0].value.s;
			if (target > addr && target < addr + patched) {
				snprintf(err, errlen,
					 "the instruction at 0x%llx jumps into the bytes the hook would replace (0x%llx)",
					 (unsigned long long)(addr + off), (unsigned long long)target);
				return -1;
			}
		}
		off += in.length;
	}
	return 0;
}

void hook_set_stub(struct hook *h, void (*stub)(void))
{
	/* An aligned 8-byte literal: a thread entering now calls the old stub or the new, either works. */
	uint64_t *lit = (uint64_t *)(h->trampoline + HOOK_TRAMPOLINE_SIZE - 8);
	__atomic_store_n(lit, (uint64_t)stub, __ATOMIC_RELEASE);
}

struct hook *hook_create(uint64_t addr, uint64_t func_size, const uint8_t *code, char *err, uint64_t errlen)
{
	ZydisDecoder dec;
	ZydisDecoderInit(&dec, ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64);
	if (func_size && func_size < HOOK_PATCH_LEN)
		return ERR("function at 0x%llx is %llu bytes, shorter than the %d-byte patch",
			   (unsigned long long)addr, (unsigned long long)func_size, HOOK_PATCH_LEN);

	struct hook *h = calloc(1, sizeof(*h));
	if (!h)
		return ERR("out of memory");
	h->addr = addr;
	h->trampoline = trampoline_alloc(addr, HOOK_TRAMPOLINE_SIZE);
	if (!h->trampoline) {
		free(h);
		return ERR("no free memory within 2 GiB of 0x%llx for a trampoline", (unsigned long long)addr);
	}
	/*
	 * lea rsp,[rsp-128]; push [rip+hook]; call [rip+stub]; lea rsp,[rsp+136];
	 * then the displaced code; the two literals sit at the end.
	 */
	uint8_t *t = h->trampoline;
	uint8_t *lit = t + HOOK_TRAMPOLINE_SIZE - 16;
	struct emitter e = {t, lit};
	const uint8_t lea_down[] = {0x48, 0x8d, 0x64, 0x24, 0x80};
	emit(&e, lea_down, sizeof(lea_down));
	int32_t rel = (int32_t)(lit - (e.p + 6));
	const uint8_t push[] = {0xff, 0x35};
	emit(&e, push, 2);
	emit(&e, &rel, 4);
	rel = (int32_t)(lit + 8 - (e.p + 6));
	const uint8_t call[] = {0xff, 0x15};
	emit(&e, call, 2);
	emit(&e, &rel, 4);
	const uint8_t lea_up[] = {0x48, 0x8d, 0xa4, 0x24, 0x88, 0, 0, 0};
	emit(&e, lea_up, sizeof(lea_up));
	h->displaced = e.p;

	uint64_t off = 0;
	ZydisDecodedInstruction in;
	while (off < HOOK_PATCH_LEN) {
		if (h->n_insns == HOOK_MAX_DISPLACED)
			goto refuse_msg;
		if (!ZYAN_SUCCESS(ZydisDecoderDecodeInstruction(&dec, NULL, code + off, 15, &in))) {
			snprintf(err, errlen, "cannot decode the instruction at 0x%llx", (unsigned long long)(addr + off));
			goto refuse;
		}
		h->orig_off[h->n_insns] = (uint8_t)off;
		h->tramp_off[h->n_insns] = (uint8_t)(e.p - h->displaced);
		h->n_insns++;
		if (relocate_one(&e, code + off, addr + off, &in, err, errlen) < 0)
			goto refuse;
		off += in.length;
		/* Past a ret or jmp, the bytes are the function's only when its size says so. */
		if (off < HOOK_PATCH_LEN && is_terminator(&in) && func_size < HOOK_PATCH_LEN) {
			snprintf(err, errlen, "function at 0x%llx ends after %llu bytes, shorter than the %d-byte patch",
				 (unsigned long long)addr, (unsigned long long)off, HOOK_PATCH_LEN);
			goto refuse;
		}
	}
	if (func_size && func_size < off) {
		snprintf(err, errlen, "function at 0x%llx is %llu bytes, shorter than the patch (%llu)",
			 (unsigned long long)addr, (unsigned long long)func_size, (unsigned long long)off);
		goto refuse;
	}
	if (func_size && check_branches_into(&dec, addr, code, func_size, off, err, errlen) < 0)
		goto refuse;
	/* In memory, the bytes replaced are the file's, but for another tool's int3s. */
	for (uint64_t i = 0; i < off; i++) {
		uint8_t now = ((const volatile uint8_t *)addr)[i];
		if (now != code[i] && now != 0xcc) {
			snprintf(err, errlen, "the code at 0x%llx is not its file's (modified in memory)",
				 (unsigned long long)(addr + i));
			goto refuse;
		}
	}
	emit_abs_jmp(&e, addr + off);
	if (e.p > lit) {
		snprintf(err, errlen, "relocated code at 0x%llx does not fit the trampoline", (unsigned long long)addr);
		goto refuse;
	}
	h->displaced_len = (uint32_t)off;
	memcpy(h->original, code, HOOK_PATCH_LEN);
	uint64_t hook_ptr = (uint64_t)h, stub = 0; /* hook_set_stub gives it */
	memcpy(lit, &hook_ptr, 8);
	memcpy(lit + 8, &stub, 8);
	__builtin___clear_cache((char *)t, (char *)t + HOOK_TRAMPOLINE_SIZE);
	return h;
refuse_msg:
	snprintf(err, errlen, "too many instructions to displace at 0x%llx", (unsigned long long)addr);
refuse:
	/* The trampoline's memory stays in its pool; it was never reachable. */
	free(h);
	return NULL;
}

int hook_relocate_insn(uint8_t *dst, uint64_t room, uint64_t from, char *err, uint64_t errlen)
{
	ZydisDecoder dec;
	ZydisDecoderInit(&dec, ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64);
	ZydisDecodedInstruction in;
	if (!ZYAN_SUCCESS(ZydisDecoderDecodeInstruction(&dec, NULL, (const void *)from, 15, &in))) {
		snprintf(err, errlen, "cannot decode the instruction at 0x%llx", (unsigned long long)from);
		return -1;
	}
	struct emitter e = {dst, dst + room};
	if (relocate_one(&e, (const uint8_t *)from, from, &in, err, errlen) < 0)
		return -1;
	if (e.p > e.end) {
		snprintf(err, errlen, "relocated code at 0x%llx does not fit", (unsigned long long)from);
		return -1;
	}
	return (int)(e.p - dst);
}
