/* bpf_map_lookup_elem / update_elem / delete_elem, with every pointer checked. */
#include "../maps/kernel_map.h"
#include "helpers.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>

struct bpftime_shm *run_segment(void)
{
	const struct jit_ctx *r = current_run;
	return r ? vm_user(r->vm) : NULL;
}

__attribute__((target("general-regs-only"))) bool
vm_may_use_map(const struct bpftime_vm *vm, const struct bpftime_shm *shm, const struct shm_map *m)
{
	for (uint32_t i = 0; i < vm->nregions; i++)
		if (vm->regions[i].map == (uintptr_t)m)
			return true;
	for (uint32_t i = 0; i < vm->nregions; i++) {
		const struct shm_map *outer = (const struct shm_map *)vm->regions[i].map;
		if (outer && is_map_in_map(outer->type) && map_in_map_holds(shm, outer, m->id))
			return true;
	}
	return false;
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
	if (m->magic != MAP_MAGIC || m->self != ptr - base || !vm_may_use_map(current_run->vm, shm, m))
		return NULL;
	*out = shm;
	return m;
}

/*
 * Values of maps fronting kernel maps that runs on this thread looked up: the program may write
 * through the pointer, and what it wrote goes back to the kernel map when the run ends. Kept in
 * a page per thread, mapped on first use and unmapped when the thread ends (static TLS holds
 * only its pointer: a library loaded late has little). Values up to SNAP bytes are compared
 * with what the lookup found, larger ones always written back; lookups beyond MAX_FRONTED in
 * one run, or with keys over SNAP bytes, are not written back (the writes stay in the shadow).
 */
#define MAX_FRONTED 16
#define SNAP 64
struct fronted {
	const struct jit_ctx *run;
	struct shm_map *map;
	uint8_t *value;
	_Alignas(8) uint8_t key[SNAP];
	_Alignas(8) uint8_t seen[SNAP];
};
struct fronted_page {
	uint32_t n;
	struct fronted f[MAX_FRONTED];
};
_Static_assert(sizeof(struct fronted_page) <= 4096, "one page");
static __thread struct fronted_page *fronted;
static pthread_key_t fronted_key;
static pthread_once_t fronted_once = PTHREAD_ONCE_INIT;

static void fronted_free(void *page)
{
	munmap(page, 4096);
}

static void fronted_key_init(void)
{
	pthread_key_create(&fronted_key, fronted_free);
}

static void remember_fronted(struct shm_map *m, const void *key, uint8_t *value)
{
	if (!fronted) {
		void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			return;
		pthread_once(&fronted_once, fronted_key_init);
		pthread_setspecific(fronted_key, p);
		fronted = p;
	}
	if (fronted->n == MAX_FRONTED || m->key_size > SNAP)
		return;
	struct fronted *f = &fronted->f[fronted->n++];
	f->run = current_run;
	f->map = m;
	f->value = value;
	memcpy(f->key, key, m->key_size);
	if (m->value_size <= SNAP)
		memcpy(f->seen, value, m->value_size);
}

void kernel_map_run_end(struct jit_ctx *run)
{
	struct bpftime_shm *shm = vm_user(run->vm);
	struct fronted_page *pg = fronted;
	for (uint32_t i = pg ? pg->n : 0; i-- > 0;) {
		struct fronted *f = &pg->f[i];
		if (f->run != run)
			continue;
		if (shm && f->map->magic == MAP_MAGIC &&
		    (f->map->value_size > SNAP || memcmp(f->seen, f->value, f->map->value_size) != 0))
			kernel_map_write_back(shm, f->map, f->key);
		*f = pg->f[--pg->n];
	}
}

static uint64_t map_lookup_elem(uint64_t map, uint64_t key, uint64_t a3, uint64_t a4, uint64_t a5)
{
	(void)a3, (void)a4, (void)a5;
	struct bpftime_shm *shm;
	struct shm_map *m = helper_map(map, &shm);
	if (!m || !run_access_ok(key, m->key_size))
		return 0;
	const struct map_type *t = map_type(m->type);
	uint8_t *v = map_ops_of(m)->lookup(shm, m, (const void *)(uintptr_t)key);
	if (v && t->map_in_map) /* the inner map itself, for further map helpers */
		return *(const uint32_t *)v ? (uint64_t)(uintptr_t)inner_map(shm, v) : 0;
	if (v && m->ncpus > 1)
		v += (uint64_t)current_cpu() * m->value_stride;
	if (v && m->kernel_id && !kernel_map_values_shared(m))
		remember_fronted(m, (const void *)(uintptr_t)key, v);
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
	return (uint64_t)(int64_t)map_ops_of(m)->update(
	    shm, m, (const void *)(uintptr_t)key, (const void *)(uintptr_t)value, flags, cpu);
}

static uint64_t map_delete_elem(uint64_t map, uint64_t key, uint64_t a3, uint64_t a4, uint64_t a5)
{
	(void)a3, (void)a4, (void)a5;
	struct bpftime_shm *shm;
	struct shm_map *m = helper_map(map, &shm);
	if (!m || !run_access_ok(key, m->key_size))
		return (uint64_t)-EINVAL;
	return (uint64_t)(int64_t)map_ops_of(m)->delete(shm, m, (const void *)(uintptr_t)key);
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
	if (!ops || !ops->pop || !run_write_ok(value, m->value_size))
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

/*
 * bpf_for_each_map_elem(map, callback, ctx, flags): callback(map, &key, &value,
 * ctx) for each element until it returns 1; returns the number visited. The
 * key is a copy the callback may read; the value is the element's own.
 */
static uint64_t for_each_map_elem(uint64_t map, uint64_t callback, uint64_t ctx, uint64_t flags,
				  uint64_t a5)
{
	(void)a5;
	const struct jit_ctx *run = current_run;
	struct bpftime_shm *shm;
	struct shm_map *m = helper_map(map, &shm);
	if (!run || !m || flags || callback == 0 || callback > UINT32_MAX)
		return (uint64_t)-EINVAL;
	if (!map_type(m->type)->iterable)
		return (uint64_t)-EINVAL;
	const struct map_ops *ops = map_ops_of(m);
	_Alignas(8) uint8_t key[512], next[512];
	uint64_t n = 0;
	bool have = ops->next_key(shm, m, NULL, key) == 0;
	while (have) {
		uint8_t *value = ops->lookup(shm, m, key);
		if (value) {
			if (m->ncpus > 1)
				value += (uint64_t)current_cpu() * m->value_stride;
			uint64_t args[5] = {map, (uint64_t)(uintptr_t)key, (uint64_t)(uintptr_t)value, ctx, 0};
			uint64_t r0;
			next_run_extra_lo = (uintptr_t)key;
			next_run_extra_hi = (uintptr_t)key + m->key_size;
			if (vm_run_callback(run->vm, (uint32_t)(callback - 1), args, &r0) < 0)
				return (uint64_t)-EINVAL;
			n++;
			if (r0)
				break;
		}
		have = ops->next_key(shm, m, key, next) == 0;
		memcpy(key, next, m->key_size);
	}
	return n;
}

const struct helper_def map_helpers[] = {
	{164, "bpf_for_each_map_elem", for_each_map_elem},
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
	if ((lock & 3) || !run_write_ok(lock, 4))
		return (uint64_t)-EINVAL;
	value_spin_lock((uint32_t *)(uintptr_t)lock);
	return 0;
}

static uint64_t spin_unlock(uint64_t lock, uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5)
{
	(void)a2, (void)a3, (void)a4, (void)a5;
	if ((lock & 3) || !run_write_ok(lock, 4))
		return (uint64_t)-EINVAL;
	value_spin_unlock((uint32_t *)(uintptr_t)lock);
	return 0;
}

const struct helper_def lock_helpers[] = {
	{93, "bpf_spin_lock", spin_lock},
	{94, "bpf_spin_unlock", spin_unlock},
	{0, NULL, NULL},
};
