/*
 * BPF_MAP_TYPE_RINGBUF with the kernel's layout (kernel/bpf/ringbuf.c):
 * a consumer page (consumer_pos at offset 0), a producer page (producer_pos
 * at offset 0), then max_entries bytes of data, all page-aligned in the
 * segment. Records have an 8-byte header: u32 length with the BUSY (1<<31)
 * and DISCARD (1<<30) bits, u32 page offset of the header from the ring's
 * start. A record that would wrap is preceded by a discarded filler record
 * up to the end of the data, so every record is contiguous and a libbpf
 * consumer reads it in place. Producers serialize on a robust spinlock only
 * to reserve; consumers never lock.
 */
#define _GNU_SOURCE
#include "ringbuf.h"

#include "map_mmap.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static uint64_t rb_storage_size(const struct shm_map *map)
{
	return RB_PAGE * 3 + map->max_entries; /* one page of slack for alignment */
}

static void rb_init(struct bpftime_shm *shm, struct shm_map *map, uint64_t at)
{
	uint64_t base = (at + RB_PAGE - 1) & ~(uint64_t)(RB_PAGE - 1);
	ringbuf_of(map)->pages = base;    /* consumer page, producer page */
	map->slots = base + 2 * RB_PAGE; /* data */
	map->values_bytes = map->max_entries;
	struct rb_producer *p = map_at(shm, base + RB_PAGE);
	p->magic = RB_MAGIC;
	p->map_self = map->self;
}

struct rb_producer *rb_producer(struct bpftime_shm *shm, struct shm_map *map)
{
	return map_at(shm, ringbuf_of(map)->pages + RB_PAGE);
}

uint64_t *rb_consumer_pos(struct bpftime_shm *shm, struct shm_map *map)
{
	return map_at(shm, ringbuf_of(map)->pages);
}

void *rb_reserve(struct bpftime_shm *shm, struct shm_map *map, uint64_t size)
{
	struct rb_producer *p = rb_producer(shm, map);
	if (size == 0 || size > RB_MAX_RECORD || size + RB_HDR > map->max_entries) {
		return NULL;
	}
	uint64_t need = (size + RB_HDR + 7) & ~7ull, mask = map->max_entries - 1;
	uint8_t *data = map_at(shm, map->slots);
	void *out = NULL;
	shm_spin_lock(&p->reserve_lock);
	uint64_t cons = __atomic_load_n(rb_consumer_pos(shm, map), __ATOMIC_ACQUIRE);
	uint64_t prod = p->producer_pos;
	uint64_t to_end = map->max_entries - (prod & mask);
	uint64_t filler = need > to_end ? to_end : 0;
	/* Like the kernel: the producer stays at most size - 1 bytes ahead of the consumer. */
	if (prod + filler + need - cons > map->max_entries - 1) {
		__atomic_add_fetch(&p->dropped, 1, __ATOMIC_RELAXED);
		goto out;
	}
	if (filler) { /* a discarded record up to the end, so ours does not wrap */
		uint32_t *h = (uint32_t *)(data + (prod & mask));
		h[1] = (uint32_t)((((uintptr_t)h - (uintptr_t)rb_consumer_pos(shm, map)) >> 12));
		__atomic_store_n(&h[0], (uint32_t)(filler - RB_HDR) | RB_DISCARD_BIT, __ATOMIC_RELEASE);
		prod += filler;
	}
	uint32_t *h = (uint32_t *)(data + (prod & mask));
	h[1] = (uint32_t)(((uintptr_t)h - (uintptr_t)rb_consumer_pos(shm, map)) >> 12);
	__atomic_store_n(&h[0], (uint32_t)size | RB_BUSY_BIT, __ATOMIC_RELAXED);
	__atomic_store_n(&p->producer_pos, prod + need, __ATOMIC_RELEASE);
	out = h + 2;
out:
	shm_spin_unlock(&p->reserve_lock);
	return out;
}

static void wake_consumers(struct rb_producer *p)
{
	if (__atomic_load_n(&p->waiters, __ATOMIC_ACQUIRE)) {
		__atomic_add_fetch(&p->wake_seq, 1, __ATOMIC_RELEASE);
		syscall(SYS_futex, &p->wake_seq, FUTEX_WAKE, 1 << 30, NULL, NULL, 0);
	}
}

/* The ring a sample pointer belongs to, through the header's page offset; NULL when it is not ours. */
struct shm_map *rb_of_sample(struct bpftime_shm *shm, uint64_t sample, uint32_t **hdr_out)
{
	uint64_t base = (uintptr_t)shm->base;
	if (sample < base + RB_HDR || sample - base >= shm->size || (sample & 7))
		return NULL;
	uint32_t *hdr = (uint32_t *)(uintptr_t)(sample - RB_HDR);
	uint64_t ring = ((uintptr_t)hdr & ~(uint64_t)(RB_PAGE - 1)) - (uint64_t)hdr[1] * RB_PAGE;
	if (ring < base || ring - base > shm->size - 2 * RB_PAGE)
		return NULL;
	struct rb_producer *p = (struct rb_producer *)(uintptr_t)(ring + RB_PAGE);
	if (p->magic != RB_MAGIC || p->map_self > shm->size - sizeof(struct ringbuf_map))
		return NULL;
	struct shm_map *m = map_at(shm, p->map_self);
	if (m->magic != MAP_MAGIC || m->type != MAP_RINGBUF || ringbuf_of(m)->pages != ring - base)
		return NULL;
	uint64_t data = base + m->slots;
	if ((uintptr_t)hdr < data || (uintptr_t)hdr >= data + m->max_entries)
		return NULL;
	*hdr_out = hdr;
	return m;
}

int rb_commit(struct bpftime_shm *shm, struct shm_map *map, uint32_t *hdr, bool discard, uint64_t flags)
{
	uint32_t len = __atomic_load_n(&hdr[0], __ATOMIC_ACQUIRE);
	if (!(len & RB_BUSY_BIT))
		return -EINVAL; /* already submitted or discarded */
	uint32_t done = (len & ~RB_BUSY_BIT) | (discard ? RB_DISCARD_BIT : 0);
	__atomic_store_n(&hdr[0], done, __ATOMIC_RELEASE);
	if (!(flags & RB_NO_WAKEUP))
		wake_consumers(rb_producer(shm, map));
	return 0;
}

int rb_output(struct bpftime_shm *shm, struct shm_map *map, const void *data, uint64_t size,
	      uint64_t flags)
{
	void *rec = rb_reserve(shm, map, size);
	if (!rec)
		return -EAGAIN;
	memcpy(rec, data, size);
	return rb_commit(shm, map, (uint32_t *)rec - 2, false, flags);
}

uint64_t rb_query(struct bpftime_shm *shm, struct shm_map *map, uint64_t flags)
{
	struct rb_producer *p = rb_producer(shm, map);
	uint64_t cons = __atomic_load_n(rb_consumer_pos(shm, map), __ATOMIC_ACQUIRE);
	uint64_t prod = __atomic_load_n(&p->producer_pos, __ATOMIC_ACQUIRE);
	switch (flags) {
	case 0: return prod - cons; /* BPF_RB_AVAIL_DATA */
	case 1: return map->max_entries; /* BPF_RB_RING_SIZE */
	case 2: return cons; /* BPF_RB_CONS_POS */
	case 3: return prod; /* BPF_RB_PROD_POS */
	default: return 0;
	}
}

int bpftime_ringbuf_wait(struct bpftime_shm *shm, uint32_t id, int timeout_ms)
{
	struct shm_object *o = shm_object_find(shm, id);
	struct shm_map *m = o && o->kind == SHM_MAP ? shm_ptr(shm, o->offset) : NULL;
	if (!m || m->type != MAP_RINGBUF) {
		set_error("no ring buffer with id %u", id);
		return -ENOENT;
	}
	struct rb_producer *p = rb_producer(shm, m);
	uint32_t seq = __atomic_load_n(&p->wake_seq, __ATOMIC_ACQUIRE);
	__atomic_add_fetch(&p->waiters, 1, __ATOMIC_ACQ_REL);
	int rc = 0;
	/* Re-check after announcing ourselves, so a submit in between is not missed. */
	if (rb_query(shm, m, 0) == 0) {
		struct timespec ts = {timeout_ms / 1000, (long)(timeout_ms % 1000) * 1000000};
		if (syscall(SYS_futex, &p->wake_seq, FUTEX_WAIT, seq, timeout_ms < 0 ? NULL : &ts, NULL,
			    0) < 0 && errno == ETIMEDOUT)
			rc = 0;
	}
	/* The segment may have been truncated or overwritten while we slept: look before touching it. */
	if (!shm_intact(shm)) {
		set_error("segment '%s' was truncated or overwritten", shm->name);
		return -EIO;
	}
	__atomic_sub_fetch(&p->waiters, 1, __ATOMIC_ACQ_REL);
	return rc < 0 ? rc : (int)(rb_query(shm, m, 0) > 0);
}

int bpftime_ringbuf_info(struct bpftime_shm *shm, uint32_t id, struct bpftime_ringbuf_info *out)
{
	struct shm_object *o = shm_object_find(shm, id);
	struct shm_map *m = o && o->kind == SHM_MAP ? shm_ptr(shm, o->offset) : NULL;
	if (!m || m->type != MAP_RINGBUF) {
		set_error("no ring buffer with id %u", id);
		return -ENOENT;
	}
	out->consumer_pos = rb_consumer_pos(shm, m);
	out->producer_pos = &rb_producer(shm, m)->producer_pos;
	out->data = map_at(shm, m->slots);
	out->size = m->max_entries;
	out->dropped = &rb_producer(shm, m)->dropped;
	return 0;
}

/* Keyed operations do not apply: bpf(2) answers -ENOTSUPP. */
static void *rb_lookup(struct bpftime_shm *shm, struct shm_map *map, const void *key)
{
	(void)shm, (void)map, (void)key;
	return NULL;
}
static int rb_update(struct bpftime_shm *shm, struct shm_map *map, const void *key, const void *value,
		     uint64_t flags, int cpu)
{
	(void)shm, (void)map, (void)key, (void)value, (void)flags, (void)cpu;
	return -KERNEL_ENOTSUPP;
}
static int rb_delete(struct bpftime_shm *shm, struct shm_map *map, const void *key)
{
	(void)shm, (void)map, (void)key;
	return -KERNEL_ENOTSUPP;
}
static int rb_next_key(struct bpftime_shm *shm, struct shm_map *map, const void *key, void *next)
{
	(void)shm, (void)map, (void)key, (void)next;
	return -KERNEL_ENOTSUPP;
}

const struct map_ops ringbuf_map_ops = {
	.state_size = sizeof(struct ringbuf_map),
	.storage_size = rb_storage_size,
	.init = rb_init,
	.lookup = rb_lookup,
	.update = rb_update,
	.delete = rb_delete,
	.next_key = rb_next_key,
};

/*
 * The ring in the kernel's mmap layout, for consumers that expect it (libbpf):
 * consumer page, producer page, then the data mapped twice back to back, all
 * views of the segment's own pages (re-opened by name), at a new address.
 */
void *bpftime_ringbuf_map(struct bpftime_shm *shm, uint32_t id, uint64_t *length)
{
	struct shm_object *o = shm_object_find(shm, id);
	struct shm_map *m = o && o->kind == SHM_MAP ? shm_ptr(shm, o->offset) : NULL;
	if (!m || m->type != MAP_RINGBUF) {
		set_error("no ring buffer with id %u", id);
		return NULL;
	}
	char path[300];
	snprintf(path, sizeof(path), "/%s", shm->name);
	int fd = shm_open(path, O_RDWR, 0);
	if (fd < 0) {
		set_error("ring buffer %u: segment '%s': %s", id, shm->name, strerror(errno));
		return NULL;
	}
	uint64_t total = map_mmap_size(m);
	uint8_t *va = mmap(NULL, total, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int err = va == MAP_FAILED ? -errno : 0;
	if (!err)
		err = map_mmap_range(m, fd, va, 0, RB_PAGE, PROT_READ | PROT_WRITE);
	if (!err)
		err = map_mmap_range(m, fd, va + RB_PAGE, RB_PAGE, total - RB_PAGE, PROT_READ);
	close(fd);
	if (err) {
		if (va != MAP_FAILED)
			munmap(va, total);
		set_error("ring buffer %u: cannot map it twice: %s", id, strerror(-err));
		return NULL;
	}
	*length = total;
	return va;
}
