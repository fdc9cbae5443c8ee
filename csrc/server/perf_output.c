/*
 * Perf buffers (libbpf's perf_buffer, bcc's perf reader): a
 * PERF_COUNT_SW_BPF_OUTPUT perf event per CPU, mapped by the consumer and
 * then stored in a perf event array. The mapping is first anonymous; once
 * the fd is stored at an index, it shows that entry's ring in the segment,
 * where bpf_perf_event_output writes from every traced process. The ring has
 * the size the consumer mapped (1 + 2^n pages, as the kernel takes them).
 */
#include "../maps/perf_event_array.h" /* before libc headers: they define F_LOCK */
#include "server.h"

#include "raw_syscall.h"

#include <errno.h>
#include <sys/mman.h>
#include <sys/syscall.h>

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
	long rc = pea_resize(server_shm, m, o->index, o->len - MAP_PAGE);
	if (rc < 0) {
		server_log("perf event array %u: no room in the segment for a ring of %llu bytes at %u",
			   o->map_id, (unsigned long long)(o->len - MAP_PAGE), o->index);
		return rc;
	}
	struct perf_ring_page *p = pea_ring(server_shm, m, o->index);
	__atomic_store_n(&p->data_tail, __atomic_load_n(&p->data_head, __ATOMIC_ACQUIRE), __ATOMIC_RELEASE);
	rc = raw_syscall6(SYS_mmap, (long)o->va, (long)o->len, PROT_READ | PROT_WRITE,
			       MAP_SHARED | MAP_FIXED, server_shm_fd, (long)((uint8_t *)p - server_shm->base));
	return rc < 0 && rc > -4096 ? rc : 0;
}

long perf_output_mmap(struct server_fd *e, void *addr, size_t len, int prot, int flags, off_t off)
{
	uint64_t data = len > MAP_PAGE ? len - MAP_PAGE : 0;
	if (off || data < MAP_PAGE || data > PERF_RING_MAX || (data & (data - 1)) || (len % MAP_PAGE) ||
	    !(flags & MAP_SHARED) || e->output.va) {
		server_log("perf buffer: a mapping of %zu bytes at offset %lld; a perf ring is mapped once, "
			   "shared, at offset 0, as 1 + 2^n pages (at most %llu MiB of data)",
			   len, (long long)off, PERF_RING_MAX >> 20);
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
