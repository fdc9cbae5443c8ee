/* The agent's probes: programs attached at one hooked address. */
#ifndef BPFTIME_PROBES_H
#define BPFTIME_PROBES_H

#include "../hook/hook.h"
#include "../include/bpftime.h"

struct probe_fast;

struct probe_prog {
	struct bpftime_vm *vm;
	struct bpftime_attach_info info; /* the probed function's address and the link's cookie */
	uint32_t link_id;
	int32_t pid;      /* -1: any */
	uint32_t *faults; /* runs that stopped on an error; the first is logged */
	bool replace;     /* a replace link: r0 is the function's return value, its body skipped */
};

/* An immutable list; changes publish a new one. */
struct probe_list {
	uint32_t n;
	bool vector_clean; /* no program here can touch a vector register (see probes.c) */
	bool any_pid;      /* some program runs only in one process */
	struct probe_prog progs[];
};

struct probe_site {
	struct hook *hook;
	struct probe_list *entry; /* uprobes */
	struct probe_list *ret;   /* uretprobes */
	struct probe_site *next;
	struct probe_fast *fast;     /* entry: the stubs run `entry` themselves (probe_fast.h), or NULL */
	struct probe_fast *ret_fast; /* the same for `ret` */
};

/*
 * Called by the stubs (probe_stubs.S). bpftime_probe_enter returns nonzero when
 * a program returned for the function (regs->ax holds the value): the stub then
 * returns to the function's caller instead of running it.
 */
HIDDEN uint64_t bpftime_probe_enter(struct hook *h, struct pt_regs *regs);
HIDDEN uint64_t bpftime_probe_return(struct pt_regs *regs);
/* The return programs of `site` (the return stub popped its shadow entry and set regs->ip). */
HIDDEN void bpftime_probe_return_run(struct probe_site *site, struct pt_regs *regs);
HIDDEN void bpftime_probe_push_return(struct hook *h, uint64_t *slot);
/* fn(arg) with xmm0-15 kept: for C (and libc) that may use vector registers. */
HIDDEN uint64_t bpftime_vectors_saved_call(uint64_t (*fn)(void *), void *arg);
/* For the C that runs inside a probe hit: NO_VECTORS (base.h), never touches a vector register. */
/* The stubs a hook's trampoline calls (the full one, or the one for return probes only). */
HIDDEN void bpftime_probe_entry_stub(void);
HIDDEN void bpftime_probe_fast_stub(void); /* entry programs only, and site->fast may be set */
HIDDEN void bpftime_probe_fast_noctx_stub(void); /* the same, site->fast's program reads no context */
HIDDEN void bpftime_probe_retonly_stub(void);
HIDDEN void bpftime_probe_return_stub(void);

/* A copy of `old` without `remove_link`'s programs, plus `add` (may be NULL). */
HIDDEN struct probe_list *probe_list_build(const struct probe_list *old, const struct probe_prog *add,
					   uint32_t remove_link);

#endif
