/*
 * Maps fronting a kernel map: a segment map of the kernel map's type and sizes whose operations
 * reach the kernel map (through this process's fd for it, kernel_map_fd.c), so a kernel tool
 * reading its map sees what userspace programs write, and userspace sees what the kernel writes.
 *
 * The type's own storage in the segment is the shadow a program's lookup returns a pointer into:
 * each lookup copies the kernel's current value there, and a program's writes through that
 * pointer are written back to the kernel when its run ends (helpers/map_helpers.c,
 * kernel_map_write_back). Such a read-modify-write is not atomic against other writers of the
 * kernel map (the kernel's own programs, other processes); updates and deletes through helpers
 * and the syscall-style API are single kernel operations.
 *
 * Ring buffers and perf event arrays are fronted too: their output helpers reach the kernel map
 * through a small kernel program (kernel_ring.c); the segment map of the same type is only a
 * shadow (a ring's holds reservations until they are submitted).
 */
#define _GNU_SOURCE
#include "kernel_map.h"

#include <errno.h>
#include <linux/bpf.h>
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

static uint32_t all_values_bytes(const struct shm_map *m)
{
	return m->ncpus > 1 ? m->value_stride * m->ncpus : m->value_size;
}

/* A buffer for one key's values (all CPUs'), on the caller's stack: no static TLS, which a
 * library loaded late (dlopen) has little of. At most KERNEL_MAP_MAX_VALUE bytes. */
#define VALUE_BUF(m) _Alignas(8) uint8_t value_buf[(all_values_bytes(m) + 7) & ~7u]

/* The fd, or -1 with the error set. */
static int front_fd(const struct shm_map *m)
{
	int fd = kernel_map_fd(m->kernel_id);
	return fd < 0 ? -1 : fd;
}

/* Maps whose values this process maps from the kernel: a few, read without locks. */
#define SHARED_SLOTS 64
static struct shared_view {
	const struct shm_map *m;
	uint32_t id, kernel_id;
	uint64_t slots, len; /* the segment's range the kernel's values are mapped over */
} shared[SHARED_SLOTS];
static uint32_t nshared;
static pthread_mutex_t share_lock = PTHREAD_MUTEX_INITIALIZER;

bool kernel_map_values_shared(const struct shm_map *m)
{
	uint32_t n = __atomic_load_n(&nshared, __ATOMIC_ACQUIRE);
	for (uint32_t i = 0; i < n; i++)
		if (shared[i].m == m)
			return true;
	return false;
}

void kernel_map_unshare_stale(struct bpftime_shm *shm)
{
	pthread_mutex_lock(&share_lock);
	for (uint32_t i = 0; i < nshared;) {
		struct shared_view *v = &shared[i];
		struct shm_object *o = shm_object_find(shm, v->id);
		if (o && o->kind == SHM_MAP && shm_ptr(shm, o->offset) == v->m && v->m->magic == MAP_MAGIC &&
		    v->m->kernel_id == v->kernel_id) {
			i++;
			continue;
		}
		/* The segment's own pages again, before anything reuses the range. */
		void *at = shm_ptr(shm, v->slots);
		if (mmap(at, v->len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, shm_fd(shm),
			 (off_t)v->slots) != at)
			set_error("kernel map %u: cannot map the segment back over its values", v->kernel_id);
		*v = shared[--nshared];
	}
	pthread_mutex_unlock(&share_lock);
}

bool kernel_map_share_values(struct bpftime_shm *shm, struct shm_map *m)
{
	if (m->type != MAP_ARRAY || !(m->map_flags & F_MMAPABLE) || !m->kernel_id)
		return false;
	if (kernel_map_values_shared(m))
		return true;
	pthread_mutex_lock(&share_lock);
	bool ok = kernel_map_values_shared(m);
	int fd = ok || nshared == SHARED_SLOTS ? -1 : kernel_map_fd(m->kernel_id);
	if (fd >= 0) {
		uint64_t len = array_mmap_bytes(m);
		/* Frozen maps (.rodata) and maps read-only to programs map read-only: the kernel's
		 * verifier has kept the programs from writing them. */
		int prot = PROT_READ | PROT_WRITE;
		void *probe = mmap(NULL, len, prot, MAP_SHARED, fd, 0);
		if (probe == MAP_FAILED && (errno == EPERM || errno == EACCES) && (m->map_flags & 0x80u)) {
			prot = PROT_READ;
			probe = mmap(NULL, len, prot, MAP_SHARED, fd, 0);
		}
		/* Tried elsewhere first: a MAP_FIXED that failed could leave a hole in the segment. */
		if (probe != MAP_FAILED) {
			munmap(probe, len);
			void *at = shm_ptr(shm, m->slots);
			ok = mmap(at, len, prot, MAP_SHARED | MAP_FIXED, fd, 0) == at;
		}
		if (ok) {
			shared[nshared] = (struct shared_view){m, m->id, m->kernel_id, m->slots, len};
			__atomic_store_n(&nshared, nshared + 1, __ATOMIC_RELEASE);
		}
	}
	pthread_mutex_unlock(&share_lock);
	return ok;
}

static void *kmap_lookup(struct bpftime_shm *shm, struct shm_map *m, const void *key)
{
	const struct map_ops *base = map_ops_for(m->type);
	if (kernel_map_values_shared(m))
		return base->lookup(shm, m, key); /* the kernel's own memory */
	VALUE_BUF(m);
	int fd = front_fd(m);
	if (fd < 0 || kernel_map_lookup(fd, key, value_buf) < 0) {
		if (fd >= 0 && !map_type(m->type)->index_keyed)
			base->delete(shm, m, key); /* gone from the kernel: gone from the shadow */
		return NULL;
	}
	uint8_t *slot = base->lookup(shm, m, key);
	if (!slot) {
		if (base->update(shm, m, key, value_buf, F_ANY, -1) < 0)
			return NULL;
		return base->lookup(shm, m, key);
	}
	if (m->ncpus > 1)
		for (uint32_t c = 0; c < m->ncpus; c++)
			memcpy(slot + (uint64_t)c * m->value_stride, value_buf + (uint64_t)c * m->value_stride,
			       m->value_size);
	else
		memcpy(slot, value_buf, m->value_size);
	return slot;
}

static int kmap_update(struct bpftime_shm *shm, struct shm_map *m, const void *key,
		       const void *value, uint64_t flags, int cpu)
{
	int fd = front_fd(m);
	if (fd < 0)
		return -EBADF;
	/* BPF_F_LOCK, by the kernel's name: <unistd.h> defines F_LOCK (lockf) as 1, BPF_NOEXIST. */
	if (flags & BPF_F_LOCK)
		return -EINVAL; /* the lock word would be the shadow's, not the kernel's */
	VALUE_BUF(m);
	const void *all = value;
	if (m->ncpus > 1 && cpu >= 0) {
		/* A program's update of a per-CPU map sets this CPU's value: the kernel takes all. */
		int rc = kernel_map_lookup(fd, key, value_buf);
		if (rc == -ENOENT)
			memset(value_buf, 0, all_values_bytes(m));
		else if (rc < 0)
			return rc;
		memcpy(value_buf + (uint64_t)cpu * m->value_stride, value, m->value_size);
		all = value_buf;
	}
	int rc = kernel_map_update(fd, key, all, flags);
	if (rc == 0 && !kernel_map_values_shared(m)) {
		uint8_t *slot = map_ops_for(m->type)->lookup(shm, m, key);
		if (slot != all)
			map_ops_for(m->type)->update(shm, m, key, all, F_ANY, -1);
	}
	return rc;
}

static int kmap_delete(struct bpftime_shm *shm, struct shm_map *m, const void *key)
{
	int fd = front_fd(m);
	if (fd < 0)
		return -EBADF;
	int rc = kernel_map_delete(fd, key);
	if (rc == 0)
		map_ops_for(m->type)->delete(shm, m, key);
	return rc;
}

static int kmap_next_key(struct bpftime_shm *shm, struct shm_map *m, const void *key, void *next)
{
	(void)shm;
	int fd = front_fd(m);
	return fd < 0 ? -EBADF : kernel_map_next_key(fd, key, next);
}

const struct map_ops kernel_map_ops = {
	.lookup = kmap_lookup,
	.update = kmap_update,
	.delete = kmap_delete,
	.next_key = kmap_next_key,
};

int kernel_map_write_back(struct bpftime_shm *shm, struct shm_map *m, const void *key)
{
	int fd = front_fd(m);
	if (fd < 0)
		return -EBADF;
	const uint8_t *slot = map_ops_for(m->type)->lookup(shm, m, key);
	if (!slot)
		return -ENOENT;
	/* The element as the shadow has it, all CPUs' values. */
	return kernel_map_update(fd, key, slot, map_type(m->type)->index_keyed ? F_ANY : F_EXIST);
}

/* Map types a segment map can front. */
static bool frontable(uint32_t type)
{
	switch (type) {
	case MAP_HASH: case MAP_ARRAY: case MAP_PERCPU_HASH: case MAP_PERCPU_ARRAY:
	case MAP_LRU_HASH: case MAP_LRU_PERCPU_HASH:
	case MAP_RINGBUF: case MAP_PERF_EVENT_ARRAY: /* output through kernel_ring.c */
		return true;
	default:
		return false;
	}
}

int bpftime_kernel_map_create(struct bpftime_shm *shm, uint32_t kernel_map_id)
{
	int fd = kernel_map_fd(kernel_map_id);
	if (fd < 0)
		return fd;
	struct bpf_map_info info;
	memset(&info, 0, sizeof(info));
	union bpf_attr a = {.info = {.bpf_fd = (uint32_t)fd, .info_len = sizeof(info),
				     .info = (uintptr_t)&info}};
	if (syscall(SYS_bpf, BPF_OBJ_GET_INFO_BY_FD, &a, sizeof(a)) < 0) {
		int err = -errno;
		set_error("kernel map %u: BPF_OBJ_GET_INFO_BY_FD: %s", kernel_map_id, strerror(errno));
		return err;
	}
	if (!frontable(info.type)) {
		set_error("kernel map %u ('%s'): map type %u cannot be fronted (hash, array, per-CPU and "
			  "LRU hash and array, ring buffer, perf event array only)", kernel_map_id, info.name, info.type);
		return -KERNEL_ENOTSUPP;
	}
	if (info.key_size > KERNEL_MAP_MAX_KEY) {
		set_error("kernel map %u ('%s'): keys of %u bytes (at most %u)", kernel_map_id, info.name,
			  info.key_size, KERNEL_MAP_MAX_KEY);
		return -E2BIG;
	}
	/* The kernel's flags besides the ones that only matter to it (frozen, access from programs). */
	uint32_t flags = info.map_flags & (F_NO_PREALLOC | F_MMAPABLE | F_ACCESS_MASK);
	uint32_t max_entries = info.max_entries;
	/* A fronted ring's shadow only holds reservations until they are submitted to the kernel
	 * (kernel_ring.c): big enough for a few of the largest records, no need for the kernel's size. */
	if (info.type == MAP_RINGBUF && max_entries > 4 * KERNEL_RING_MAX_RECORD)
		max_entries = 4 * KERNEL_RING_MAX_RECORD;
	int id = bpftime_map_create(shm, info.type, info.name, info.key_size, info.value_size,
				    max_entries, flags, 0, 0);
	if (id < 0)
		return id;
	struct shm_map *m = map_by_id(shm, (uint32_t)id);
	if (!m)
		return -ENOENT;
	if (all_values_bytes(m) > KERNEL_MAP_MAX_VALUE) {
		bpftime_object_delete(shm, (uint32_t)id);
		set_error("kernel map %u ('%s'): values of %u bytes across CPUs (at most %u)",
			  kernel_map_id, info.name, all_values_bytes(m), KERNEL_MAP_MAX_VALUE);
		return -E2BIG;
	}
	/* Arrays: their values now (a frozen .rodata is never written again); programs may point
	 * into them directly (lddw of a map value), without a lookup. */
	if (map_type(m->type)->index_keyed && m->type != MAP_PERF_EVENT_ARRAY) {
		VALUE_BUF(m);
		for (uint32_t i = 0; i < m->max_entries; i++)
			if (kernel_map_lookup(fd, &i, value_buf) == 0)
				map_ops_for(m->type)->update(shm, m, &i, value_buf, F_ANY, -1);
	}
	__atomic_store_n(&m->kernel_id, kernel_map_id, __ATOMIC_RELEASE);
	return id;
}
