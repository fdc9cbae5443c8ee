/*
 * BPF_MAP_TYPE_LPM_TRIE (kernel/bpf/lpm_trie.c semantics): keys are
 * { u32 prefixlen; u8 data[] }, lookups return the longest stored prefix
 * matching the key's first prefixlen bits. Stored as a flat table scanned
 * linearly (max_entries is small for LPM maps in practice); iteration order
 * is the table's, not the kernel trie's.
 */
#include "map.h"

#include <errno.h>
#include <string.h>

struct lpm_entry {
	uint32_t used;
	uint32_t prefixlen;
	uint8_t data[]; /* key_size - 4 bytes (bits past prefixlen zeroed), then the value */
};

/* An LPM trie: its entries (prefixes), then the values at map.slots. */
struct lpm_map {
	struct shm_map map;
	uint64_t elems;
	uint32_t elem_size;
	uint32_t count; /* entries in use */
};

static inline struct lpm_map *lpm(struct shm_map *m)
{
	return (struct lpm_map *)m;
}

static uint32_t data_size(const struct shm_map *m)
{
	return m->key_size - 4;
}

static struct lpm_entry *entry(struct bpftime_shm *shm, struct shm_map *m, uint32_t i)
{
	return (struct lpm_entry *)((uint8_t *)map_at(shm, lpm(m)->elems) + (uint64_t)i * lpm(m)->elem_size);
}

static uint64_t lpm_storage_size(const struct shm_map *m)
{
	uint64_t esz = (sizeof(struct lpm_entry) + m->key_size + 7) & ~7ull;
	return esz * m->max_entries + (uint64_t)m->value_stride * m->max_entries;
}

static void lpm_init(struct bpftime_shm *shm, struct shm_map *m, uint64_t at)
{
	(void)shm;
	lpm(m)->elem_size = (uint32_t)((sizeof(struct lpm_entry) + m->key_size + 7) & ~7ull);
	lpm(m)->elems = at;
	m->slots = at + (uint64_t)lpm(m)->elem_size * m->max_entries;
	m->values_bytes = (uint64_t)m->max_entries * m->value_stride;
}

/* Whether the first `bits` bits of a and b agree. */
static bool prefix_equal(const uint8_t *a, const uint8_t *b, uint32_t bits)
{
	uint32_t whole = bits / 8, rest = bits % 8;
	if (memcmp(a, b, whole))
		return false;
	if (!rest)
		return true;
	uint8_t mask = (uint8_t)(0xff00u >> rest);
	return (a[whole] & mask) == (b[whole] & mask);
}

static void *lpm_lookup(struct bpftime_shm *shm, struct shm_map *m, const void *key)
{
	uint32_t want;
	memcpy(&want, key, 4);
	const uint8_t *data = (const uint8_t *)key + 4;
	if (want > data_size(m) * 8)
		return NULL;
	int64_t best = -1;
	uint32_t best_len = 0;
	map_lock(shm, m);
	for (uint32_t i = 0; i < m->max_entries; i++) {
		struct lpm_entry *e = entry(shm, m, i);
		if (e->used && e->prefixlen <= want && (best < 0 || e->prefixlen > best_len) &&
		    prefix_equal(e->data, data, e->prefixlen)) {
			best = i;
			best_len = e->prefixlen;
		}
	}
	map_unlock(m);
	return best < 0 ? NULL : (uint8_t *)map_at(shm, m->slots) + (uint64_t)best * m->value_stride;
}

/* The entry holding exactly this prefix, or -1; *free_at gets a free slot (or -1). */
static int64_t find_exact(struct bpftime_shm *shm, struct shm_map *m, uint32_t plen,
			  const uint8_t *data, int64_t *free_at)
{
	*free_at = -1;
	for (uint32_t i = 0; i < m->max_entries; i++) {
		struct lpm_entry *e = entry(shm, m, i);
		if (!e->used) {
			if (*free_at < 0)
				*free_at = i;
		} else if (e->prefixlen == plen && prefix_equal(e->data, data, plen)) {
			return i;
		}
	}
	return -1;
}

static int lpm_update(struct bpftime_shm *shm, struct shm_map *m, const void *key, const void *value,
		      uint64_t flags, int cpu)
{
	(void)cpu;
	uint32_t plen;
	memcpy(&plen, key, 4);
	if (flags > F_EXIST || plen > data_size(m) * 8)
		return -EINVAL;
	const uint8_t *data = (const uint8_t *)key + 4;
	int rc = 0;
	map_lock(shm, m);
	int64_t free_at, at = find_exact(shm, m, plen, data, &free_at);
	if (at >= 0 && flags == F_NOEXIST) {
		rc = -EEXIST;
	} else if (at < 0 && flags == F_EXIST) {
		rc = -ENOENT;
	} else if (at < 0 && free_at < 0) {
		rc = -ENOSPC;
	} else {
		if (at < 0) {
			at = free_at;
			struct lpm_entry *e = entry(shm, m, (uint32_t)at);
			memset(e->data, 0, data_size(m));
			memcpy(e->data, data, (plen + 7) / 8);
			if (plen % 8)
				e->data[plen / 8] &= (uint8_t)(0xff00u >> (plen % 8));
			e->prefixlen = plen;
			lpm(m)->count++;
		}
		memcpy((uint8_t *)map_at(shm, m->slots) + (uint64_t)at * m->value_stride, value,
		       m->value_size);
		__atomic_store_n(&entry(shm, m, (uint32_t)at)->used, 1, __ATOMIC_RELEASE);
	}
	map_unlock(m);
	return rc;
}

static int lpm_delete(struct bpftime_shm *shm, struct shm_map *m, const void *key)
{
	uint32_t plen;
	memcpy(&plen, key, 4);
	if (plen > data_size(m) * 8)
		return -EINVAL;
	map_lock(shm, m);
	int64_t free_at, at = find_exact(shm, m, plen, (const uint8_t *)key + 4, &free_at);
	if (at >= 0) {
		__atomic_store_n(&entry(shm, m, (uint32_t)at)->used, 0, __ATOMIC_RELEASE);
		lpm(m)->count--;
	}
	map_unlock(m);
	return at >= 0 ? 0 : -ENOENT;
}

static void copy_key(struct shm_map *m, const struct lpm_entry *e, void *out)
{
	memcpy(out, &e->prefixlen, 4);
	memcpy((uint8_t *)out + 4, e->data, data_size(m));
}

static int lpm_next_key(struct bpftime_shm *shm, struct shm_map *m, const void *key, void *next)
{
	uint32_t start = 0;
	map_lock(shm, m);
	if (key) {
		uint32_t plen;
		memcpy(&plen, key, 4);
		int64_t free_at, at = plen <= data_size(m) * 8
					  ? find_exact(shm, m, plen, (const uint8_t *)key + 4, &free_at)
					  : -1;
		if (at >= 0)
			start = (uint32_t)at + 1;
	}
	int rc = -ENOENT;
	for (uint32_t i = start; i < m->max_entries; i++) {
		struct lpm_entry *e = entry(shm, m, i);
		if (e->used) {
			copy_key(m, e, next);
			rc = 0;
			break;
		}
	}
	map_unlock(m);
	return rc;
}

/* After a writer died holding the lock: an entry is in once its `used` is set, so count those. */
static void lpm_repair(struct bpftime_shm *shm, struct shm_map *m)
{
	uint32_t count = 0;
	for (uint32_t i = 0; i < m->max_entries; i++)
		count += entry(shm, m, i)->used != 0;
	lpm(m)->count = count;
}

const struct map_ops lpm_map_ops = {
	.repair = lpm_repair,
	.state_size = sizeof(struct lpm_map),
	.storage_size = lpm_storage_size,
	.init = lpm_init,
	.lookup = lpm_lookup,
	.update = lpm_update,
	.delete = lpm_delete,
	.next_key = lpm_next_key,
};
