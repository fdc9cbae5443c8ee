/*
 * Exception tables for generated code (the JIT's inline probe reads): code that loads from
 * addresses that may be bad registers its extent and, per faulting range, where execution
 * continues instead. safe_copy.c's SIGSEGV/SIGBUS handler asks fault_fixup_find() before
 * passing a fault on to the application.
 */
#ifndef BPFTIME_FAULT_FIXUP_H
#define BPFTIME_FAULT_FIXUP_H

#include "base.h"

#include <stddef.h>
#include <stdint.h>

/* A fault at code offset [start, end) resumes at code offset fixup. */
struct fault_fixup {
	uint32_t start, end, fixup;
};

/* Claims a registration slot before code is generated: 1 + slot, or 0 when all are taken. */
HIDDEN uint32_t fault_fixup_reserve(void);
/*
 * Publishes code [code, code + len) with its table (n entries, which must stay readable while
 * registered: it lives in the code's own mapping). The handler only reads it for a fault inside
 * that code.
 */
HIDDEN void fault_fixup_publish(uint32_t slot, uintptr_t code, size_t len, const struct fault_fixup *table,
				uint32_t n);
/* Withdraws a slot (reserved or published): call before unmapping the code. */
HIDDEN void fault_fixup_release(uint32_t slot);
/* For the signal handler (async-signal-safe, lock-free): where a fault at ip resumes, or 0. */
HIDDEN uintptr_t fault_fixup_find(uintptr_t ip);

#endif
