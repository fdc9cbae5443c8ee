/*
 * BPF_MAP_TYPE_RINGBUF with the kernel's layout (kernel/bpf/ringbuf.c):
 * a consumer page (consumer_pos at offset 0), a producer page (producer_pos
 * at offset 0), then max_entries bytes of data, all page-aligned in the
 * segment. Records have an 8-byte header: u32 length with the BUSY (1<<31)
 * and DISCARD (1<<30) bits, u32 page offset of the header from the ring's
 * start. A record that would wrap is preceded by a discarded filler record
 * up to the end of the data, so every record is contiguous and a libbpf
 * consumer reads it in place. Neither producers nor consumers lock (see
 * rb_reserve). After the data, one bit per 8-byte position says that a
 * reserved record's header there is written (ours only: not mapped).
 */
#define _GNU_SOURCE
#include "ringbuf.h"

#include "map_mmap.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static uint64_t rb_storage_size(const struct shm_map *map)
{
	/* one page of slack for alignment; the ready bits after the data */
	return RB_PAGE * 3 + map->max_entries + map->max_entries / 64;
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

static uint64_t *ready_bits(struct bpftime_shm *shm, struct shm_map *map)
{
	return map_at(shm, map->slots + map->max_entries);
}

static void write_header(uint8_t *data, uint64_t mask, uint64_t at, uint32_t len, const uint64_t *cons_page)
{
	uint32_t *h = (uint32_t *)(data + (at & mask));
	h[1] = (uint32_t)(((uintptr_t)h - (uintptr_t)cons_page) >> 12);
	__atomic_store_n(&h[0], len, __ATOMIC_RELAXED);
}

/* The header at `at` is written: the bit, then whoever finds it at producer_pos publishes it. */
static void set_ready(uint64_t *ready, uint64_t mask, uint64_t at)
{
	uint64_t bit = (at & mask) / 8;
	__atomic_fetch_or(&ready[bit / 64], 1ull << (bit % 64), __ATOMIC_SEQ_CST);
}

/*
 * Moves producer_pos over every record at it whose header is written, one at
 * a time: taking the record's ready bit gives the right to move it. Each
 * producer runs this after setting its bits, so a record written after its
 * predecessor was published, or before, is published either by its own
 * producer or by the predecessor's (the bit and producer_pos are both
 * sequentially consistent: one of the two sees the other's write).
 */
static void publish_ready(struct rb_producer *p, uint64_t *ready, const uint8_t *data, uint64_t mask)
{
	for (;;) {
		uint64_t at = __atomic_load_n(&p->producer_pos, __ATOMIC_SEQ_CST);
		uint64_t bit = (at & mask) / 8, m = 1ull << (bit % 64);
		if (!(__atomic_fetch_and(&ready[bit / 64], ~m, __ATOMIC_SEQ_CST) & m))
			return; /* not written yet: its producer publishes it, and what follows */
		uint32_t len = __atomic_load_n((const uint32_t *)(data + (at & mask)), __ATOMIC_ACQUIRE);
		uint64_t next = at + (((len & ~(RB_BUSY_BIT | RB_DISCARD_BIT)) + RB_HDR + 7) & ~7ull);
		uint64_t expect = at;
		if (!__atomic_compare_exchange_n(&p->producer_pos, &expect, next, false, __ATOMIC_SEQ_CST,
						 __ATOMIC_SEQ_CST))
			/* We were held up for a whole lap: the bit was a later record's. Give it back. */
			__atomic_fetch_or(&ready[bit / 64], m, __ATOMIC_SEQ_CST);
	}
}

static void wake_consumers(struct rb_producer *p)
{
	if (__atomic_load_n(&p->waiters, __ATOMIC_ACQUIRE)) {
		__atomic_add_fetch(&p->wake_seq, 1, __ATOMIC_RELEASE);
		syscall(SYS_futex, &p->wake_seq, FUTEX_WAKE, 1 << 30, NULL, NULL, 0);
	}
}

/*
 * The ring is full and producer_pos stands at a reservation never written:
 * when its producer is dead (killed between reserving and writing), its
 * space becomes discarded records, so that the ring flows again.
 */
static void skip_dead(struct rb_producer *p, uint64_t *ready, uint8_t *data, uint64_t mask,
		      const uint64_t *cons_page)
{
	uint64_t at = __atomic_load_n(&p->producer_pos, __ATOMIC_SEQ_CST);
	const struct rb_inflight *f = &p->inflight[(at / 8) % RB_INFLIGHT];
	if (__atomic_load_n(&f->start, __ATOMIC_ACQUIRE) != at)
		return;
	uint64_t end = f->end;
	uint32_t pid = __atomic_load_n(&f->pid, __ATOMIC_RELAXED);
	if (__atomic_load_n(&f->start, __ATOMIC_ACQUIRE) != at || end <= at || end - at > mask + 1 || !pid ||
	    kill((pid_t)pid, 0) == 0 || errno != ESRCH)
		return;
	/* Discarded records over it, none crossing the end of the data (as fillers do); last bit first. */
	uint64_t starts[2], n = 0;
	for (uint64_t a = at; a < end && n < 2;) {
		uint64_t len = end - a, to_end = mask + 1 - (a & mask);
		if (len > to_end)
			len = to_end;
		write_header(data, mask, a, (uint32_t)(len - RB_HDR) | RB_DISCARD_BIT, cons_page);
		starts[n++] = a;
		a += len;
	}
	while (n--)
		set_ready(ready, mask, starts[n]);
	publish_ready(p, ready, data, mask);
	wake_consumers(p); /* what follows the gap may be submitted already: no submit wakes them for it */
}

void *rb_reserve(struct bpftime_shm *shm, struct shm_map *map, uint64_t size)
{
	struct rb_producer *p = rb_producer(shm, map);
	if (size == 0 || size > RB_MAX_RECORD || size + RB_HDR > map->max_entries) {
		return NULL;
	}
	uint64_t need = (size + RB_HDR + 7) & ~7ull, mask = map->max_entries - 1;
	uint8_t *data = map_at(shm, map->slots);
	uint64_t *cons_page = rb_consumer_pos(shm, map), *ready = ready_bits(shm, map);
	uint64_t start = __atomic_load_n(&p->pending_pos, __ATOMIC_ACQUIRE), filler, end;
	for (;;) {
		uint64_t cons = __atomic_load_n(cons_page, __ATOMIC_ACQUIRE);
		if ((int64_t)(start - cons) < 0) { /* `start` is stale: others reserved since */
			start = __atomic_load_n(&p->pending_pos, __ATOMIC_ACQUIRE);
			continue;
		}
		uint64_t to_end = map->max_entries - (start & mask);
		filler = need > to_end ? to_end : 0;
		end = start + filler + need;
		/* Like the kernel: the producer stays at most size - 1 bytes ahead of the consumer. */
		if (end - cons > map->max_entries - 1) {
			__atomic_add_fetch(&p->dropped, 1, __ATOMIC_RELAXED);
			skip_dead(p, ready, data, mask, cons_page);
			return NULL;
		}
		if (__atomic_compare_exchange_n(&p->pending_pos, &start, end, true, __ATOMIC_ACQ_REL,
						__ATOMIC_ACQUIRE))
			break;
	}
	struct rb_inflight *f = &p->inflight[(start / 8) % RB_INFLIGHT];
	__atomic_store_n(&f->start, ~0ull, __ATOMIC_RELAXED); /* while the entry is half-written */
	__atomic_store_n(&f->pid, shm_self_pid(), __ATOMIC_RELAXED);
	f->end = end;
	__atomic_store_n(&f->start, start, __ATOMIC_RELEASE);
	uint64_t at = start + filler;
	if (filler) /* a discarded record up to the end, so ours does not wrap */
		write_header(data, mask, start, (uint32_t)(filler - RB_HDR) | RB_DISCARD_BIT, cons_page);
	write_header(data, mask, at, (uint32_t)size | RB_BUSY_BIT, cons_page);
	/* The record's bit before the filler's: producer_pos never stops between the two (skip_dead). */
	set_ready(ready, mask, at);
	if (filler)
		set_ready(ready, mask, start);
	publish_ready(p, ready, data, mask);
	return data + (at & mask) + RB_HDR;
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
