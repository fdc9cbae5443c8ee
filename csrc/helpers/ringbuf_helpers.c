/* bpf_ringbuf_output / reserve / submit / discard / query. */
#include "../maps/kernel_map.h"
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
	if (m->kernel_id) /* fronting a kernel ring buffer */
		return (uint64_t)(int64_t)kernel_ring_output(m, (const void *)(uintptr_t)data, size, flags);
	return (uint64_t)(int64_t)rb_output(shm, m, (const void *)(uintptr_t)data, size, flags);
}

/*
 * Reservations the runs on this thread hold: the kernel's verifier makes every program release
 * what it reserves; here a run that faults (or ends without submitting) has its reservations
 * discarded when it ends (ringbuf_run_end), so the ring keeps flowing. Few: in the agent this is
 * static TLS, which a late dlopen (`bpftime attach`) has little of.
 */
#define MAX_HELD 8
static __thread struct held {
	const struct jit_ctx *run;
	uint64_t sample;
} held[MAX_HELD];
static __thread uint32_t nheld;

static uint64_t ringbuf_reserve(uint64_t map, uint64_t size, uint64_t flags, uint64_t a4, uint64_t a5)
{
	(void)a4, (void)a5;
	struct bpftime_shm *shm;
	struct shm_map *m = ring(map, &shm);
	if (!m || flags || nheld == MAX_HELD)
		return 0;
	void *rec = rb_reserve(shm, m, size);
	if (rec)
		held[nheld++] = (struct held){current_run, (uint64_t)(uintptr_t)rec};
	return (uint64_t)(uintptr_t)rec;
}

static void forget(uint64_t sample)
{
	for (uint32_t i = nheld; i-- > 0;) {
		if (held[i].sample == sample) {
			held[i] = held[--nheld];
			return;
		}
	}
}

void ringbuf_run_end(struct jit_ctx *run)
{
	struct bpftime_shm *shm = vm_user(run->vm);
	for (uint32_t i = nheld; i-- > 0;) {
		if (held[i].run != run)
			continue;
		uint32_t *hdr;
		struct shm_map *m = shm ? rb_of_sample(shm, held[i].sample, &hdr) : NULL;
		if (m && m->kernel_id)
			kernel_ring_commit(shm, m, hdr, true, 0);
		else if (m)
			rb_commit(shm, m, hdr, true, 0);
		held[i] = held[--nheld];
	}
}

static uint64_t commit(uint64_t sample, uint64_t flags, bool discard)
{
	struct bpftime_shm *shm = run_segment();
	uint32_t *hdr;
	struct shm_map *m = shm ? rb_of_sample(shm, sample, &hdr) : NULL;
	if (!m)
		return (uint64_t)-EINVAL;
	forget(sample);
	if (m->kernel_id) /* reserved in the shadow of a kernel ring buffer: output it there */
		return (uint64_t)(int64_t)kernel_ring_commit(shm, m, hdr, discard, flags);
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
	if (m && m->kernel_id) /* fronting a kernel ring buffer: its positions, not the shadow's */
		return kernel_ring_query(m, flags);
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
	if (m->kernel_id) /* fronting a kernel perf event array */
		return (uint64_t)(int64_t)kernel_ring_output(m, (const void *)(uintptr_t)data, size, flags);
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
