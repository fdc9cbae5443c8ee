/* The tracer's state, shared by load.c (libbpf side), tracer.c (thread and pool) and batch_fill.c. */
#ifndef PROCTRACE_INTERNAL_H
#define PROCTRACE_INTERNAL_H

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include "proctrace.h" /* bpf/: the record and the page layout */
#include "proctrace_loader.h"

#define HIDDEN __attribute__((visibility("hidden")))

/* Where argv pages are: the data_pages map as the consumer sees it. */
struct page_pool {
	const unsigned char *base;
	uint32_t pages; /* elements of the map */
};

/* One batch being filled: the caller's block and its column pointers. */
struct batch_writer {
	unsigned char *block;
	struct proctrace_batch_header *hdr;
	uint64_t offsets[PROCTRACE_COLUMNS];
};

struct proctrace {
	/* libbpf side (load.c) */
	struct bpf_object *obj;
	struct bpf_link *links[2];
	struct ring_buffer *rb;
	struct page_pool pool;
	size_t pool_map_bytes;
	int dropped_fd;

	/* the pool of caller blocks (tracer.c) */
	pthread_t thread;
	bool started, stop;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	void **blocks;
	uint32_t nblocks, capacity, arena;
	uint8_t *state;     /* per block: FREE, FILLING, READY, HELD */
	uint32_t *ready;    /* FIFO of READY blocks */
	uint32_t ready_head, ready_len;
	struct batch_writer cur;
	int cur_index; /* -1: none */
	uint64_t cur_began_ns; /* CLOCK_MONOTONIC when the current batch began */
	bool thread_done;
	struct proctrace_stats stats;
};

HIDDEN void set_error(char *err, uint64_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* batch_fill.c */
HIDDEN void batch_open(struct batch_writer *w, void *block);
HIDDEN void batch_begin(struct batch_writer *w, void *block, uint32_t capacity, uint32_t arena, uint64_t sequence);
/* Appends one record; false when the batch has no room (nothing written). */
HIDDEN bool batch_append(struct batch_writer *w, const struct proctrace_event *e, const struct page_pool *pool,
			 bool *argv_lost);
HIDDEN int64_t wall_minus_boot_ns(void);

/* load.c */
HIDDEN int load_and_attach(struct proctrace *t, const struct proctrace_options *opts, char *err, uint64_t size);
HIDDEN int open_ring(struct proctrace *t, int (*on_record)(void *, void *, size_t), char *err, uint64_t size);
HIDDEN uint64_t read_dropped(struct proctrace *t);
HIDDEN void unload(struct proctrace *t);

#endif
