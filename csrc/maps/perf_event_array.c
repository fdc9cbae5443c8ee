/*
 * BPF_MAP_TYPE_PERF_EVENT_ARRAY: one perf ring per entry, in the layout a
 * perf_event mmap has (a struct perf_event_mmap_page whose data_head,
 * data_tail, data_offset and data_size sit at offsets 1024-1048, then the
 * data pages), holding PERF_RECORD_SAMPLE records with raw data and
 * PERF_RECORD_LOST records, as libbpf's perf_buffer reads them. An entry
 * receives events once a consumer enables it (update with any value, as
 * libbpf stores its perf event fd); delete disables it.
 *
 * Every entry has a preallocated ring of PERF_RING_DATA bytes. A consumer
 * that maps another size (bpftrace asks for 64 pages, perf_buffer__new for
 * what its caller says) gets a ring of that size from the segment's heap for
 * its entry (pea_resize), freed with the map or when the entry is resized
 * again. The data size writers trust is the entry's, never the ring page's,
 * which the consumer can write.
 */
#include "perf_event_array.h"

#include <errno.h>
#include <linux/futex.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define PERF_PAGE 4096u

/* A perf event array: one ring per entry; the entries (struct pea_entry) are at map.slots. */
struct perf_event_array_map {
	struct shm_map map;
	uint64_t rings;
};

struct pea_entry {
	uint32_t enabled, value;
	uint64_t block;     /* heap block of a resized ring (0: the preallocated one) */
	uint64_t ring;      /* offset of the resized ring's page (page-aligned) */
	uint64_t data_size; /* its data bytes (0: PERF_RING_DATA) */
};

static uint64_t ring_bytes(void)
{
	return PERF_PAGE + PERF_RING_DATA;
}

static uint64_t pea_storage_size(const struct shm_map *map)
{
	return PERF_PAGE + (uint64_t)map->max_entries * ring_bytes() +
	       (uint64_t)map->max_entries * sizeof(struct pea_entry);
}

static void pea_init(struct bpftime_shm *shm, struct shm_map *map, uint64_t at)
{
	uint64_t base = (at + PERF_PAGE - 1) & ~(uint64_t)(PERF_PAGE - 1);
	((struct perf_event_array_map *)map)->rings = base;
	map->slots = base + (uint64_t)map->max_entries * ring_bytes(); /* struct pea_entry each */
	for (uint32_t i = 0; i < map->max_entries; i++) {
		struct perf_ring_page *p = pea_ring(shm, map, i);
		p->data_offset = PERF_PAGE;
		p->data_size = PERF_RING_DATA;
	}
}

static struct pea_entry *entry(struct bpftime_shm *shm, struct shm_map *map, uint32_t index)
{
	return (struct pea_entry *)map_at(shm, map->slots) + index;
}

static uint64_t data_size(struct bpftime_shm *shm, struct shm_map *map, uint32_t index)
{
	uint64_t n = __atomic_load_n(&entry(shm, map, index)->data_size, __ATOMIC_ACQUIRE);
	return n ? n : PERF_RING_DATA;
}

struct perf_ring_page *pea_ring(struct bpftime_shm *shm, struct shm_map *map, uint32_t index)
{
	uint64_t ring = __atomic_load_n(&entry(shm, map, index)->ring, __ATOMIC_ACQUIRE);
	if (ring)
		return shm_ptr(shm, ring);
	return (struct perf_ring_page *)((uint8_t *)map_at(shm, ((struct perf_event_array_map *)map)->rings) +
					 (uint64_t)index * ring_bytes());
}

uint64_t pea_ring_bytes(struct bpftime_shm *shm, struct shm_map *map, uint32_t index)
{
	return PERF_PAGE + data_size(shm, map, index);
}

int pea_resize(struct bpftime_shm *shm, struct shm_map *map, uint32_t index, uint64_t data)
{
	if (index >= map->max_entries)
		return -E2BIG;
	if (data < PERF_PAGE || data > PERF_RING_MAX || (data & (data - 1)))
		return -EINVAL;
	struct pea_entry *e = entry(shm, map, index);
	if (data == data_size(shm, map, index))
		return 0;
	uint64_t block = 0, ring = 0;
	if (data != PERF_RING_DATA) {
		shm_lock(&shm->hdr->lock);
		block = shm_alloc_locked(shm, PERF_PAGE + data + PERF_PAGE); /* + room to align */
		shm_unlock(&shm->hdr->lock);
		if (!block)
			return -ENOMEM;
		ring = (block + PERF_PAGE - 1) & ~(uint64_t)(PERF_PAGE - 1);
		struct perf_ring_page *p = shm_ptr(shm, ring);
		p->data_offset = PERF_PAGE;
		p->data_size = data;
	}
	map_lock(shm, map); /* writers hold it while they use the ring */
	uint64_t old = e->block;
	__atomic_store_n(&e->ring, ring, __ATOMIC_RELEASE);
	__atomic_store_n(&e->data_size, ring ? data : 0, __ATOMIC_RELEASE);
	e->block = block;
	map_unlock(map);
	if (old) {
		shm_lock(&shm->hdr->lock);
		shm_free_locked(shm, old);
		shm_unlock(&shm->hdr->lock);
	}
	return 0;
}

void pea_release(struct bpftime_shm *shm, struct shm_map *map)
{
	for (uint32_t i = 0; i < map->max_entries; i++) {
		struct pea_entry *e = entry(shm, map, i);
		if (e->block)
			shm_free_locked(shm, e->block);
		e->block = e->ring = e->data_size = 0;
	}
}

static void *pea_lookup(struct bpftime_shm *shm, struct shm_map *map, const void *key)
{
	(void)shm, (void)map, (void)key;
	return NULL; /* bpf(2) lookup on this type answers -ENOENT... via the caller */
}

static int pea_update(struct bpftime_shm *shm, struct shm_map *map, const void *key,
		      const void *value, uint64_t flags, int cpu)
{
	(void)cpu;
	uint32_t index;
	memcpy(&index, key, 4);
	if (flags != F_ANY) /* like every kernel fd array */
		return -EINVAL;
	if (index >= map->max_entries)
		return -E2BIG;
	struct pea_entry *e = entry(shm, map, index);
	memcpy(&e->value, value, 4);
	__atomic_store_n(&e->enabled, 1, __ATOMIC_RELEASE);
	return 0;
}

static int pea_delete(struct bpftime_shm *shm, struct shm_map *map, const void *key)
{
	uint32_t index;
	memcpy(&index, key, 4);
	if (index >= map->max_entries)
		return -E2BIG;
	struct pea_entry *e = entry(shm, map, index);
	if (!__atomic_exchange_n(&e->enabled, 0, __ATOMIC_ACQ_REL))
		return -ENOENT;
	return 0;
}

/* Appends `size` bytes (wrapping) at the head of a ring of `cap` (a power of two) bytes. */
static void put(uint8_t *data, uint64_t cap, uint64_t head, const void *src, uint64_t size)
{
	uint64_t at = head & (cap - 1), first = cap - at;
	if (first > size)
		first = size;
	memcpy(data + at, src, first);
	memcpy(data, (const uint8_t *)src + first, size - first);
}

int pea_output(struct bpftime_shm *shm, struct shm_map *map, uint64_t flags, const void *data,
	       uint64_t size)
{
	uint64_t index = flags & PERF_F_INDEX_MASK;
	if (flags & ~(uint64_t)PERF_F_INDEX_MASK)
		return -EINVAL;
	if (index == PERF_F_CURRENT_CPU)
		index = (uint64_t)current_cpu();
	if (index >= map->max_entries)
		return -E2BIG;
	if (!__atomic_load_n(&entry(shm, map, (uint32_t)index)->enabled, __ATOMIC_ACQUIRE))
		return -ENOENT;
	uint64_t rec = (sizeof(struct perf_header) + 4 + size + 7) & ~7ull;
	if (rec > 0xffff)
		return -E2BIG;
	map_lock(shm, map);
	struct perf_ring_page *p = pea_ring(shm, map, (uint32_t)index);
	uint8_t *ring = (uint8_t *)p + PERF_PAGE;
	uint64_t cap = data_size(shm, map, (uint32_t)index);
	uint64_t head = p->data_head, tail = __atomic_load_n(&p->data_tail, __ATOMIC_ACQUIRE);
	int rc = 0;
	uint64_t lost_rec = sizeof(struct perf_header) + 16;
	if (p->lost && head + lost_rec - tail <= cap) { /* report what was dropped */
		struct perf_header h = {PERF_RECORD_LOST, 0, (uint16_t)lost_rec};
		uint64_t body[2] = {0, p->lost};
		put(ring, cap, head, &h, sizeof(h));
		put(ring, cap, head + sizeof(h), body, sizeof(body));
		head += lost_rec;
		p->lost = 0;
	}
	if (head + rec - tail > cap) {
		p->lost++;
		rc = -ENOSPC;
	} else {
		struct perf_header h = {PERF_RECORD_SAMPLE, 0, (uint16_t)rec};
		/* As in the kernel, the raw size counts the padding that aligns the record. */
		uint32_t raw = (uint32_t)(rec - sizeof(h) - 4);
		uint8_t pad[8] = {0};
		put(ring, cap, head, &h, sizeof(h));
		put(ring, cap, head + sizeof(h), &raw, 4);
		put(ring, cap, head + sizeof(h) + 4, data, size);
		put(ring, cap, head + sizeof(h) + 4 + size, pad, rec - sizeof(h) - 4 - size);
		head += rec;
	}
	__atomic_store_n(&p->data_head, head, __ATOMIC_RELEASE);
	map_unlock(map);
	if (rc == 0 && __atomic_load_n(&p->waiters, __ATOMIC_ACQUIRE)) {
		__atomic_add_fetch(&p->wake_seq, 1, __ATOMIC_RELEASE);
		syscall(SYS_futex, &p->wake_seq, FUTEX_WAKE, 1 << 30, NULL, NULL, 0);
	}
	return rc;
}

bool pea_has_records(struct bpftime_shm *shm, struct shm_map *map, uint32_t index)
{
	struct perf_ring_page *p = pea_ring(shm, map, index);
	return __atomic_load_n(&p->data_head, __ATOMIC_ACQUIRE) !=
	       __atomic_load_n(&p->data_tail, __ATOMIC_ACQUIRE);
}

int pea_wait(struct bpftime_shm *shm, struct shm_map *map, uint32_t index, int timeout_ms)
{
	struct perf_ring_page *p = pea_ring(shm, map, index);
	uint32_t seq = __atomic_load_n(&p->wake_seq, __ATOMIC_ACQUIRE);
	__atomic_add_fetch(&p->waiters, 1, __ATOMIC_ACQ_REL);
	if (!pea_has_records(shm, map, index)) { /* re-checked after announcing ourselves */
		struct timespec ts = {timeout_ms / 1000, (long)(timeout_ms % 1000) * 1000000};
		syscall(SYS_futex, &p->wake_seq, FUTEX_WAIT, seq, timeout_ms < 0 ? NULL : &ts, NULL, 0);
	}
	__atomic_sub_fetch(&p->waiters, 1, __ATOMIC_ACQ_REL);
	return pea_has_records(shm, map, index);
}

int bpftime_perf_ring(struct bpftime_shm *shm, uint32_t id, uint32_t index, void **page,
		      uint64_t *size)
{
	struct shm_object *o = shm_object_find(shm, id);
	struct shm_map *m = o && o->kind == SHM_MAP ? shm_ptr(shm, o->offset) : NULL;
	if (!m || m->type != MAP_PERF_EVENT_ARRAY) {
		set_error("no perf event array with id %u", id);
		return -ENOENT;
	}
	if (index >= m->max_entries) {
		set_error("perf event array %u has %u entries, not %u", id, m->max_entries, index + 1);
		return -E2BIG;
	}
	*page = pea_ring(shm, m, index);
	*size = pea_ring_bytes(shm, m, index);
	return 0;
}

const struct map_ops perf_event_array_map_ops = {
	.state_size = sizeof(struct perf_event_array_map),
	.storage_size = pea_storage_size,
	.init = pea_init,
	.lookup = pea_lookup,
	.update = pea_update,
	.delete = pea_delete,
	.next_key = index_next_key,
	.release = pea_release,
};
