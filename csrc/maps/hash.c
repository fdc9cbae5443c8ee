/*
 * BPF_MAP_TYPE_HASH and BPF_MAP_TYPE_PERCPU_HASH (kernel/bpf/hashtab.c
 * semantics, preallocated): buckets of singly linked element chains, new
 * elements at the chain head, a free list of unused elements. Writers hold
 * the map's robust lock; a new element is published by one store of the
 * bucket head, so a writer killed mid-update never leaves a broken chain.
 * Element links and keys live apart from the values, so programs (which
 * may write values) can never reach the chains.
 *
 * BPF_MAP_TYPE_LRU_HASH and LRU_PERCPU_HASH add a recency list: lookups and
 * updates move an element to its head, and inserting into a full map reuses
 * the least recently used element instead of failing with E2BIG.
 */
#include "map.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* A hash map: the header, then where its buckets and elements are. */
struct hash_map {
	struct shm_map map;
	uint64_t elems;   /* element links and keys (the values are at map.slots) */
	uint64_t buckets; /* uint32 element index + 1 */
	uint32_t n_buckets;
	uint32_t count;     /* elements in use */
	uint32_t free_head; /* first free element index + 1 */
	uint32_t elem_size;
	uint32_t lru_head, lru_tail; /* LRU maps: recency list ends (index + 1), head newest */
	bool lru;
};

/* A hash of maps: values are inner map ids, which must match the template. */
struct hash_of_maps {
	struct hash_map hash;
	struct map_inner inner;
};

static inline struct hash_map *htab(struct shm_map *map)
{
	return (struct hash_map *)map;
}

struct hash_elem {
	uint32_t next; /* index + 1 of the next element in the chain or free list */
	uint32_t hash;
	uint32_t lru_prev, lru_next; /* LRU maps: recency list (index + 1), lru_head newest */
	uint8_t data[]; /* the key (key_stride bytes) */
};

/* Values of element idx1 (all CPUs' copies), in the values area map->slots. */
static uint8_t *values_of(struct bpftime_shm *shm, struct shm_map *map, uint32_t idx1)
{
	return (uint8_t *)map_at(shm, map->slots) +
	       (uint64_t)(idx1 - 1) * map->value_stride * map->ncpus;
}

static inline bool key_equal(const void *a, const void *b, uint32_t len)
{
	uint64_t x = 0, y = 0;
	if (len == 4 || len == 8) { /* the common keys: one load each (keys may be unaligned) */
		memcpy(&x, a, len);
		memcpy(&y, b, len);
		return x == y;
	}
	return memcmp(a, b, len) == 0;
}

static struct hash_elem *elem(struct bpftime_shm *shm, struct shm_map *map, uint32_t idx1)
{
	return (struct hash_elem *)((uint8_t *)map_at(shm, htab(map)->elems) +
				    (uint64_t)(idx1 - 1) * htab(map)->elem_size);
}

static bool is_lru(struct shm_map *map)
{
	return htab(map)->lru;
}

static void lru_unlink(struct bpftime_shm *shm, struct shm_map *map, uint32_t idx);
static void lru_push_head(struct bpftime_shm *shm, struct shm_map *map, uint32_t idx);

static uint32_t *bucket(struct bpftime_shm *shm, struct shm_map *map, uint32_t hash)
{
	return (uint32_t *)map_at(shm, htab(map)->buckets) + (hash & (htab(map)->n_buckets - 1));
}

static uint64_t hash_storage_size(const struct shm_map *map)
{
	uint32_t n = 1;
	while (n < map->max_entries)
		n <<= 1;
	uint64_t elem_size = sizeof(struct hash_elem) + map->key_stride;
	uint64_t values = (uint64_t)map->value_stride * map->ncpus;
	return (uint64_t)n * sizeof(uint32_t) + 16 + (elem_size + values) * map->max_entries;
}

static void hash_init(struct bpftime_shm *shm, struct shm_map *map, uint64_t at)
{
	uint32_t n = 1;
	while (n < map->max_entries)
		n <<= 1;
	htab(map)->n_buckets = n;
	htab(map)->buckets = at;
	htab(map)->elem_size = (uint32_t)(sizeof(struct hash_elem) + map->key_stride);
	htab(map)->elems = (at + (uint64_t)n * sizeof(uint32_t) + 7) & ~7ull;
	map->slots = htab(map)->elems + (uint64_t)htab(map)->elem_size * map->max_entries;
	for (uint32_t i = 1; i <= map->max_entries; i++)
		elem(shm, map, i)->next = i < map->max_entries ? i + 1 : 0;
	htab(map)->free_head = 1;
	htab(map)->lru = map_type(map->type)->lru;
	map->values_bytes = (uint64_t)map->max_entries * map->value_stride * map->ncpus;
}

/* The element index + 1 holding key, or 0; *link is the slot that points at it. */
static uint32_t find(struct bpftime_shm *shm, struct shm_map *map, const void *key, uint32_t hash,
		     uint32_t **link)
{
	uint32_t *at = bucket(shm, map, hash);
	for (uint32_t i = __atomic_load_n(at, __ATOMIC_ACQUIRE), steps = 0;
	     i && i <= map->max_entries && steps <= map->max_entries; steps++) {
		struct hash_elem *e = elem(shm, map, i);
		if (e->hash == hash && key_equal(e->data, key, map->key_size)) {
			if (link)
				*link = at;
			return i;
		}
		at = &e->next;
		i = __atomic_load_n(at, __ATOMIC_ACQUIRE);
	}
	return 0;
}

static void lru_unlink(struct bpftime_shm *shm, struct shm_map *map, uint32_t idx)
{
	struct hash_elem *e = elem(shm, map, idx);
	if (e->lru_prev)
		elem(shm, map, e->lru_prev)->lru_next = e->lru_next;
	else
		htab(map)->lru_head = e->lru_next;
	if (e->lru_next)
		elem(shm, map, e->lru_next)->lru_prev = e->lru_prev;
	else
		htab(map)->lru_tail = e->lru_prev;
	e->lru_prev = e->lru_next = 0;
}

static void lru_push_head(struct bpftime_shm *shm, struct shm_map *map, uint32_t idx)
{
	struct hash_elem *e = elem(shm, map, idx);
	e->lru_prev = 0;
	e->lru_next = htab(map)->lru_head;
	if (htab(map)->lru_head)
		elem(shm, map, htab(map)->lru_head)->lru_prev = idx;
	htab(map)->lru_head = idx;
	if (!htab(map)->lru_tail)
		htab(map)->lru_tail = idx;
}

static void lru_touch(struct bpftime_shm *shm, struct shm_map *map, uint32_t idx)
{
	if (is_lru(map) && htab(map)->lru_head != idx) {
		lru_unlink(shm, map, idx);
		lru_push_head(shm, map, idx);
	}
}

/* Takes the least recently used element out of its chain for reuse. */
static uint32_t lru_evict(struct bpftime_shm *shm, struct shm_map *map)
{
	uint32_t victim = htab(map)->lru_tail, *link;
	if (!victim)
		return 0;
	struct hash_elem *e = elem(shm, map, victim);
	if (find(shm, map, e->data, e->hash, &link) != victim)
		return 0;
	__atomic_store_n(link, e->next, __ATOMIC_RELEASE);
	lru_unlink(shm, map, victim);
	htab(map)->count--;
	return victim;
}

/* Plain hash maps' lookup (hash_lookup's lock-free path) as compiled code may do it inline. */
bool hash_lookup_layout(struct bpftime_shm *shm, struct shm_map *map, struct map_lookup_layout *out)
{
	if (map->type != MAP_HASH || is_lru(map) || map->ncpus != 1)
		return false;
	*out = (struct map_lookup_layout){
		.kind = MAP_HASH,
		.key_size = map->key_size,
		.max_entries = map->max_entries,
		.values = map_at(shm, map->slots),
		.value_stride = map->value_stride,
		.buckets = map_at(shm, htab(map)->buckets),
		.elems = map_at(shm, htab(map)->elems),
		.bucket_mask = htab(map)->n_buckets - 1,
		.elem_size = htab(map)->elem_size,
		.next_off = offsetof(struct hash_elem, next),
		.hash_off = offsetof(struct hash_elem, hash),
		.key_off = offsetof(struct hash_elem, data),
	};
	return true;
}

/*
 * Lookups of plain hash maps take no lock: chains are walked with acquire
 * loads and bounded steps, so a concurrent writer can at worst make a lookup
 * miss a key being changed, never crash it (as with the kernel's RCU lists).
 * LRU lookups reorder the recency list and lock.
 */
static void *hash_lookup(struct bpftime_shm *shm, struct shm_map *map, const void *key)
{
	uint32_t h = map_hash_bytes(key, map->key_size, 0);
	if (!is_lru(map)) {
		uint32_t i = find(shm, map, key, h, NULL);
		return i ? values_of(shm, map, i) : NULL;
	}
	map_lock(shm, map);
	uint32_t i = find(shm, map, key, h, NULL);
	if (i)
		lru_touch(shm, map, i);
	map_unlock(map);
	return i ? values_of(shm, map, i) : NULL;
}

static void copy_values(struct shm_map *map, uint8_t *dst, const void *value, int cpu, bool fresh,
			bool locked)
{
	if (map->ncpus == 1) {
		map_copy_value(map, dst, value, locked, false);
		return;
	}
	if (cpu < 0) {
		for (uint32_t c = 0; c < map->ncpus; c++)
			memcpy(dst + (uint64_t)c * map->value_stride,
			       (const uint8_t *)value + (uint64_t)c * map->value_stride, map->value_size);
		return;
	}
	if (fresh) /* a new per-CPU element: this CPU's value, zeros elsewhere */
		memset(dst, 0, (uint64_t)map->value_stride * map->ncpus);
	memcpy(dst + (uint64_t)cpu * map->value_stride, value, map->value_size);
}

static int hash_update(struct bpftime_shm *shm, struct shm_map *map, const void *key,
		       const void *value, uint64_t flags, int cpu)
{
	if (!map_flags_ok(map, flags))
		return -EINVAL;
	bool locked = flags & F_LOCK;
	flags &= ~(uint64_t)F_LOCK;
	uint32_t h = map_hash_bytes(key, map->key_size, 0);
	int rc = 0;
	map_lock(shm, map);
	uint32_t old = find(shm, map, key, h, NULL);
	if (old && flags == F_NOEXIST) {
		rc = -EEXIST;
	} else if (!old && flags == F_EXIST) {
		rc = -ENOENT;
	} else if (old) {
		copy_values(map, values_of(shm, map, old), value, cpu, false, locked);
		lru_touch(shm, map, old);
	} else if (!htab(map)->free_head && !(is_lru(map) && htab(map)->lru_tail)) {
		rc = -E2BIG;
	} else {
		uint32_t idx = htab(map)->free_head;
		if (idx)
			htab(map)->free_head = elem(shm, map, idx)->next;
		else
			idx = lru_evict(shm, map);
		if (!idx) { /* (a recency list that does not match the chains: never, after repair) */
			rc = -E2BIG;
			goto out;
		}
		struct hash_elem *e = elem(shm, map, idx);
		e->hash = h;
		memset(e->data, 0, map->key_stride);
		memcpy(e->data, key, map->key_size);
		memset(values_of(shm, map, idx), 0, (uint64_t)map->value_stride * map->ncpus);
		copy_values(map, values_of(shm, map, idx), value, cpu, true, false);
		uint32_t *head = bucket(shm, map, h);
		e->next = *head;
		__atomic_store_n(head, idx, __ATOMIC_RELEASE); /* publish */
		htab(map)->count++;
		if (is_lru(map))
			lru_push_head(shm, map, idx);
	}
out:
	map_unlock(map);
	return rc;
}

static int hash_delete(struct bpftime_shm *shm, struct shm_map *map, const void *key)
{
	uint32_t h = map_hash_bytes(key, map->key_size, 0);
	uint32_t *link;
	int rc = 0;
	map_lock(shm, map);
	uint32_t idx = find(shm, map, key, h, &link);
	if (!idx) {
		rc = -ENOENT;
	} else {
		struct hash_elem *e = elem(shm, map, idx);
		__atomic_store_n(link, e->next, __ATOMIC_RELEASE); /* unlink */
		if (is_lru(map))
			lru_unlink(shm, map, idx);
		e->next = htab(map)->free_head;
		htab(map)->free_head = idx;
		htab(map)->count--;
	}
	map_unlock(map);
	return rc;
}

/* The kernel's order: the rest of the key's chain, then the following buckets; a missing key restarts. */
static int hash_next_key(struct bpftime_shm *shm, struct shm_map *map, const void *key, void *next)
{
	int rc = -ENOENT;
	map_lock(shm, map);
	uint32_t b = 0;
	if (key) {
		uint32_t h = map_hash_bytes(key, map->key_size, 0);
		uint32_t i = find(shm, map, key, h, NULL);
		struct hash_elem *e = i ? elem(shm, map, i) : NULL;
		if (e) {
			b = (h & (htab(map)->n_buckets - 1)) + 1;
			if (e->next) {
				memcpy(next, elem(shm, map, e->next)->data, map->key_size);
				rc = 0;
				goto out;
			}
		}
	}
	for (; b < htab(map)->n_buckets; b++) {
		uint32_t head = *((uint32_t *)map_at(shm, htab(map)->buckets) + b);
		if (head) {
			memcpy(next, elem(shm, map, head)->data, map->key_size);
			rc = 0;
			break;
		}
	}
out:
	map_unlock(map);
	return rc;
}

/*
 * After a writer died holding the lock: the bucket chains are the truth (an element is
 * published by one store of a chain link, and taken out by one), so every element they reach
 * once, under the right bucket, is live; everything else goes back on the free list (an
 * element taken for an update that never got published, or unlinked and never freed). The
 * recency list keeps its order where it still holds, live elements it lost go to its tail.
 */
static void hash_repair(struct bpftime_shm *shm, struct shm_map *map)
{
	struct hash_map *h = htab(map);
	uint32_t n = map->max_entries, mask = h->n_buckets - 1, count = 0;
	uint8_t *mark = calloc((size_t)n + 1, 1); /* 1 live, 2 placed in the recency list, 4 seen */
	uint32_t *order = h->lru ? calloc((size_t)n + 1, sizeof(uint32_t)) : NULL;
	if (!mark || (h->lru && !order)) {
		free(mark);
		free(order);
		return;
	}
	for (uint32_t b = 0; b < h->n_buckets; b++) {
		uint32_t *at = (uint32_t *)map_at(shm, h->buckets) + b;
		while (*at) {
			uint32_t i = *at;
			if (i > n || mark[i] || (elem(shm, map, i)->hash & mask) != b) {
				*at = 0; /* a link out of the map, a cycle, or a foreign element: cut */
				break;
			}
			mark[i] = 1;
			count++;
			at = &elem(shm, map, i)->next;
		}
	}
	h->count = count;
	if (h->lru) {
		uint32_t k = 0;
		for (uint32_t i = h->lru_head, steps = 0; i && i <= n && !(mark[i] & 4) && steps <= n;
		     steps++) {
			mark[i] |= 4;
			if (mark[i] & 1) {
				mark[i] |= 2;
				order[k++] = i;
			}
			i = elem(shm, map, i)->lru_next;
		}
		for (uint32_t i = 1; i <= n; i++)
			if ((mark[i] & 3) == 1)
				order[k++] = i;
		h->lru_head = k ? order[0] : 0;
		h->lru_tail = k ? order[k - 1] : 0;
		for (uint32_t j = 0; j < k; j++) {
			elem(shm, map, order[j])->lru_prev = j ? order[j - 1] : 0;
			elem(shm, map, order[j])->lru_next = j + 1 < k ? order[j + 1] : 0;
		}
	}
	uint32_t free_head = 0;
	for (uint32_t i = n; i >= 1; i--) {
		if (mark[i] & 1)
			continue;
		struct hash_elem *e = elem(shm, map, i);
		e->lru_prev = e->lru_next = 0;
		e->next = free_head;
		free_head = i;
	}
	h->free_head = free_head;
	free(mark);
	free(order);
}

#define HASH_OPS(name, state, inner_at)                                                            \
	const struct map_ops name = {                                                              \
		.state_size = sizeof(state),                                                       \
		.inner_off = inner_at,                                                             \
		.storage_size = hash_storage_size,                                                 \
		.init = hash_init,                                                                 \
		.lookup = hash_lookup,                                                             \
		.update = hash_update,                                                             \
		.delete = hash_delete,                                                             \
		.next_key = hash_next_key,                                                         \
		.repair = hash_repair,                                                             \
	};
HASH_OPS(hash_map_ops, struct hash_map, 0)
HASH_OPS(hash_of_maps_ops, struct hash_of_maps, __builtin_offsetof(struct hash_of_maps, inner))
