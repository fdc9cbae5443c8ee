/* Stack trace maps: shared with bpf_get_stackid. */
#ifndef BPFTIME_STACK_TRACE_H
#define BPFTIME_STACK_TRACE_H

#include "map.h"

#define STACK_F_SKIP_MASK 0xffull
#define STACK_F_USER_STACK (1ull << 8)
#define STACK_F_FAST_STACK_CMP (1ull << 9)
#define STACK_F_REUSE_STACKID (1ull << 10)

/* Stores a stack; returns its id or -EEXIST (another stack in its bucket). */
HIDDEN int64_t stack_trace_store(struct bpftime_shm *shm, struct shm_map *m, const uint64_t *ips,
				 uint32_t nr, uint64_t flags);

#endif
