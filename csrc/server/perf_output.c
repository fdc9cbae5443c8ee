/*
 * Perf buffers (libbpf's perf_buffer, bcc's perf reader): a
 * PERF_COUNT_SW_BPF_OUTPUT perf event per CPU, mapped by the consumer and
 * then stored in a perf event array. The mapping is first anonymous; once
 * the fd is stored at an index, it shows that entry's ring in the segment,
 * where bpf_perf_event_output writes from every traced process.
 */
#include "../maps/perf_event_array.h" /* before libc headers: they define F_LOCK */
#include "server.h"

#include "raw_syscall.h"

#include <errno.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#define RING_PAGES (PERF_RING_DATA / MAP_PAGE)

struct shm_map *perf_array(uint32_t map_id)
{
	struct shm_map *m = map_by_id(server_shm, map_id);
	return m && m->type == MAP_PERF_EVENT_ARRAY ? m : NULL;
}

/* Puts the entry's ring under the consumer's mapping; a new consumer starts at the head. */
static long show_ring(const struct perf_output *o)
{
	struct shm_map *m = perf_array(o->map_id);
	if (!m || o->index >= m->max_entries)
		return -EINVAL;
	struct perf_ring_page *p = pea_ring(server_shm, m, o->index);
	__atomic_store_n(&p->data_tail, __atomic_load_n(&p->data_head, __ATOMIC_ACQUIRE), __ATOMIC_RELEASE);
	long rc = raw_syscall6(SYS_mmap, (long)o->va, (long)o->len, PROT_READ | PROT_WRITE,
			       MAP_SHARED | MAP_FIXED, server_shm_fd, (long)((uint8_t *)p - server_shm->base));
	return rc < 0 && rc > -4096 ? rc : 0;
}

long perf_output_mmap(struct server_fd *e, void *addr, size_t len, int prot, int flags, off_t off)
{
	if (off || len != MAP_PAGE + PERF_RING_DATA || !(flags & MAP_SHARED) || e->output.va) {
		server_log("perf buffer: a mapping of %zu bytes at offset %lld; bpftime's perf rings are "
			   "1 + %u pages, mapped once (perf_buffer__new(map, %u, ...); "
			   "bpftrace: BPFTRACE_PERF_RB_PAGES=%u)",
			   len, (long long)off, RING_PAGES, RING_PAGES, RING_PAGES);
		return -EINVAL;
	}
	bool fixed;
	long va = server_mapping_address(addr, len, prot, flags, &fixed);
	if (va < 0 && va > -4096)
		return va;
	e->output.va = (uint64_t)va;
	e->output.len = len;
	if (e->output.map_id) {
		long rc = show_ring(&e->output);
		if (rc < 0)
			return rc;
	}
	return va;
}

void perf_output_store(int fd, uint32_t map_id, uint32_t index)
{
	struct server_fd *e = sfd_get(fd);
	if (!e || e->kind != SFD_PERF_OUTPUT) {
		server_log("perf event array %u: fd %d is not a perf output event of ours; records go to "
			   "the segment's ring %u only",
			   map_id, fd, index);
		return;
	}
	e->output.map_id = map_id;
	e->output.index = index;
	if (e->waker)
		waker_rebind(e->waker, map_id, index);
	if (e->output.va && show_ring(&e->output) < 0)
		server_log("perf event array %u: cannot map ring %u for fd %d", map_id, index, fd);
}
