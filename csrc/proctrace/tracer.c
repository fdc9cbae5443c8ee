/*
 * The tracer's life: open (load.c), a thread that polls the ring buffer and fills the caller's
 * blocks one after the other, and the hand-over of filled blocks. A block is FREE (ours to
 * fill), FILLING, READY (queued for the caller) or HELD (the caller reads it until it releases
 * it). With every block READY or HELD the thread waits; the kernel's ring buffer holds the
 * records meanwhile (and counts what it cannot hold).
 */
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

enum { FREE, FILLING, READY, HELD };

/* A partly filled batch is handed out once its first event is this old: the caller is woken
 * at most ~1000 / FLUSH_MS times a second, however the events trickle in. */
#define FLUSH_MS 100

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

struct proctrace *proctrace_open(const struct proctrace_options *opts, char *err, uint64_t err_size)
{
	if (!opts || !opts->object_path) {
		set_error(err, err_size, "no object path");
		return NULL;
	}
	struct proctrace *t = calloc(1, sizeof(*t));
	if (!t) {
		set_error(err, err_size, "out of memory");
		return NULL;
	}
	t->dropped_fd = -1;
	t->cur_index = -1;
	pthread_mutex_init(&t->lock, NULL);
	pthread_cond_init(&t->cond, NULL);
	if (load_and_attach(t, opts, err, err_size) != 0) {
		proctrace_close(t);
		return NULL;
	}
	return t;
}

/* Locked. Queues the batch being filled (if it has events) for the caller. */
static void publish_current(struct proctrace *t)
{
	if (t->cur_index < 0 || t->cur.hdr->count == 0)
		return;
	uint32_t i = (uint32_t)t->cur_index;
	t->state[i] = READY;
	t->ready[(t->ready_head + t->ready_len) % t->nblocks] = i;
	t->ready_len++;
	t->stats.batches++;
	t->cur_index = -1;
	pthread_cond_broadcast(&t->cond);
}

/* Locked. Takes a FREE block to fill, waiting for one; false when stopping. */
static bool take_free(struct proctrace *t)
{
	for (;;) {
		for (uint32_t i = 0; i < t->nblocks; i++) {
			if (t->state[i] == FREE) {
				t->state[i] = FILLING;
				t->cur_index = (int)i;
				batch_begin(&t->cur, t->blocks[i], t->capacity, t->arena, t->stats.batches);
				t->cur_began_ns = now_ns();
				return true;
			}
		}
		if (t->stop)
			return false;
		pthread_cond_wait(&t->cond, &t->lock);
	}
}

/* ring_buffer__poll's callback: one record into the current batch (a fresh one when full). */
static int on_record(void *ctx, void *data, size_t size)
{
	struct proctrace *t = ctx;
	if (size < sizeof(struct proctrace_event))
		return 0;
	const struct proctrace_event *e = data;
	pthread_mutex_lock(&t->lock);
	for (int attempt = 0; attempt < 2; attempt++) {
		if (t->cur_index < 0 && !take_free(t))
			break;
		bool argv_lost;
		if (batch_append(&t->cur, e, &t->pool, &argv_lost)) {
			t->stats.events++;
			t->stats.argv_lost += argv_lost;
			break;
		}
		publish_current(t); /* full: hand it out, then one more try in a fresh one */
	}
	pthread_mutex_unlock(&t->lock);
	return 0;
}

static void *fill_loop(void *arg)
{
	struct proctrace *t = arg;
	for (;;) {
		pthread_mutex_lock(&t->lock);
		bool stop = t->stop;
		pthread_mutex_unlock(&t->lock);
		/* The program submits without waking us (bpf/proctrace.h): wait for the wakeup of a
		 * burst or PROCTRACE_POLL_MS, then read whatever is there (after stop: a last read). */
		int n = stop ? 0 : ring_buffer__poll(t->rb, PROCTRACE_POLL_MS);
		int m = n < 0 ? 0 : ring_buffer__consume(t->rb);
		pthread_mutex_lock(&t->lock);
		if (t->cur_index >= 0 && (stop || now_ns() - t->cur_began_ns >= FLUSH_MS * 1000000ull))
			publish_current(t);
		pthread_mutex_unlock(&t->lock);
		if (stop || (n < 0 && n != -EINTR) || m < 0)
			break;
	}
	pthread_mutex_lock(&t->lock);
	t->thread_done = true;
	pthread_cond_broadcast(&t->cond);
	pthread_mutex_unlock(&t->lock);
	return NULL;
}

int proctrace_start(struct proctrace *t, void *const *blocks, uint32_t n, uint32_t capacity, uint32_t arena,
		    char *err, uint64_t err_size)
{
	if (t->started) {
		set_error(err, err_size, "the tracer is already started");
		return -1;
	}
	if (n == 0 || n > 64 || capacity == 0 || arena < PROCTRACE_ARGV_MAX + 16) {
		set_error(err, err_size,
			  "batch pool: need 1..64 blocks, a capacity > 0 and an arena of at least %d bytes (got %u, %u, %u)",
			  PROCTRACE_ARGV_MAX + 16, n, capacity, arena);
		return -1;
	}
	t->blocks = calloc(n, sizeof(void *));
	t->state = calloc(n, 1);
	t->ready = calloc(n, sizeof(uint32_t));
	if (!t->blocks || !t->state || !t->ready) {
		set_error(err, err_size, "out of memory");
		return -1;
	}
	memcpy(t->blocks, blocks, n * sizeof(void *));
	t->nblocks = n;
	t->capacity = capacity;
	t->arena = arena;
	if (open_ring(t, on_record, err, err_size) != 0)
		return -1;
	if (pthread_create(&t->thread, NULL, fill_loop, t) != 0) {
		set_error(err, err_size, "cannot start the tracer thread");
		return -1;
	}
	t->started = true;
	return 0;
}

int proctrace_next_batch(struct proctrace *t, int32_t timeout_ms)
{
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	if (timeout_ms >= 0) {
		until.tv_sec += timeout_ms / 1000;
		until.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
		if (until.tv_nsec >= 1000000000) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000;
		}
	}
	int got = -1;
	pthread_mutex_lock(&t->lock);
	for (;;) {
		if (t->ready_len) {
			got = (int)t->ready[t->ready_head];
			t->ready_head = (t->ready_head + 1) % t->nblocks;
			t->ready_len--;
			t->state[got] = HELD;
			break;
		}
		if (!t->started || t->thread_done) {
			got = -2;
			break;
		}
		int rc = timeout_ms < 0 ? pthread_cond_wait(&t->cond, &t->lock)
					: pthread_cond_timedwait(&t->cond, &t->lock, &until);
		if (rc == ETIMEDOUT)
			break;
	}
	pthread_mutex_unlock(&t->lock);
	return got;
}

int proctrace_release_batch(struct proctrace *t, uint32_t index)
{
	int rc = -1;
	pthread_mutex_lock(&t->lock);
	if (index < t->nblocks && t->state[index] == HELD) {
		t->state[index] = FREE;
		rc = 0;
		pthread_cond_broadcast(&t->cond);
	}
	pthread_mutex_unlock(&t->lock);
	return rc;
}

void proctrace_stop(struct proctrace *t)
{
	if (!t || !t->started)
		return;
	pthread_mutex_lock(&t->lock);
	bool first = !t->stop;
	t->stop = true;
	pthread_cond_broadcast(&t->cond);
	pthread_mutex_unlock(&t->lock);
	if (first)
		pthread_join(t->thread, NULL);
}

void proctrace_get_stats(struct proctrace *t, struct proctrace_stats *out)
{
	pthread_mutex_lock(&t->lock);
	*out = t->stats;
	pthread_mutex_unlock(&t->lock);
	out->dropped = read_dropped(t);
}

void proctrace_close(struct proctrace *t)
{
	if (!t)
		return;
	proctrace_stop(t);
	unload(t);
	free(t->blocks);
	free(t->state);
	free(t->ready);
	pthread_mutex_destroy(&t->lock);
	pthread_cond_destroy(&t->cond);
	free(t);
}
