/*
 * Kernel helpers in userspace: the helper tables the runtime layer registers
 * (csrc/runtime/), and what the helper files share. Helpers see the VM only
 * through vm/vm_runtime.h (the run in progress, pointer checks, callbacks).
 */
#ifndef BPFTIME_HELPERS_H
#define BPFTIME_HELPERS_H

#include "../maps/map.h"
#include "../vm/vm_runtime.h"
#include "../base/safe_copy.h"

/* The segment of the program running on this thread (NULL without one). */
HIDDEN struct bpftime_shm *run_segment(void);
/* A map pointer a program handed in, checked; NULL when it is not one of ours. */
HIDDEN struct shm_map *helper_map(uint64_t ptr, struct bpftime_shm **shm);
/* At the end of a run that may have reserved ring buffer records: discards those it still holds. */
HIDDEN void ringbuf_run_end(struct jit_ctx *run);
#define RINGBUF_RESERVE_HELPER 131
/* At the end of a run that looked up values of maps fronting kernel maps: writes back changes. */
HIDDEN void kernel_map_run_end(struct jit_ctx *run);
#define MAP_LOOKUP_HELPER 1
/*
 * Whether a program of this VM may use map m: one it references (its lddw), or an inner map
 * that a map of maps it references holds. As the kernel: no other map of the segment, whatever
 * pointer the program has come by. NO_VECTORS.
 */
HIDDEN bool vm_may_use_map(const struct bpftime_vm *vm, const struct bpftime_shm *shm,
			   const struct shm_map *m);

/* Where bpf_get_current_pid_tgid keeps its per-thread cache, for the JIT (false: no cache). */
HIDDEN bool pid_tgid_layout(struct vm_pid_tgid_inline *out);
/* Forgets this thread's cached ids (after clone, fork, vfork: a vfork child shares the cache). */
HIDDEN NO_VECTORS void pid_tgid_forget(void);
#define PID_TGID_HELPER 14

/* printf-style formatting with the kernel's bpf_trace_printk/bpf_snprintf rules. */
HIDDEN int bpf_format(char *out, size_t size, const char *fmt, uint32_t fmt_size,
		      const uint64_t *args, uint32_t nargs);
HIDDEN void trace_output(const char *msg);


typedef uint64_t (*helper_impl)(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t);
struct helper_def {
	uint32_t id;
	const char *name;
	helper_impl fn;
};
HIDDEN extern const struct helper_def map_helpers[];
HIDDEN extern const struct helper_def trace_helpers[];
HIDDEN extern const struct helper_def process_helpers[];
HIDDEN extern const struct helper_def ringbuf_helpers[];
HIDDEN extern const struct helper_def lock_helpers[];
HIDDEN extern const struct helper_def stack_helpers[];
/* Ids of process_helpers that are NO_VECTORS, call nothing and make no system call (0 ends). */
HIDDEN extern const uint32_t vector_safe_helpers[];

/*
 * bpf_override_return's request on this thread (process_helpers.c): the agent
 * clears it before a probe's programs run and, when one asked, makes the
 * probed function return `value` without running.
 */
struct override_request {
	uint64_t value;
	bool requested;
};
HIDDEN extern __thread struct override_request override_request __attribute__((tls_model("initial-exec")));

/* The ring buffer `bpftime run` reads trace_printk lines from. */
#define TRACE_RING_NAME "trace_printk"

#endif
