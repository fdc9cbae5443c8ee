/*
 * BPF_MAP_TYPE_QUEUE and BPF_MAP_TYPE_STACK (kernel/bpf/queue_stack_maps.c):
 * a ring of max_entries + 1 slots. Push with BPF_EXIST on a full map drops
 * the oldest value; pop takes the oldest (queue) or the newest (stack).
 */
#include "map.h"

#include <errno.h>
#include <string.h>

/* The ring's positions: values go in at head, the oldest is at tail (values at map.slots). */
struct queue_stack_map {
	struct shm_map map;
	uint32_t head, tail;
};

static inline struct queue_stack_map *qs(struct shm_map *map)
{
	return (struct queue_stack_map *)map;
}

static uint64_t qs_storage_size(const struct shm_map *map)
{
	return (uint64_t)(map->max_entries + 1) * map->value_stride;
}

static void qs_init(struct bpftime_shm *shm, struct shm_map *map, uint64_t at)
{
	(void)shm;
	map->slots = at;
	qs(map)->head = qs(map)->tail = 0;
	map->values_bytes = (uint64_t)map->max_entries * map->value_stride;
}

static uint8_t *slot(struct bpftime_shm *shm, struct shm_map *map, uint32_t i)
{
	return (uint8_t *)map_at(shm, map->slots) + (uint64_t)i * map->value_stride;
}

static uint32_t ring_size(const struct shm_map *map)
{
	return map->max_entries + 1;
}

static int qs_push(struct bpftime_shm *shm, struct shm_map *map, const void *value, uint64_t flags)
{
	if ((flags & F_NOEXIST) || flags > F_EXIST)
		return -EINVAL;
	int rc = 0;
	map_lock(shm, map);
	uint32_t next = (qs(map)->head + 1) % ring_size(map);
	if (next == qs(map)->tail) { /* full */
		if (!(flags & F_EXIST)) {
			rc = -E2BIG;
			goto out;
		}
		qs(map)->tail = (qs(map)->tail + 1) % ring_size(map);
	}
	memcpy(slot(shm, map, qs(map)->head), value, map->value_size);
	qs(map)->head = next;
out:
	map_unlock(map);
	return rc;
}

static int take(struct bpftime_shm *shm, struct shm_map *map, void *value, bool stack, bool remove)
{
	int rc = 0;
	map_lock(shm, map);
	if (qs(map)->head == qs(map)->tail) {
		rc = -ENOENT;
		goto out;
	}
	uint32_t i = stack ? (qs(map)->head + ring_size(map) - 1) % ring_size(map) : qs(map)->tail;
	memcpy(value, slot(shm, map, i), map->value_size);
	if (remove) {
		if (stack)
			qs(map)->head = i;
		else
			qs(map)->tail = (qs(map)->tail + 1) % ring_size(map);
	}
out:
	map_unlock(map);
	return rc;
}

static int queue_pop(struct bpftime_shm *shm, struct shm_map *map, void *value)
{
	return take(shm, map, value, false, true);
}
static int queue_peek(struct bpftime_shm *shm, struct shm_map *map, void *value)
{
	return take(shm, map, value, false, false);
}
static int stack_pop(struct bpftime_shm *shm, struct shm_map *map, void *value)
{
	return take(shm, map, value, true, true);
}
static int stack_peek(struct bpftime_shm *shm, struct shm_map *map, void *value)
{
	return take(shm, map, value, true, false);
}

/* Keyed operations do not apply to these maps. */
static void *qs_lookup(struct bpftime_shm *shm, struct shm_map *map, const void *key)
{
	(void)shm, (void)map, (void)key;
	return NULL;
}
static int qs_update(struct bpftime_shm *shm, struct shm_map *map, const void *key, const void *value,
		     uint64_t flags, int cpu)
{
	(void)key, (void)cpu;
	return qs_push(shm, map, value, flags);
}
static int qs_delete(struct bpftime_shm *shm, struct shm_map *map, const void *key)
{
	(void)shm, (void)map, (void)key;
	return -EINVAL;
}
static int qs_next_key(struct bpftime_shm *shm, struct shm_map *map, const void *key, void *next)
{
	(void)shm, (void)map, (void)key, (void)next;
	return -EINVAL;
}

static int qs_values(struct bpftime_shm *shm, struct shm_map *map, void *out, uint32_t max)
{
	map_lock(shm, map);
	uint32_t n = 0;
	for (uint32_t i = qs(map)->tail; i != qs(map)->head && n < max; i = (i + 1) % ring_size(map), n++)
		memcpy((uint8_t *)out + (uint64_t)n * map->value_size, slot(shm, map, i), map->value_size);
	map_unlock(map);
	return (int)n;
}

/*
 * After a writer died holding the lock: each position is one store, a value is copied in
 * before head moves over it, so the ring is whole; only positions out of range (never
 * written so) are put back.
 */
static void qs_repair(struct bpftime_shm *shm, struct shm_map *map)
{
	(void)shm;
	if (qs(map)->head >= ring_size(map) || qs(map)->tail >= ring_size(map))
		qs(map)->head = qs(map)->tail = 0;
}

#define QS_OPS(name, pop_fn, peek_fn)                                                              \
	const struct map_ops name = {                                                              \
		.state_size = sizeof(struct queue_stack_map),                                      \
		.storage_size = qs_storage_size,                                                   \
		.init = qs_init,                                                                   \
		.lookup = qs_lookup,                                                               \
		.update = qs_update,                                                               \
		.delete = qs_delete,                                                               \
		.next_key = qs_next_key,                                                           \
		.push = qs_push,                                                                   \
		.pop = pop_fn,                                                                     \
		.peek = peek_fn,                                                                   \
		.values = qs_values,                                                               \
		.repair = qs_repair,                                                               \
	};
QS_OPS(queue_map_ops, queue_pop, queue_peek)
QS_OPS(stack_map_ops, stack_pop, stack_peek)
