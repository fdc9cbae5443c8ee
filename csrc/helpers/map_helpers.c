/* bpf_map_lookup_elem / update_elem / delete_elem, with every pointer checked. */
#include "helpers.h"

#include <errno.h>

struct bpftime_shm *run_segment(void)
{
	const struct jit_ctx *r = current_run;
	return r ? r->vm->shm : NULL;
}

struct shm_map *helper_map(uint64_t ptr, struct bpftime_shm **out)
{
	struct bpftime_shm *shm = run_segment();
	if (!shm)
		return NULL;
	uint64_t base = (uintptr_t)shm->base;
	if (ptr < base || ptr - base > shm->size - sizeof(struct shm_map))
		return NULL;
	struct shm_map *m = (struct shm_map *)(uintptr_t)ptr;
	if (m->magic != MAP_MAGIC || m->self != ptr - base)
		return NULL;
	*out = shm;
	return m;
}

static uint64_t map_lookup_elem(uint64_t map, uint64_t key, uint64_t a3, uint64_t a4, uint64_t a5)
{
	(void)a3, (void)a4, (void)a5;
	struct bpftime_shm *shm;
	struct shm_map *m = helper_map(map, &shm);
	if (!m || !run_access_ok(key, m->key_size))
		return 0;
	uint8_t *v = map_ops_for(m->type)->lookup(shm, m, (const void *)(uintptr_t)key);
	if (v && is_map_in_map(m->type)) /* the inner map itself, for further map helpers */
		return (uint64_t)(uintptr_t)inner_map(shm, v);
	if (v && m->ncpus > 1)
		v += (uint64_t)current_cpu() * m->value_stride;
	return (uint64_t)(uintptr_t)v;
}

static uint64_t map_update_elem(uint64_t map, uint64_t key, uint64_t value, uint64_t flags,
				uint64_t a5)
{
	(void)a5;
	struct bpftime_shm *shm;
	struct shm_map *m = helper_map(map, &shm);
	if (!m || is_map_in_map(m->type) || !run_access_ok(key, m->key_size) ||
	    !run_access_ok(value, m->value_size))
		return (uint64_t)-EINVAL;
	int cpu = m->ncpus > 1 ? current_cpu() : 0;
	return (uint64_t)(int64_t)map_ops_for(m->type)->update(
	    shm, m, (const void *)(uintptr_t)key, (const void *)(uintptr_t)value, flags, cpu);
}

static uint64_t map_delete_elem(uint64_t map, uint64_t key, uint64_t a3, uint64_t a4, uint64_t a5)
{
	(void)a3, (void)a4, (void)a5;
	struct bpftime_shm *shm;
	struct shm_map *m = helper_map(map, &shm);
	if (!m || !run_access_ok(key, m->key_size))
		return (uint64_t)-EINVAL;
	return (uint64_t)(int64_t)map_ops_for(m->type)->delete(shm, m, (const void *)(uintptr_t)key);
}

/* bpf_map_push_elem / pop_elem / peek_elem for queues, stacks and bloom filters. */
static uint64_t map_push_elem(uint64_t map, uint64_t value, uint64_t flags, uint64_t a4, uint64_t a5)
{
	(void)a4, (void)a5;
	struct bpftime_shm *shm;
	struct shm_map *m = helper_map(map, &shm);
	const struct map_ops *ops = m ? map_ops_for(m->type) : NULL;
	if (!ops || !ops->push || !run_access_ok(value, m->value_size))
		return (uint64_t)-EINVAL;
	return (uint64_t)(int64_t)ops->push(shm, m, (const void *)(uintptr_t)value, flags);
}

static uint64_t take(uint64_t map, uint64_t value, bool pop)
{
	struct bpftime_shm *shm;
	struct shm_map *m = helper_map(map, &shm);
	const struct map_ops *ops = m ? map_ops_for(m->type) : NULL;
	if (!ops || !ops->pop || !run_access_ok(value, m->value_size))
		return (uint64_t)-EINVAL;
	int rc = pop ? ops->pop(shm, m, (void *)(uintptr_t)value)
		     : ops->peek(shm, m, (void *)(uintptr_t)value);
	return (uint64_t)(int64_t)rc;
}

static uint64_t map_pop_elem(uint64_t map, uint64_t value, uint64_t a3, uint64_t a4, uint64_t a5)
{
	(void)a3, (void)a4, (void)a5;
	return take(map, value, true);
}

static uint64_t map_peek_elem(uint64_t map, uint64_t value, uint64_t a3, uint64_t a4, uint64_t a5)
{
	(void)a3, (void)a4, (void)a5;
	return take(map, value, false);
}

const struct helper_def map_helpers[] = {
	{87, "bpf_map_push_elem", map_push_elem},
	{88, "bpf_map_pop_elem", map_pop_elem},
	{89, "bpf_map_peek_elem", map_peek_elem},
	{1, "bpf_map_lookup_elem", map_lookup_elem},
	{2, "bpf_map_update_elem", map_update_elem},
	{3, "bpf_map_delete_elem", map_delete_elem},
	{0, NULL, NULL},
};

/*
 * bpf_spin_lock / bpf_spin_unlock on a struct bpf_spin_lock (4 bytes) inside a
 * map value. A test-and-set lock, shared across processes like the value.
 */
static uint64_t spin_lock(uint64_t lock, uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5)
{
	(void)a2, (void)a3, (void)a4, (void)a5;
	if ((lock & 3) || !run_access_ok(lock, 4))
		return (uint64_t)-EINVAL;
	uint32_t *l = (uint32_t *)(uintptr_t)lock;
	while (__atomic_exchange_n(l, 1, __ATOMIC_ACQUIRE))
		while (__atomic_load_n(l, __ATOMIC_RELAXED))
			__builtin_ia32_pause();
	return 0;
}

static uint64_t spin_unlock(uint64_t lock, uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5)
{
	(void)a2, (void)a3, (void)a4, (void)a5;
	if ((lock & 3) || !run_access_ok(lock, 4))
		return (uint64_t)-EINVAL;
	__atomic_store_n((uint32_t *)(uintptr_t)lock, 0, __ATOMIC_RELEASE);
	return 0;
}

const struct helper_def lock_helpers[] = {
	{93, "bpf_spin_lock", spin_lock},
	{94, "bpf_spin_unlock", spin_unlock},
	{0, NULL, NULL},
};
