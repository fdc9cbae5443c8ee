/*
 * BPF_MAP_TYPE_BLOOM_FILTER (kernel/bpf/bloom_filter.c): push sets
 * nr_hashes bits per value; peek answers 0 ("maybe present") or -ENOENT.
 * The bit array holds max_entries * nr_hashes / ln 2 bits, rounded up to a
 * power of two, as in the kernel.
 */
#include "map.h"

#include <errno.h>
#include <string.h>

/* A bloom filter: its bit array is at map.slots. */
struct bloom_map {
	struct shm_map map;
	uint32_t nr_hashes; /* from map_extra's low 4 bits, 5 when they are 0 */
	uint32_t bit_mask;  /* bits - 1 */
};

static inline struct bloom_map *bloom(struct shm_map *map)
{
	return (struct bloom_map *)map;
}

static uint32_t nr_hashes(const struct shm_map *map)
{
	return (map->map_extra & 0xf) ? (uint32_t)(map->map_extra & 0xf) : 5;
}

static uint32_t bloom_bits(const struct shm_map *map)
{
	uint64_t want = (uint64_t)map->max_entries * nr_hashes(map) * 10000 / 6931 + 1;
	uint32_t bits = 32;
	while (bits < want && bits < (1u << 31))
		bits <<= 1;
	return bits;
}

static uint64_t bloom_storage_size(const struct shm_map *map)
{
	return bloom_bits(map) / 8;
}

static void bloom_init(struct bpftime_shm *shm, struct shm_map *map, uint64_t at)
{
	(void)shm;
	map->slots = at;
	bloom(map)->nr_hashes = nr_hashes(map);
	bloom(map)->bit_mask = bloom_bits(map) - 1;
}

static int bloom_push(struct bpftime_shm *shm, struct shm_map *map, const void *value, uint64_t flags)
{
	if (flags != F_ANY)
		return -EINVAL;
	uint8_t *bits = map_at(shm, map->slots);
	for (uint32_t i = 0; i < bloom(map)->nr_hashes; i++) {
		uint32_t b = map_hash_bytes(value, map->value_size, i + 1) & bloom(map)->bit_mask;
		__atomic_fetch_or(&bits[b / 8], (uint8_t)(1u << (b % 8)), __ATOMIC_RELAXED);
	}
	return 0;
}

static int bloom_peek(struct bpftime_shm *shm, struct shm_map *map, void *value)
{
	const uint8_t *bits = map_at(shm, map->slots);
	for (uint32_t i = 0; i < bloom(map)->nr_hashes; i++) {
		uint32_t b = map_hash_bytes(value, map->value_size, i + 1) & bloom(map)->bit_mask;
		if (!(__atomic_load_n(&bits[b / 8], __ATOMIC_RELAXED) & (1u << (b % 8))))
			return -ENOENT;
	}
	return 0;
}

static int bloom_pop(struct bpftime_shm *shm, struct shm_map *map, void *value)
{
	(void)shm, (void)map, (void)value;
	return -EOPNOTSUPP;
}
static void *bloom_lookup(struct bpftime_shm *shm, struct shm_map *map, const void *key)
{
	(void)shm, (void)map, (void)key;
	return NULL;
}
static int bloom_update(struct bpftime_shm *shm, struct shm_map *map, const void *key,
			const void *value, uint64_t flags, int cpu)
{
	(void)key, (void)cpu;
	return bloom_push(shm, map, value, flags);
}
static int bloom_delete(struct bpftime_shm *shm, struct shm_map *map, const void *key)
{
	(void)shm, (void)map, (void)key;
	return -EINVAL; /* what bpf(2) answers for a bloom filter */
}
static int bloom_next_key(struct bpftime_shm *shm, struct shm_map *map, const void *key, void *next)
{
	(void)shm, (void)map, (void)key, (void)next;
	return -EOPNOTSUPP;
}

const struct map_ops bloom_map_ops = {
	.state_size = sizeof(struct bloom_map),
	.storage_size = bloom_storage_size,
	.init = bloom_init,
	.lookup = bloom_lookup,
	.update = bloom_update,
	.delete = bloom_delete,
	.next_key = bloom_next_key,
	.push = bloom_push,
	.pop = bloom_pop,
	.peek = bloom_peek,
};
