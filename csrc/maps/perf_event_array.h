/* Perf event arrays: shared pieces for the helper and the consumer API. */
#ifndef BPFTIME_PERF_EVENT_ARRAY_H
#define BPFTIME_PERF_EVENT_ARRAY_H

#include "map.h"

#define PERF_RING_DATA (64u * 1024) /* preallocated data bytes per entry (a power of two) */
#define PERF_RING_MAX (64ull << 20) /* the largest ring a consumer may ask for */
#define PERF_F_INDEX_MASK 0xffffffffull
#define PERF_F_CURRENT_CPU 0xffffffffull
#define PERF_RECORD_LOST 2
#define PERF_RECORD_SAMPLE 9

struct perf_header {
	uint32_t type;
	uint16_t misc;
	uint16_t size;
};

/* struct perf_event_mmap_page, as far as ring consumers read it. */
struct perf_ring_page {
	/* Ours, where the kernel keeps fields perf_buffer consumers do not read. */
	uint32_t wake_seq; /* futex: bumped after output while consumers wait */
	uint32_t waiters;
	uint8_t reserved[1016];
	uint64_t data_head;   /* 1024 */
	uint64_t data_tail;   /* 1032: the consumer advances this */
	uint64_t data_offset; /* 1040 */
	uint64_t data_size;   /* 1048 */
	uint64_t lost;        /* records dropped since the last PERF_RECORD_LOST */
};
_Static_assert(__builtin_offsetof(struct perf_ring_page, data_head) == 1024, "perf page layout");

HIDDEN struct perf_ring_page *pea_ring(struct bpftime_shm *shm, struct shm_map *map, uint32_t index);
/* Bytes of entry `index`'s ring: its page and data. */
HIDDEN uint64_t pea_ring_bytes(struct bpftime_shm *shm, struct shm_map *map, uint32_t index);
/*
 * Gives entry `index` a ring of `data` bytes (a power of two from one page to PERF_RING_MAX), empty;
 * -EINVAL for other sizes, -ENOMEM when the segment has no room. Segment lock not held.
 */
HIDDEN int pea_resize(struct bpftime_shm *shm, struct shm_map *map, uint32_t index, uint64_t data);
/* Frees the resized rings (the map is being deleted; segment lock held). */
HIDDEN void pea_release(struct bpftime_shm *shm, struct shm_map *map);
/* Blocks until entry `index` has records or timeout_ms passes: 1 when it has. */
HIDDEN int pea_wait(struct bpftime_shm *shm, struct shm_map *map, uint32_t index, int timeout_ms);
HIDDEN bool pea_has_records(struct bpftime_shm *shm, struct shm_map *map, uint32_t index);
HIDDEN int pea_output(struct bpftime_shm *shm, struct shm_map *map, uint64_t flags, const void *data,
		      uint64_t size);

#endif
