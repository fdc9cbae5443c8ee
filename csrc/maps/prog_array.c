/*
 * BPF_MAP_TYPE_PROG_ARRAY: an array of program ids (the kernel stores
 * program fds) for bpf_tail_call. Updates must name a stored program.
 */
#include "map.h"

#include <errno.h>
#include <string.h>

static uint64_t pa_storage_size(const struct shm_map *map)
{
	return (uint64_t)map->max_entries * 4;
}

static void pa_init(struct bpftime_shm *shm, struct shm_map *map, uint64_t at)
{
	(void)shm;
	map->slots = at;
}

uint32_t *prog_array_slot(struct bpftime_shm *shm, struct shm_map *map, uint32_t index)
{
	return index < map->max_entries ? (uint32_t *)map_at(shm, map->slots) + index : NULL;
}

static void *pa_lookup(struct bpftime_shm *shm, struct shm_map *map, const void *key)
{
	uint32_t index;
	memcpy(&index, key, 4);
	uint32_t *slot = prog_array_slot(shm, map, index);
	return slot && __atomic_load_n(slot, __ATOMIC_ACQUIRE) ? slot : NULL;
}

static int pa_update(struct bpftime_shm *shm, struct shm_map *map, const void *key,
		     const void *value, uint64_t flags, int cpu)
{
	(void)cpu;
	uint32_t index, id;
	memcpy(&index, key, 4);
	memcpy(&id, value, 4);
	if (flags != F_ANY) /* like every kernel fd array */
		return -EINVAL;
	uint32_t *slot = prog_array_slot(shm, map, index);
	if (!slot)
		return -E2BIG;
	struct shm_object *o = shm_object_find(shm, id);
	if (!o)
		return -EBADF;
	if (o->kind != SHM_PROG)
		return -EINVAL;
	__atomic_store_n(slot, id, __ATOMIC_RELEASE);
	return 0;
}

static int pa_delete(struct bpftime_shm *shm, struct shm_map *map, const void *key)
{
	uint32_t index;
	memcpy(&index, key, 4);
	uint32_t *slot = prog_array_slot(shm, map, index);
	if (!slot)
		return -E2BIG;
	return __atomic_exchange_n(slot, 0, __ATOMIC_ACQ_REL) ? 0 : -ENOENT;
}

/* A program array's state is the header alone: the program ids are at map.slots. */
const struct map_ops prog_array_map_ops = {
	.state_size = sizeof(struct shm_map),
	.storage_size = pa_storage_size,
	.init = pa_init,
	.lookup = pa_lookup,
	.update = pa_update,
	.delete = pa_delete,
	.next_key = index_next_key,
};
