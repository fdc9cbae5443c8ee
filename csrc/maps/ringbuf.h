/* The ring buffer's shared pieces, used by its helpers and its consumers. */
#ifndef BPFTIME_RINGBUF_H
#define BPFTIME_RINGBUF_H

#include "map.h"

#define RB_PAGE 4096u
#define RB_HDR 8u
#define RB_BUSY_BIT (1u << 31)
#define RB_DISCARD_BIT (1u << 30)
#define RB_MAX_RECORD (RB_DISCARD_BIT - 1)
#define RB_NO_WAKEUP 1u /* BPF_RB_NO_WAKEUP */
#define RB_MAGIC 0x4655425252544250ull

/* A ring buffer: its pages in the kernel's layout; the data (map.slots) follows them. */
struct ringbuf_map {
	struct shm_map map;
	uint64_t pages; /* offset of the consumer page; the producer page follows it */
};

static inline struct ringbuf_map *ringbuf_of(struct shm_map *map)
{
	return (struct ringbuf_map *)map;
}

/* A reservation: who made it, so that one whose producer was killed before it was written can be skipped. */
struct rb_inflight {
	uint64_t start, end; /* [start, end): filler (if any) and record */
	uint32_t pid;
	uint32_t pad;
};
#define RB_INFLIGHT 128 /* slots, by start: (start / 8) % RB_INFLIGHT */

/*
 * The producer page: producer_pos first (the kernel's layout), then our
 * bookkeeping. Producers reserve by moving pending_pos (compare-and-swap)
 * and write their headers; producer_pos, what consumers see, then moves over
 * every record whose header is written, in reservation order, as the
 * kernel's (rb_reserve): no producer locks or waits for another.
 */
struct rb_producer {
	uint64_t producer_pos;
	uint64_t magic;
	uint64_t map_self; /* offset of the shm_map */
	uint64_t dropped;  /* reservations refused for lack of space */
	uint32_t wake_seq; /* futex: bumped on submit while consumers wait */
	uint32_t waiters;
	/* Reserved up to here (>= producer_pos); its own cache line, away from what consumers read. */
	uint64_t pending_pos __attribute__((aligned(64)));
	struct rb_inflight inflight[RB_INFLIGHT] __attribute__((aligned(64)));
};
_Static_assert(sizeof(struct rb_producer) <= RB_PAGE, "the producer page");

HIDDEN struct rb_producer *rb_producer(struct bpftime_shm *shm, struct shm_map *map);
HIDDEN uint64_t *rb_consumer_pos(struct bpftime_shm *shm, struct shm_map *map);
HIDDEN void *rb_reserve(struct bpftime_shm *shm, struct shm_map *map, uint64_t size);
HIDDEN struct shm_map *rb_of_sample(struct bpftime_shm *shm, uint64_t sample, uint32_t **hdr);
HIDDEN int rb_commit(struct bpftime_shm *shm, struct shm_map *map, uint32_t *hdr, bool discard,
		     uint64_t flags);
HIDDEN int rb_output(struct bpftime_shm *shm, struct shm_map *map, const void *data, uint64_t size,
		     uint64_t flags);
HIDDEN uint64_t rb_query(struct bpftime_shm *shm, struct shm_map *map, uint64_t flags);

#endif
