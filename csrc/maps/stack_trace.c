/*
 * BPF_MAP_TYPE_STACK_TRACE (kernel/bpf/stackmap.c): buckets of instruction
 * pointer arrays, keyed by a hash of the stack. A stack that hashes to a
 * bucket holding another one gets -EEXIST unless BPF_F_REUSE_STACKID.
 * Programs cannot look into it; bpf(2) lookups return the ips, zero-padded.
 */
#include "stack_trace.h"

#include <errno.h>
#include <string.h>

/* A stack trace map: buckets of ips, which programs cannot see (no values area). */
struct stack_trace_map {
	struct shm_map map;
	uint64_t buckets;
	uint32_t n_buckets;
};

static inline struct stack_trace_map *stmap(struct shm_map *m)
{
	return (struct stack_trace_map *)m;
}

struct stack_bucket {
	uint32_t nr; /* ips in use, 0 for an empty bucket */
	uint32_t hash;
	uint64_t ips[];
};

static uint32_t nbuckets(const struct shm_map *m)
{
	uint32_t n = 1;
	while (n < m->max_entries)
		n <<= 1;
	return n;
}

static uint64_t bucket_size(const struct shm_map *m)
{
	return sizeof(struct stack_bucket) + m->value_size;
}

static struct stack_bucket *bucket_at(struct bpftime_shm *shm, struct shm_map *m, uint32_t id)
{
	return (struct stack_bucket *)((uint8_t *)map_at(shm, stmap(m)->buckets) + (uint64_t)id * bucket_size(m));
}

static uint64_t st_storage_size(const struct shm_map *m)
{
	return (uint64_t)nbuckets(m) * bucket_size(m);
}

static void st_init(struct bpftime_shm *shm, struct shm_map *m, uint64_t at)
{
	(void)shm;
	stmap(m)->buckets = at;
	stmap(m)->n_buckets = nbuckets(m);
}

static void *st_lookup(struct bpftime_shm *shm, struct shm_map *m, const void *key)
{
	uint32_t id;
	memcpy(&id, key, 4);
	if (id >= stmap(m)->n_buckets)
		return NULL;
	struct stack_bucket *b = bucket_at(shm, m, id);
	return __atomic_load_n(&b->nr, __ATOMIC_ACQUIRE) ? b->ips : NULL;
}

static int st_update(struct bpftime_shm *shm, struct shm_map *m, const void *key, const void *value,
		     uint64_t flags, int cpu)
{
	(void)shm, (void)m, (void)key, (void)value, (void)flags, (void)cpu;
	return -EINVAL; /* stacks enter only through bpf_get_stackid */
}

static int st_delete(struct bpftime_shm *shm, struct shm_map *m, const void *key)
{
	uint32_t id;
	memcpy(&id, key, 4);
	if (id >= stmap(m)->n_buckets)
		return -ENOENT;
	struct stack_bucket *b = bucket_at(shm, m, id);
	return __atomic_exchange_n(&b->nr, 0, __ATOMIC_ACQ_REL) ? 0 : -ENOENT;
}

static int st_next_key(struct bpftime_shm *shm, struct shm_map *m, const void *key, void *next)
{
	uint32_t id = 0;
	if (key) {
		memcpy(&id, key, 4);
		id = id < stmap(m)->n_buckets ? id + 1 : 0;
	}
	for (; id < stmap(m)->n_buckets; id++) {
		if (__atomic_load_n(&bucket_at(shm, m, id)->nr, __ATOMIC_ACQUIRE)) {
			memcpy(next, &id, 4);
			return 0;
		}
	}
	return -ENOENT;
}

int64_t stack_trace_store(struct bpftime_shm *shm, struct shm_map *m, const uint64_t *ips,
			  uint32_t nr, uint64_t flags)
{
	uint32_t max = m->value_size / 8;
	if (nr > max)
		nr = max;
	uint64_t h = 0x9e3779b97f4a7c15ull;
	for (uint32_t i = 0; i < nr; i++)
		h = (h ^ ips[i]) * 0x100000001b3ull;
	uint32_t hash = (uint32_t)(h ^ (h >> 32));
	uint32_t id = hash & (stmap(m)->n_buckets - 1);
	struct stack_bucket *b = bucket_at(shm, m, id);
	int64_t rc = id;
	map_lock(shm, m);
	bool same = b->nr == nr && b->hash == hash && !memcmp(b->ips, ips, (size_t)nr * 8);
	if (b->nr && !same && !(flags & STACK_F_REUSE_STACKID)) {
		rc = -EEXIST;
	} else if (!same) {
		memset(b->ips, 0, m->value_size);
		memcpy(b->ips, ips, (size_t)nr * 8);
		b->hash = hash;
		__atomic_store_n(&b->nr, nr, __ATOMIC_RELEASE);
	}
	map_unlock(m);
	return rc;
}

const struct map_ops stack_trace_map_ops = {
	.state_size = sizeof(struct stack_trace_map),
	.storage_size = st_storage_size,
	.init = st_init,
	.lookup = st_lookup,
	.update = st_update,
	.delete = st_delete,
	.next_key = st_next_key,
};
