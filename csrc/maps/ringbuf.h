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

/* The producer page: producer_pos first (the kernel's layout), then our bookkeeping. */
struct rb_producer {
	uint64_t producer_pos;
	uint64_t magic;
	uint64_t map_self; /* offset of the shm_map */
	uint64_t dropped;  /* reservations refused for lack of space */
	uint32_t wake_seq; /* futex: bumped on submit while consumers wait */
	uint32_t waiters;
	shm_spinlock reserve_lock; /* producers, for the few instructions of a reservation */
};

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
