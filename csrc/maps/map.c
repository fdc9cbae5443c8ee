/* Creating maps and the syscall-style operations on them (values copied in and out). */
#define _GNU_SOURCE
#include "map.h"

#include <errno.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const struct map_ops *map_ops_for(uint32_t type)
{
	switch (type) {
	case MAP_ARRAY:
	case MAP_PERCPU_ARRAY:
		return &array_map_ops;
	case MAP_HASH:
	case MAP_PERCPU_HASH:
		return &hash_map_ops;
	default:
		return NULL;
	}
}

static bool is_percpu(uint32_t type)
{
	return type == MAP_PERCPU_ARRAY || type == MAP_PERCPU_HASH || type == MAP_LRU_PERCPU_HASH;
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

static struct shm_map *map_by_id(struct bpftime_shm *shm, uint32_t id)
{
	struct shm_object *o = shm_object_find(shm, id);
	if (!o || o->kind != SHM_MAP) {
		shm_set_error("no map with id %u", id);
		return NULL;
	}
	struct shm_map *m = shm_ptr(shm, o->offset);
	if (m->magic != MAP_MAGIC) {
		shm_set_error("map %u: header is corrupt", id);
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
	shm_set_error("%s", buf);
	return err;
}

int bpftime_map_create(struct bpftime_shm *shm, uint32_t type, const char *name, uint32_t key_size,
		       uint32_t value_size, uint32_t max_entries, uint32_t map_flags)
{
	const char *n = name ? name : "";
	const struct map_ops *ops = map_ops_for(type);
	if (!ops)
		return refuse(-EINVAL, "map '%s': map type %u is not supported", n, type);
	if (!key_size || !value_size || !max_entries)
		return refuse(-EINVAL, "map '%s': key size %u, value size %u and max_entries %u must be non-zero",
			      n, key_size, value_size, max_entries);
	if ((type == MAP_ARRAY || type == MAP_PERCPU_ARRAY) && key_size != 4)
		return refuse(-EINVAL, "map '%s': array keys are 4 bytes, not %u", n, key_size);
	if (key_size > 512 || value_size > (1u << 20))
		return refuse(-E2BIG, "map '%s': key size %u or value size %u too large", n, key_size, value_size);
	if (map_flags & ~0x1u) /* BPF_F_NO_PREALLOC is accepted; we always preallocate */
		return refuse(-EINVAL, "map '%s': unsupported map flags 0x%x", n, map_flags);
	struct shm_map proto = {
		.type = type,
		.key_size = key_size,
		.value_size = value_size,
		.max_entries = max_entries,
		.map_flags = map_flags,
		.key_stride = (key_size + 7) & ~7u,
		.value_stride = (value_size + 7) & ~7u,
		.ncpus = is_percpu(type) ? possible_cpus() : 1,
	};
	uint64_t storage = ops->storage_size(&proto);
	uint64_t header = (sizeof(struct shm_map) + 63) & ~63ull;
	shm_lock(&shm->hdr->lock);
	uint64_t off = shm_alloc_locked(shm, header + storage);
	if (!off) {
		shm_unlock(&shm->hdr->lock);
		return refuse(-ENOMEM, "map '%s': segment '%s' has no room for %llu bytes", n,
			      shm->name, (unsigned long long)(header + storage));
	}
	struct shm_map *m = shm_ptr(shm, off);
	*m = proto;
	m->self = off;
	snprintf(m->name, sizeof(m->name), "%s", n);
	shm_mutex_init(&m->lock);
	ops->init(shm, m, off + header);
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

int bpftime_object_delete(struct bpftime_shm *shm, uint32_t id)
{
	shm_lock(&shm->hdr->lock);
	struct shm_object *o = shm_object_find(shm, id);
	if (!o) {
		shm_unlock(&shm->hdr->lock);
		return refuse(-ENOENT, "no object with id %u", id);
	}
	if (o->kind == SHM_MAP)
		((struct shm_map *)shm_ptr(shm, o->offset))->magic = 0;
	shm_free_locked(shm, o->offset);
	__atomic_store_n(&o->id, 0, __ATOMIC_RELEASE);
	__atomic_add_fetch(&shm->hdr->generation, 1, __ATOMIC_RELEASE);
	shm_unlock(&shm->hdr->lock);
	return 0;
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
	memcpy(out->name, m->name, sizeof(out->name));
	return 0;
}

static const char *errno_name(int e)
{
	switch (e) {
	case ENOENT: return "ENOENT: no such key";
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
		shm_set_error("map '%s' (id %u): %s: %s", m->name, m->id, op, errno_name(-rc));
	return rc;
}

/* Syscall-style lookup: per-CPU maps copy every CPU's value (value_stride apart). */
int bpftime_map_lookup(struct bpftime_shm *shm, uint32_t id, const void *key, void *value)
{
	struct shm_map *m = map_by_id(shm, id);
	if (!m)
		return -ENOENT;
	const uint8_t *v = map_ops_for(m->type)->lookup(shm, m, key);
	if (!v)
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
	return map_result(m, "update",
			  map_ops_for(m->type)->update(shm, m, key, value, flags, m->ncpus == 1 ? 0 : -1));
}

int bpftime_map_delete(struct bpftime_shm *shm, uint32_t id, const void *key)
{
	struct shm_map *m = map_by_id(shm, id);
	if (!m)
		return -ENOENT;
	return map_result(m, "delete", map_ops_for(m->type)->delete(shm, m, key));
}

int bpftime_map_get_next_key(struct bpftime_shm *shm, uint32_t id, const void *key, void *next)
{
	struct shm_map *m = map_by_id(shm, id);
	if (!m)
		return -ENOENT;
	return map_result(m, "get_next_key", map_ops_for(m->type)->next_key(shm, m, key, next));
}
