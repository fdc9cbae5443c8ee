/* bpf_ringbuf_output / reserve / submit / discard / query. */
#include "../maps/perf_event_array.h"
#include "../maps/ringbuf.h"
#include "helpers.h"

#include <errno.h>

static struct shm_map *ring(uint64_t ptr, struct bpftime_shm **shm)
{
	struct shm_map *m = helper_map(ptr, shm);
	return m && m->type == MAP_RINGBUF ? m : NULL;
}

static uint64_t ringbuf_output(uint64_t map, uint64_t data, uint64_t size, uint64_t flags, uint64_t a5)
{
	(void)a5;
	struct bpftime_shm *shm;
	struct shm_map *m = ring(map, &shm);
	if (!m || !run_access_ok(data, size) || (flags & ~3ull))
		return (uint64_t)-EINVAL;
	return (uint64_t)(int64_t)rb_output(shm, m, (const void *)(uintptr_t)data, size, flags);
}

static uint64_t ringbuf_reserve(uint64_t map, uint64_t size, uint64_t flags, uint64_t a4, uint64_t a5)
{
	(void)a4, (void)a5;
	struct bpftime_shm *shm;
	struct shm_map *m = ring(map, &shm);
	if (!m || flags)
		return 0;
	return (uint64_t)(uintptr_t)rb_reserve(shm, m, size);
}

static uint64_t commit(uint64_t sample, uint64_t flags, bool discard)
{
	struct bpftime_shm *shm = run_segment();
	uint32_t *hdr;
	struct shm_map *m = shm ? rb_of_sample(shm, sample, &hdr) : NULL;
	if (!m)
		return (uint64_t)-EINVAL;
	return (uint64_t)(int64_t)rb_commit(shm, m, hdr, discard, flags);
}

static uint64_t ringbuf_submit(uint64_t sample, uint64_t flags, uint64_t a3, uint64_t a4, uint64_t a5)
{
	(void)a3, (void)a4, (void)a5;
	return commit(sample, flags, false);
}

static uint64_t ringbuf_discard(uint64_t sample, uint64_t flags, uint64_t a3, uint64_t a4, uint64_t a5)
{
	(void)a3, (void)a4, (void)a5;
	return commit(sample, flags, true);
}

static uint64_t ringbuf_query(uint64_t map, uint64_t flags, uint64_t a3, uint64_t a4, uint64_t a5)
{
	(void)a3, (void)a4, (void)a5;
	struct bpftime_shm *shm;
	struct shm_map *m = ring(map, &shm);
	return m ? rb_query(shm, m, flags) : 0;
}

/* bpf_perf_event_output(ctx, map, flags, data, size) */
static uint64_t perf_event_output(uint64_t ctx, uint64_t map, uint64_t flags, uint64_t data,
				  uint64_t size)
{
	(void)ctx;
	struct bpftime_shm *shm;
	struct shm_map *m = helper_map(map, &shm);
	if (!m || m->type != MAP_PERF_EVENT_ARRAY || !run_access_ok(data, size))
		return (uint64_t)-EINVAL;
	return (uint64_t)(int64_t)pea_output(shm, m, flags, (const void *)(uintptr_t)data, size);
}

const struct helper_def ringbuf_helpers[] = {
	{25, "bpf_perf_event_output", perf_event_output},
	{130, "bpf_ringbuf_output", ringbuf_output},
	{131, "bpf_ringbuf_reserve", ringbuf_reserve},
	{132, "bpf_ringbuf_submit", ringbuf_submit},
	{133, "bpf_ringbuf_discard", ringbuf_discard},
	{134, "bpf_ringbuf_query", ringbuf_query},
	{0, NULL, NULL},
};
