/*
 * The base every folder of csrc/ may use, and that uses nothing of theirs:
 * symbol visibility, branch hints, the one error channel (error.h), safe
 * copies (safe_copy.h). Nothing here knows of VMs, segments, maps or hooks.
 */
#ifndef BPFTIME_BASE_H
#define BPFTIME_BASE_H

#define HIDDEN __attribute__((visibility("hidden")))
#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)
/* For C that runs where no vector register may be touched (probe hits, code JIT code calls). */
#define NO_VECTORS __attribute__((target("general-regs-only")))

#endif
