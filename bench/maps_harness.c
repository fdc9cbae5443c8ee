/*
 * Timing loops for `make bench-maps`, in C so that no FFI cost is counted:
 * our maps through the C API, kernel maps through bpf(2), and a plain C
 * open-addressing hash table as the floor.
 */
#include <linux/bpf.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "../csrc/include/bpftime.h"
#include "../csrc/base/map_hash.h" /* map_hash_bytes: the plain table hashes keys as our maps do */

#define EXPORT __attribute__((visibility("default")))

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* op: 0 lookup, 1 update. Keys cycle through 0..nkeys-1 (u32), values are u64. */
EXPORT double bench_ours(struct bpftime_shm *shm, uint32_t id, uint32_t op, uint32_t nkeys,
			 uint64_t iters, uint32_t value_bytes)
{
	uint8_t value[4096] = {0};
	if (value_bytes > sizeof(value))
		return -1;
	uint64_t start = now_ns();
	for (uint64_t i = 0; i < iters; i++) {
		uint32_t key = (uint32_t)(i % nkeys);
		int rc = op ? bpftime_map_update(shm, id, &key, value, 0)
			    : bpftime_map_lookup(shm, id, &key, value);
		if (rc < 0)
			return -1;
	}
	return (double)(now_ns() - start) / (double)iters;
}

EXPORT double bench_kernel(int fd, uint32_t op, uint32_t nkeys, uint64_t iters)
{
	uint8_t value[4096] = {0};
	uint64_t start = now_ns();
	for (uint64_t i = 0; i < iters; i++) {
		uint32_t key = (uint32_t)(i % nkeys);
		union bpf_attr attr;
		memset(&attr, 0, sizeof(attr));
		attr.map_fd = (uint32_t)fd;
		attr.key = (uint64_t)(uintptr_t)&key;
		attr.value = (uint64_t)(uintptr_t)value;
		if (syscall(__NR_bpf, op ? BPF_MAP_UPDATE_ELEM : BPF_MAP_LOOKUP_ELEM, &attr,
			    sizeof(attr)) < 0)
			return -1;
	}
	return (double)(now_ns() - start) / (double)iters;
}

/*
 * The floor: a plain C open-addressing table (u32 keys, u64 values, linear probing), with the
 * hash our hash maps use (map_hash_bytes), so the comparison is of everything but the hash.
 */
struct c_table {
	uint32_t cap;
	uint32_t *keys; /* key + 1, 0 = empty */
	uint64_t *values;
};

static uint32_t mix(uint32_t k)
{
	return map_hash_bytes(&k, sizeof(k), 0);
}

static uint64_t *c_find(struct c_table *t, uint32_t key, int insert)
{
	for (uint32_t i = mix(key) & (t->cap - 1);; i = (i + 1) & (t->cap - 1)) {
		if (t->keys[i] == key + 1)
			return &t->values[i];
		if (!t->keys[i]) {
			if (!insert)
				return NULL;
			t->keys[i] = key + 1;
			return &t->values[i];
		}
	}
}

EXPORT double bench_c_hash(uint32_t op, uint32_t nkeys, uint64_t iters)
{
	struct c_table t = {1, NULL, NULL};
	while (t.cap < nkeys * 2)
		t.cap <<= 1;
	t.keys = calloc(t.cap, sizeof(*t.keys));
	t.values = calloc(t.cap, sizeof(*t.values));
	for (uint32_t k = 0; k < nkeys; k++)
		*c_find(&t, k, 1) = k;
	volatile uint64_t sink = 0;
	/* Keys cycle by a mask, as the JITed lookup loop's do (nkeys is a power of two). */
	uint32_t mask = nkeys - 1;
	if (nkeys & mask)
		return -1;
	uint64_t start = now_ns();
	for (uint64_t i = 0; i < iters; i++) {
		uint32_t key = (uint32_t)i & mask;
		uint64_t *v = c_find(&t, key, op);
		if (op)
			*v = i;
		else
			sink += *v;
	}
	double ns = (double)(now_ns() - start) / (double)iters;
	free(t.keys);
	free(t.values);
	(void)sink;
	return ns;
}
