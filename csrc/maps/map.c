/* Creating maps and the syscall-style operations on them (values copied in and out). */
#define _GNU_SOURCE
#include "map.h"

#include <errno.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void map_lock(struct bpftime_shm *shm, struct shm_map *map)
{
	if (pthread_mutex_lock(&map->lock) != EOWNERDEAD)
		return;
	const struct map_ops *ops = map_ops_for(map->type);
	if (ops && ops->repair)
		ops->repair(shm, map);
	pthread_mutex_consistent(&map->lock);
}

void map_copy_value(const struct shm_map *map, void *dst, const void *src, bool locked, bool out)
{
	if (!map->spin_lock_off) {
		memcpy(dst, src, map->value_size);
		return;
	}
	uint32_t lo = map->spin_lock_off - 1, hi = lo + 4;
	uint32_t *lock = (uint32_t *)((uint8_t *)(out ? (void *)src : dst) + lo);
	if (locked)
		value_spin_lock(lock);
	memcpy(dst, src, lo);
	memcpy((uint8_t *)dst + hi, (const uint8_t *)src + hi, map->value_size - hi);
	if (locked)
		value_spin_unlock(lock);
}

struct shm_map *inner_map(struct bpftime_shm *shm, const void *id_value)
{
	uint32_t id;
	memcpy(&id, id_value, 4);
	struct shm_object *o = shm_object_find(shm, id);
	if (!o || o->kind != SHM_MAP)
		return NULL;
	struct shm_map *m = shm_ptr(shm, o->offset);
	return m->magic == MAP_MAGIC ? m : NULL;
}

/* general-regs-only: called from JIT code that runs without the vector registers saved. */
__attribute__((target("general-regs-only"))) const struct shm_map *
shm_map_holding(const struct bpftime_shm *shm, uint64_t addr, uint64_t size)
{
	uint64_t base = (uintptr_t)shm->base;
	if (addr - base >= shm->size)
		return NULL;
	for (int i = 0; i < SHM_MAX_OBJECTS; i++) {
		const struct shm_object *o = &shm->hdr->objects[i];
		if (__atomic_load_n(&o->id, __ATOMIC_ACQUIRE) == 0 || o->kind != SHM_MAP)
			continue;
		const struct shm_map *m = shm_ptr(shm, o->offset);
		uint64_t rel = addr - (base + m->slots);
		if (m->magic != MAP_MAGIC || !(rel < m->values_bytes && size <= m->values_bytes - rel))
			continue;
		uint64_t stride, esize;
		map_value_elements(m, &stride, &esize);
		uint64_t off = rel % stride;
		return size <= esize && off <= esize - size ? m : NULL;
	}
	return NULL;
}

__attribute__((target("general-regs-only"))) bool
map_in_map_holds(const struct bpftime_shm *shm, const struct shm_map *outer, uint32_t id)
{
	if (!is_map_in_map(outer->type) || !id)
		return false;
	const uint8_t *v = shm_ptr(shm, outer->slots);
	uint64_t n = (uint64_t)outer->max_entries * outer->ncpus;
	for (uint64_t i = 0; i < n; i++) {
		uint32_t x;
		__builtin_memcpy(&x, v + i * outer->value_stride, 4);
		if (x == id)
			return true;
	}
	return false;
}

/* Possible CPUs, as libbpf counts them (/sys/devices/system/cpu/possible). */
uint32_t possible_cpus(void)
{
	static uint32_t cached;
	uint32_t n = __atomic_load_n(&cached, __ATOMIC_RELAXED);
	if (n)
		return n;
	n = 1;
	FILE *f = fopen("/sys/devices/system/cpu/possible", "r");
	if (f) {
		char buf[256];
		if (fgets(buf, sizeof(buf), f)) {
			uint32_t max = 0;
			for (char *p = buf; *p;) {
				char *end;
				unsigned long a = strtoul(p, &end, 10), b = a;
				if (end == p)
					break;
				if (*end == '-')
					b = strtoul(end + 1, &end, 10);
				if (b + 1 > max)
					max = (uint32_t)b + 1;
				p = *end == ',' ? end + 1 : end + (*end != 0);
				(void)a;
			}
			if (max)
				n = max;
		}
		fclose(f);
	}
	__atomic_store_n(&cached, n, __ATOMIC_RELAXED);
	return n;
}

int current_cpu(void)
{
	int c = sched_getcpu();
	uint32_t n = possible_cpus();
	return c < 0 ? 0 : (uint32_t)c < n ? c : c % (int)n;
}

struct shm_map *map_by_id(struct bpftime_shm *shm, uint32_t id)
{
	struct shm_object *o = shm_object_find(shm, id);
	if (!o || o->kind != SHM_MAP) {
		set_error("no map with id %u", id);
		return NULL;
	}
	struct shm_map *m = shm_ptr(shm, o->offset);
	if (m->magic != MAP_MAGIC) {
		set_error("map %u: header is corrupt", id);
		return NULL;
	}
	return m;
}

static int refuse(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int refuse(int err, const char *fmt, ...)
{
	char buf[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	set_error("%s", buf);
	return err;
}

/* The kernel's checks of BPF_MAP_CREATE attributes, per type. */
static int check_create(const char *n, uint32_t type, uint32_t key_size, uint32_t value_size,
			uint32_t max_entries, uint32_t map_flags, uint64_t map_extra)
{
	const struct map_type *t = map_type(type);
	if (!t->ops)
		return refuse(-EINVAL, "map '%s': map type %u is not supported", n, type);
	if (type == MAP_RINGBUF) {
		if (key_size || value_size || (map_flags & ~F_NUMA_NODE) || max_entries < 4096 ||
		    (max_entries & (max_entries - 1)))
			return refuse(-EINVAL, "map '%s': a ring buffer has no key or value and a size "
					       "(max_entries %u) that is a power of 2 and at least 4096",
				      n, max_entries);
		return 0;
	}
	if (!value_size || !max_entries || (!key_size && !t->keyless))
		return refuse(-EINVAL, "map '%s': key size %u, value size %u and max_entries %u must be non-zero",
			      n, key_size, value_size, max_entries);
	if (t->keyless && key_size)
		return refuse(-EINVAL, "map '%s': queue, stack and bloom filter maps have no key (key size %u)",
			      n, key_size);
	if (t->key_size && key_size != t->key_size)
		return refuse(-EINVAL, "map '%s': %s keys are %u bytes, not %u", n, t->name, t->key_size, key_size);
	/* (maps of maps say why their values are 4 bytes when they find their template) */
	if (t->value_size && !t->map_in_map && value_size != t->value_size)
		return refuse(-EINVAL, "map '%s': %s values are %u bytes, not %u", n, t->name, t->value_size,
			      value_size);
	if (type == MAP_STACK_TRACE && (value_size % 8 || value_size > 127 * 8))
		return refuse(-EINVAL, "map '%s': stack trace maps have values of up to 127 u64 ips", n);
	if (key_size > 512 || value_size > (1u << 20))
		return refuse(-E2BIG, "map '%s': key size %u or value size %u too large", n, key_size, value_size);
	if (type == MAP_LPM_TRIE) {
		if (key_size < 5 || key_size > 4 + 256 || !(map_flags & F_NO_PREALLOC) || map_flags & ~F_NO_PREALLOC)
			return refuse(-EINVAL, "map '%s': LPM trie needs BPF_F_NO_PREALLOC and a key of 5 to 260 bytes",
				      n);
		return 0;
	}
	if (type == MAP_BLOOM_FILTER) {
		if (map_extra & ~0xfull)
			return refuse(-EINVAL, "map '%s': bloom filter map_extra 0x%llx (hash count in bits 0-3)",
				      n, (unsigned long long)map_extra);
	} else if (map_extra) {
		return refuse(-EINVAL, "map '%s': map_extra is only for bloom filters", n);
	}
	if (t->lru && (map_flags & F_NO_PREALLOC))
		return refuse(-KERNEL_ENOTSUPP, "map '%s': LRU maps are always preallocated", n);
	uint32_t allowed = F_NUMA_NODE | F_ACCESS_MASK | t->create_flags;
	if (map_flags & ~allowed) /* BPF_F_NO_PREALLOC is accepted where given; we always preallocate */
		return refuse(-EINVAL, "map '%s': unsupported map flags 0x%x", n, map_flags);
	return 0;
}

int bpftime_map_create(struct bpftime_shm *shm, uint32_t type, const char *name, uint32_t key_size,
		       uint32_t value_size, uint32_t max_entries, uint32_t map_flags, uint64_t map_extra,
		       uint32_t inner_map_id)
{
	const char *n = name ? name : "";
	int bad = check_create(n, type, key_size, value_size, max_entries, map_flags, map_extra);
	if (bad)
		return bad;
	struct shm_map *inner = NULL;
	if (is_map_in_map(type)) {
		inner = inner_map(shm, &inner_map_id);
		if (value_size != 4 || !inner || is_map_in_map(inner->type))
			return refuse(-EINVAL, "map '%s': a map of maps needs 4-byte values and an inner map "
					       "template (id %u is not a usable map)",
				      n, inner_map_id);
	} else if (inner_map_id) {
		return refuse(-EINVAL, "map '%s': only maps of maps take an inner map", n);
	}
	const struct map_ops *ops = map_ops_for(type);
	struct shm_map proto = {
		.type = type,
		.key_size = key_size,
		.value_size = value_size,
		.max_entries = max_entries,
		.map_flags = map_flags,
		.key_stride = (key_size + 7) & ~7u,
		.value_stride = (value_size + 7) & ~7u,
		.ncpus = map_type(type)->percpu ? possible_cpus() : 1,
		.map_extra = map_extra,
	};
	uint64_t storage = ops->storage_size(&proto);
	uint64_t header = ((uint64_t)ops->state_size + 63) & ~63ull;
	shm_lock(&shm->hdr->lock);
	uint64_t off = shm_alloc_locked(shm, header + storage);
	if (!off) {
		shm_unlock(&shm->hdr->lock);
		return refuse(-ENOMEM, "map '%s': segment '%s' has no room for %llu bytes", n,
			      shm->name, (unsigned long long)(header + storage));
	}
	struct shm_map *m = shm_ptr(shm, off); /* the type's struct, zeroed */
	*m = proto;
	m->self = off;
	snprintf(m->name, sizeof(m->name), "%s", n);
	shm_mutex_init(&m->lock);
	ops->init(shm, m, off + header); /* also says which values programs may touch */
	struct map_inner *tmpl = map_inner_of(m);
	if (tmpl) {
		*tmpl = (struct map_inner){inner->type, inner->key_size, inner->value_size, inner->max_entries,
					   inner->id};
		m->values_bytes = 0; /* inner map ids are not for programs to touch */
	}
	m->magic = MAP_MAGIC;
	struct shm_object *o = shm_object_add_locked(shm, SHM_MAP, n, off, header + storage);
	if (!o) {
		m->magic = 0;
		shm_free_locked(shm, off);
		shm_unlock(&shm->hdr->lock);
		return -ENOSPC;
	}
	m->id = o->id;
	shm_unlock(&shm->hdr->lock);
	return (int)o->id;
}

/* A deleted map's pointer, still held by a program, no longer passes as a map. */
static void map_teardown(struct bpftime_shm *shm, void *data)
{
	struct shm_map *m = data;
	m->magic = 0;
	const struct map_ops *ops = map_ops_for(m->type);
	if (ops && ops->release)
		ops->release(shm, m);
}

__attribute__((constructor)) static void register_map_teardown(void)
{
	shm_set_teardown(SHM_MAP, map_teardown);
}

int bpftime_map_info(struct bpftime_shm *shm, uint32_t id, struct bpftime_map_info *out)
{
	struct shm_map *m = map_by_id(shm, id);
	if (!m)
		return -ENOENT;
	memset(out, 0, sizeof(*out));
	out->id = m->id;
	out->type = m->type;
	out->key_size = m->key_size;
	out->value_size = m->value_size;
	out->max_entries = m->max_entries;
	out->map_flags = m->map_flags;
	out->ncpus = m->ncpus;
	out->value_stride = m->value_stride;
	const struct map_inner *tmpl = map_inner_of(m);
	out->inner_map_id = tmpl ? tmpl->map_id : 0;
	memcpy(out->name, m->name, sizeof(out->name));
	return 0;
}

static const char *errno_name(int e)
{
	switch (e) {
	case ENOENT: return "ENOENT: no such key (or the map is empty)";
	case ENOSPC: return "ENOSPC: map is full";
	case KERNEL_ENOTSUPP: return "ENOTSUPP: not supported for this map type";
	case EOPNOTSUPP: return "EOPNOTSUPP: not supported for this map type";
	case EEXIST: return "EEXIST: key exists (BPF_NOEXIST)";
	case E2BIG: return "E2BIG: map is full or index out of range";
	case EINVAL: return "EINVAL: invalid flags or operation for this map type";
	default: return "error";
	}
}

/* Names the map and the operation in the error message. */
static int map_result(const struct shm_map *m, const char *op, int rc)
{
	if (rc < 0)
		set_error("map '%s' (id %u): %s: %s", m->name, m->id, op, errno_name(-rc));
	return rc;
}

/* BPF_MAP_LOOKUP_ELEM with flags: BPF_F_LOCK copies the value under its spin lock. */
int bpftime_map_lookup_flags(struct bpftime_shm *shm, uint32_t id, const void *key, void *value,
			     uint64_t flags)
{
	struct shm_map *m = map_by_id(shm, id);
	if (!m)
		return -ENOENT;
	if (flags & ~(uint64_t)F_LOCK || ((flags & F_LOCK) && !m->spin_lock_off))
		return map_result(m, "lookup", -EINVAL);
	if (!flags)
		return bpftime_map_lookup(shm, id, key, value);
	const uint8_t *v = map_ops_of(m)->lookup(shm, m, key);
	if (!v)
		return map_result(m, "lookup", -ENOENT);
	map_copy_value(m, value, v, true, true);
	memset((uint8_t *)value + m->spin_lock_off - 1, 0, 4);
	return 0;
}

/* Syscall-style lookup: per-CPU maps copy every CPU's value (value_stride apart). */
int bpftime_map_lookup(struct bpftime_shm *shm, uint32_t id, const void *key, void *value)
{
	struct shm_map *m = map_by_id(shm, id);
	if (!m)
		return -ENOENT;
	const struct map_ops *ops = map_ops_of(m);
	if (m->type == MAP_RINGBUF)
		return map_result(m, "lookup", -KERNEL_ENOTSUPP);
	if (ops->peek) /* queue, stack, bloom filter: peek (bloom: the value is the query) */
		return map_result(m, "lookup", ops->peek(shm, m, value));
	const uint8_t *v = ops->lookup(shm, m, key);
	if (!v || (is_map_in_map(m->type) && !*(const uint32_t *)v)) /* an empty slot */
		return map_result(m, "lookup", -ENOENT);
	if (m->ncpus == 1)
		memcpy(value, v, m->value_size);
	else
		memcpy(value, v, (uint64_t)m->value_stride * m->ncpus);
	return 0;
}

int bpftime_map_update(struct bpftime_shm *shm, uint32_t id, const void *key, const void *value,
		       uint64_t flags)
{
	struct shm_map *m = map_by_id(shm, id);
	if (!m)
		return -ENOENT;
	const struct map_type *t = map_type(m->type);
	/* An array of maps shares the array's code, but takes BPF_ANY only, like every fd array. */
	if (t->map_in_map && t->index_keyed && flags != F_ANY)
		return map_result(m, "update", -EINVAL);
	const struct map_inner *tmpl = map_inner_of(m);
	if (tmpl) {
		const struct shm_map *in = inner_map(shm, value);
		if (!in)
			return map_result(m, "update", -EBADF);
		if (in->type != tmpl->type || in->key_size != tmpl->key_size ||
		    in->value_size != tmpl->value_size || in->max_entries != tmpl->max_entries)
			return refuse(-EINVAL, "map '%s' (id %u): update: inner map %u does not match the "
					       "template (type, key, value, max_entries)",
				      m->name, m->id, in->id);
	}
	return map_result(m, "update",
			  map_ops_of(m)->update(shm, m, key, value, flags, m->ncpus == 1 ? 0 : -1));
}

/* BPF_MAP_LOOKUP_AND_DELETE_ELEM: pop for queues and stacks; lookup then delete for hashes. */
int bpftime_map_lookup_and_delete(struct bpftime_shm *shm, uint32_t id, const void *key, void *value)
{
	struct shm_map *m = map_by_id(shm, id);
	if (!m)
		return -ENOENT;
	const struct map_type *t = map_type(m->type);
	const struct map_ops *ops = map_ops_of(m);
	if (ops->values) /* queues and stacks */
		return map_result(m, "lookup_and_delete", ops->pop(shm, m, value));
	if (!t->hashed || t->map_in_map)
		return map_result(m, "lookup_and_delete", -KERNEL_ENOTSUPP);
	int rc = bpftime_map_lookup(shm, id, key, value);
	if (rc == 0)
		rc = ops->delete(shm, m, key);
	return map_result(m, "lookup_and_delete", rc);
}

int bpftime_map_delete(struct bpftime_shm *shm, uint32_t id, const void *key)
{
	struct shm_map *m = map_by_id(shm, id);
	if (!m)
		return -ENOENT;
	const struct map_type *t = map_type(m->type);
	if (t->map_in_map && t->index_keyed) { /* an array of maps: empty the slot, like the kernel's fd arrays */
		uint32_t *slot = map_ops_for(m->type)->lookup(shm, m, key);
		if (!slot)
			return map_result(m, "delete", -E2BIG);
		return map_result(m, "delete", __atomic_exchange_n(slot, 0, __ATOMIC_ACQ_REL) ? 0 : -ENOENT);
	}
	return map_result(m, "delete", map_ops_of(m)->delete(shm, m, key));
}

int bpftime_map_get_next_key(struct bpftime_shm *shm, uint32_t id, const void *key, void *next)
{
	struct shm_map *m = map_by_id(shm, id);
	if (!m)
		return -ENOENT;
	return map_result(m, "get_next_key", map_ops_of(m)->next_key(shm, m, key, next));
}

int bpftime_map_set_spin_lock(struct bpftime_shm *shm, uint32_t id, uint32_t offset)
{
	struct shm_map *m = map_by_id(shm, id);
	if (!m)
		return -ENOENT;
	if (!map_type(m->type)->spin_lock || offset % 4 || offset + 4 > m->value_size)
		return refuse(-EINVAL, "map '%s' (id %u): a spin lock at offset %u does not fit its values "
				       "(hash and array maps only)",
			      m->name, m->id, offset);
	m->spin_lock_off = offset + 1;
	return 0;
}

/* Queue and stack contents, oldest first, without taking them: returns how many values. */
int bpftime_map_values(struct bpftime_shm *shm, uint32_t id, void *out, uint32_t max)
{
	struct shm_map *m = map_by_id(shm, id);
	if (!m)
		return -ENOENT;
	const struct map_ops *ops = map_ops_for(m->type);
	if (!ops->values)
		return map_result(m, "values", -EINVAL);
	return ops->values(shm, m, out, max);
}
