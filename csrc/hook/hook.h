/*
 * Inline hooks on x86-64: a function's first instructions are replaced by a
 * 5-byte jump to a trampoline that calls the probe stub, runs the displaced
 * instructions (relocated) and jumps back. Hooks and trampolines live as long
 * as the process: a thread may still be inside one after it is removed.
 */
#ifndef BPFTIME_HOOK_H
#define BPFTIME_HOOK_H

#include <stdbool.h>
#include <stdint.h>

#include "../base/base.h"

#define HOOK_PATCH_LEN 5    /* jmp rel32 */
#define HOOK_MAX_DISPLACED 8 /* instructions */
#define HOOK_TRAMPOLINE_SIZE 256

/* The kernel's x86-64 struct pt_regs, what kprobe/uprobe programs receive. */
struct pt_regs {
	uint64_t r15, r14, r13, r12, bp, bx, r11, r10, r9, r8, ax, cx, dx, si, di, orig_ax, ip, cs,
		flags, sp, ss;
};
_Static_assert(sizeof(struct pt_regs) == 168, "pt_regs layout");

struct hook {
	uint64_t addr;        /* the probed instruction */
	uint8_t *trampoline;  /* entry: steps over the red zone, calls the stub */
	uint8_t *displaced;   /* the relocated original instructions, then a jump back */
	uint8_t original[HOOK_PATCH_LEN];
	uint32_t displaced_len; /* bytes of original code moved (>= HOOK_PATCH_LEN) */
	/* Instruction boundaries: original offset -> offset in `displaced`, for threads caught inside. */
	uint8_t n_insns;
	uint8_t orig_off[HOOK_MAX_DISPLACED];
	uint8_t tramp_off[HOOK_MAX_DISPLACED];
	bool patched;
	bool registered; /* on the list the int3 handler searches */
	uint64_t foreign_gone; /* patch.c: when another tool's int3 was last seen gone (ns), 0: none seen */
	/*
	 * hook_drop_kernel_int3 sets it: a kernel uprobe is still registered at this address, and the
	 * kernel takes any int3 there as its own (and resumes the thread inside our half-written
	 * jump), so patching traps threads with an invalid opcode (SIGILL) instead of int3.
	 */
	bool kernel_probe_here;
	void *owner;     /* what the probe layer keeps per hook */
	struct hook *next; /* that list */
};

/* Bytes of a function's code hook_create needs at least (more when its size is known). */
#define HOOK_CODE_MIN 32

/*
 * Prepares a hook at `addr` (nothing is patched yet). `func_size` 0: unknown.
 * `code`: the function's bytes as its file has them, max(func_size,
 * HOOK_CODE_MIN) of them: the instructions moved and the bytes put back on
 * unpatching come from there, not from memory, where another tool's
 * breakpoint (a kernel uprobe's or a debugger's int3) may sit on them. Memory
 * may differ from `code` only by such int3s. NULL and an error message on
 * refusal.
 */
HIDDEN struct hook *hook_create(uint64_t addr, uint64_t func_size, const uint8_t *code, char *err,
				uint64_t errlen);
/*
 * Writes or removes the jump, safely while other threads run the code. 0 or -1 (err filled);
 * hook_patch may also return HOOK_LATER (err says why): not now, try again later.
 */
#define HOOK_LATER (-2)
HIDDEN int hook_patch(struct hook *h, char *err, uint64_t errlen);
HIDDEN int hook_unpatch(struct hook *h, char *err, uint64_t errlen);
/*
 * Puts the original first byte back where a kernel uprobe's int3 sits on the probed instruction,
 * in this process only (its private copy of the page): the kernel takes no more traps there,
 * and a thread it is already handling resumes at the original next instruction, which is still
 * there. For probes `bpftime daemon` moved from the kernel to userspace. 1 when one was
 * removed, 0 when none was there, -1 (err filled) on failure. hook_patch then waits as for any
 * breakpoint just gone, and this hook is patched and unpatched without int3 from then on.
 */
HIDDEN int hook_drop_kernel_int3(struct hook *h, char *err, uint64_t errlen);

/*
 * Unblocks in the calling thread the signals hooks rely on: SIGTRAP (a thread
 * that meets a half-written hook's int3 is sent on) and the patcher's fixup
 * signal. A thread that blocks them must not run code that may be hooked.
 */
HIDDEN void hook_thread_signals(void);

/*
 * Copies the instruction at `from` to `dst` (at most `room` bytes) so it behaves as at `from`
 * (see hook_create). Bytes written, or -1 with `err` filled.
 */
HIDDEN int hook_relocate_insn(uint8_t *dst, uint64_t room, uint64_t from, char *err, uint64_t errlen);

/* Executable memory within +-2 GiB of `near` (NULL when none is free). */
HIDDEN uint8_t *trampoline_alloc(uint64_t near, uint64_t size);

/*
 * Which stub the hook's trampoline calls with the hook's address (the handler:
 * the layer above gives it; set it before hook_patch). A thread entering
 * while it changes calls the old stub or the new, either works.
 */
HIDDEN void hook_set_stub(struct hook *h, void (*stub)(void));

#endif
