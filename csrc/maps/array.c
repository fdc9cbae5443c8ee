/* BPF_MAP_TYPE_ARRAY and BPF_MAP_TYPE_PERCPU_ARRAY (kernel/bpf/arraymap.c semantics). */
#include "map.h"

#include <errno.h>
#include <string.h>

/* An array's state is the header alone (values at map.slots); an array of maps adds its template. */
struct array_of_maps {
	struct shm_map map;
	struct map_inner inner;
};

static uint64_t array_bytes(const struct shm_map *map)
{
	return (uint64_t)map->max_entries * map->value_stride * map->ncpus;
}

/* Values user space can mmap start on a page and own whole pages, so a mapping shows nothing else. */
uint64_t array_mmap_bytes(const struct shm_map *map)
{
	return (array_bytes(map) + MAP_PAGE - 1) & ~(uint64_t)(MAP_PAGE - 1);
}

static uint64_t array_storage_size(const struct shm_map *map)
{
	return map->map_flags & F_MMAPABLE ? array_mmap_bytes(map) + MAP_PAGE : array_bytes(map);
}

static void array_init(struct bpftime_shm *shm, struct shm_map *map, uint64_t at)
{
	(void)shm;
	map->slots = map->map_flags & F_MMAPABLE ? (at + MAP_PAGE - 1) & ~(uint64_t)(MAP_PAGE - 1) : at;
	map->values_bytes = array_bytes(map);
}

static void *array_lookup(struct bpftime_shm *shm, struct shm_map *map, const void *key)
{
	uint32_t index;
	memcpy(&index, key, sizeof(index));
	if (index >= map->max_entries)
		return NULL;
	return (uint8_t *)map_at(shm, map->slots) +
	       (uint64_t)index * map->value_stride * map->ncpus;
}

/* A plain array's lookup (array_lookup) as compiled code may do it inline; hash maps: hash.c. */
bool map_lookup_layout(struct bpftime_shm *shm, struct shm_map *map, struct map_lookup_layout *out)
{
	if (map->kernel_id) /* a map fronting a kernel map: its lookups go through kernel_map_ops */
		return false;
	if (map->type == MAP_HASH)
		return hash_lookup_layout(shm, map, out);
	if (map->type != MAP_ARRAY || map->ncpus != 1)
		return false;
	*out = (struct map_lookup_layout){
		.kind = MAP_ARRAY,
		.key_size = 4,
		.max_entries = map->max_entries,
		.values = map_at(shm, map->slots),
		.value_stride = map->value_stride,
	};
	return true;
}

static int array_update(struct bpftime_shm *shm, struct shm_map *map, const void *key,
			const void *value, uint64_t flags, int cpu)
{
	if (!map_flags_ok(map, flags))
		return -EINVAL;
	uint8_t *slot = array_lookup(shm, map, key);
	if (!slot)
		return -E2BIG;
	if ((flags & ~(uint64_t)F_LOCK) == F_NOEXIST) /* every element of an array exists */
		return -EEXIST;
	if (cpu >= 0) {
		map_copy_value(map, slot + (uint64_t)cpu * map->value_stride, value, flags & F_LOCK, false);
	} else {
		for (uint32_t c = 0; c < map->ncpus; c++)
			memcpy(slot + (uint64_t)c * map->value_stride,
			       (const uint8_t *)value + (uint64_t)c * map->value_stride, map->value_size);
	}
	return 0;
}

static int array_delete(struct bpftime_shm *shm, struct shm_map *map, const void *key)
{
	(void)shm, (void)map, (void)key;
	return -EINVAL;
}

/* get_next_key of every index-keyed map: the next index, from 0 for a missing or bad key. */
int index_next_key(struct bpftime_shm *shm, struct shm_map *map, const void *key, void *next)
{
	(void)shm;
	uint32_t index = 0, out;
	if (key)
		memcpy(&index, key, sizeof(index));
	if (!key || index >= map->max_entries)
		out = 0;
	else if (index + 1 == map->max_entries)
		return -ENOENT;
	else
		out = index + 1;
	memcpy(next, &out, sizeof(out));
	return 0;
}

#define ARRAY_OPS(name, state, inner_at)                                                           \
	const struct map_ops name = {                                                              \
		.state_size = sizeof(state),                                                       \
		.inner_off = inner_at,                                                             \
		.storage_size = array_storage_size,                                                \
		.init = array_init,                                                                \
		.lookup = array_lookup,                                                            \
		.update = array_update,                                                            \
		.delete = array_delete,                                                            \
		.next_key = index_next_key,                                                        \
	};
ARRAY_OPS(array_map_ops, struct shm_map, 0)
ARRAY_OPS(array_of_maps_ops, struct array_of_maps, __builtin_offsetof(struct array_of_maps, inner))
