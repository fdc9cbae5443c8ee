/* The kernel's mmap layouts of maps, as ranges of the segment file. */
#define _GNU_SOURCE
#include "map_mmap.h"

#include "ringbuf.h"

#include <errno.h>
#include <sys/mman.h>

int map_mmap_layout(const struct shm_map *m, struct map_mmap_piece out[MAP_MMAP_MAX_PIECES])
{
	if (m->type == MAP_ARRAY && (m->map_flags & F_MMAPABLE)) {
		out[0] = (struct map_mmap_piece){0, m->slots, array_mmap_bytes(m), true};
		return 1;
	}
	if (m->type == MAP_RINGBUF) {
		uint64_t size = m->max_entries, pages = ((const struct ringbuf_map *)m)->pages;
		out[0] = (struct map_mmap_piece){0, pages, RB_PAGE, true};
		out[1] = (struct map_mmap_piece){RB_PAGE, pages + RB_PAGE, RB_PAGE, false};
		out[2] = (struct map_mmap_piece){2 * RB_PAGE, m->slots, size, false};
		out[3] = (struct map_mmap_piece){2 * RB_PAGE + size, m->slots, size, false};
		return 4;
	}
	return 0;
}

uint64_t map_mmap_size(const struct shm_map *m)
{
	struct map_mmap_piece p[MAP_MMAP_MAX_PIECES];
	int n = map_mmap_layout(m, p);
	return n ? p[n - 1].at + p[n - 1].len : 0;
}

int map_mmap_range(const struct shm_map *m, int fd, uint8_t *va, uint64_t offset, uint64_t len, int prot)
{
	struct map_mmap_piece p[MAP_MMAP_MAX_PIECES];
	int n = map_mmap_layout(m, p);
	if (!n || offset % MAP_PAGE || !len || offset + len > map_mmap_size(m))
		return -EINVAL;
	for (int i = 0; i < n; i++) {
		uint64_t lo = p[i].at > offset ? p[i].at : offset;
		uint64_t hi = p[i].at + p[i].len < offset + len ? p[i].at + p[i].len : offset + len;
		if (lo < hi && (prot & PROT_WRITE) && !p[i].writable)
			return -EPERM;
	}
	for (int i = 0; i < n; i++) {
		uint64_t lo = p[i].at > offset ? p[i].at : offset;
		uint64_t hi = p[i].at + p[i].len < offset + len ? p[i].at + p[i].len : offset + len;
		if (lo >= hi)
			continue;
		uint64_t hi_page = (hi + MAP_PAGE - 1) & ~(uint64_t)(MAP_PAGE - 1);
		if (mmap(va + (lo - offset), hi_page - lo, prot, MAP_SHARED | MAP_FIXED, fd,
			 (off_t)(p[i].file_offset + (lo - p[i].at))) == MAP_FAILED)
			return -errno;
	}
	return 0;
}

/*
 * A BPF_F_MMAPABLE array's values where this process maps the segment (no new mapping): what
 * mmap of the map's fd shows, for consumers reading in place (the process tracer's data pages).
 */
void *bpftime_map_mmap_data(struct bpftime_shm *shm, uint32_t id, uint64_t *length)
{
	struct shm_object *o = shm_object_find(shm, id);
	struct shm_map *m = o && o->kind == SHM_MAP ? shm_ptr(shm, o->offset) : NULL;
	if (!m || m->type != MAP_ARRAY || !(m->map_flags & F_MMAPABLE)) {
		set_error("map %u is not a BPF_F_MMAPABLE array", id);
		return NULL;
	}
	*length = array_mmap_bytes(m);
	return shm_ptr(shm, m->slots);
}
