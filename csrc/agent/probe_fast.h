/*
 * The probe fast path: a hook whose hits run exactly one program that the
 * stubs (probe_stubs.S) may enter themselves, without C: JIT code compiled
 * for the current budget, vector-clean, no pid filter, not a replace link.
 * C builds a descriptor for it when the site's programs change; the stubs
 * run it on a thread whose run context for that program is already set up
 * and no run is in progress, and call C for everything else (the first hit
 * on a thread, a nested hit, a run that faulted or asked to override).
 *
 * Included by the stubs too: the offsets below are checked in probe_fast.c.
 */
#ifndef BPFTIME_PROBE_FAST_H
#define BPFTIME_PROBE_FAST_H

/* struct probe_fast */
#define PF_ENTRY 0      /* the JIT code */
#define PF_SERIAL 8     /* the VM's serial: what probe_ctx_serial[slot] holds when the context is set up */
/* Where this program's probe_ctx slot and its probe_ctx_serial are, from the thread pointer (fs:0): */
#define PF_CTX_TPOFF 16    /* the same for every thread (initial-exec TLS) */
#define PF_SERIAL_TPOFF 24
#define PF_INFO 32      /* the attach info of the run */
#define PF_IP 40        /* pt_regs.ip of an entry hit (the hook's address) */
#define PF_NO_CTX 48    /* nonzero: the program reads no context (below) */
/* struct hook, struct probe_site */
#define HOOK_OWNER 72
#define SITE_FAST 32
#define SITE_RET_FAST 40
/* struct jit_ctx */
#define CTX_MEM_LO 0
#define CTX_MEM_LIMIT0 8
#define CTX_FAULTED 96
#define CTX_OUTER 112
#define CTX_ATTACH 160
/* struct override_request */
#define OVERRIDE_REQUESTED 8
/* struct shadow_stack: depth, then entries {ret, entry_sp, site} */
#define SHADOW_ENTRIES 8
#define SHADOW_ENTRY_SIZE 24
#define SHADOW_DEPTH 1024
#define PT_REGS_SIZE 168

#ifndef __ASSEMBLER__
#include "probes.h"

struct probe_fast {
	void *entry;
	uint64_t serial;
	uint64_t ctx_tpoff;
	uint64_t serial_tpoff;
	const struct bpftime_attach_info *info;
	uint64_t ip;
	/*
	 * The program never reads its context (r1 at entry) and calls nothing (probe_fast.c): the
	 * stub it runs from need not build a struct pt_regs, only keep the registers the JIT code
	 * may change, and no helper can ask for an override.
	 */
	uint64_t no_ctx;
	/* For C only: */
	const struct probe_prog *prog;
	unsigned slot;
	bool may_override; /* an entry probe: bpf_override_return may ask for the function's return */
};

/*
 * The descriptor for list `l` at a hook at `ip` (0: a return probe's), or NULL when the list
 * is not exactly one program the stubs may run. Never freed (a thread may still read it).
 */
HIDDEN struct probe_fast *probe_fast_build(const struct probe_list *l, uint64_t ip);
/*
 * Called by the stubs after a fast run that faulted, tail-called or asked for an override
 * (in_probe still held; this releases it). Nonzero: return for the function with regs->ax.
 */
HIDDEN uint64_t bpftime_probe_fast_after(const struct probe_fast *f, struct pt_regs *regs, uint64_t r0);
#endif

#endif
