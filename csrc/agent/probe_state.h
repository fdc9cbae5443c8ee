/*
 * The per-thread state of the probe path (probes.c), shared with the fast
 * path (probe_fast.c) and the stubs (probe_stubs.S, which reach in_probe and
 * shadow by their names).
 */
#ifndef BPFTIME_PROBE_STATE_H
#define BPFTIME_PROBE_STATE_H

#include "probe_fast.h"

struct shadow_entry {
	uint64_t ret;      /* the real return address */
	uint64_t entry_sp; /* sp at the function's entry (where that address sits) */
	struct probe_site *site;
};

struct shadow_stack {
	uint32_t depth;
	struct shadow_entry e[SHADOW_DEPTH];
};

/* Nonzero while this thread runs a probe's programs (or the agent's own code): hits are skipped. */
HIDDEN extern __thread int in_probe __attribute__((tls_model("initial-exec")));
/* This thread's shadow stack of replaced return addresses (NULL until its first use). */
HIDDEN extern __thread struct shadow_stack *shadow __attribute__((tls_model("initial-exec")));

/* A run of p's program failed: counted, and the first failure logged. */
HIDDEN void probe_note_fault(const struct probe_prog *p);

#endif
