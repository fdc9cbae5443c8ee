/* Creating, opening and allocating in the shared-memory segment. */
#define _GNU_SOURCE
#include "segment.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

void shm_bump_generation(struct bpftime_shm *shm)
{
	__atomic_add_fetch(&shm->hdr->generation, 1, __ATOMIC_RELEASE);
	/* Agents in traced processes sleep on this word (not private: other processes). */
	syscall(SYS_futex, &shm->hdr->generation, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

int shm_wait_generation(struct bpftime_shm *shm, uint32_t seen, int timeout_ms)
{
	struct timespec ts = {timeout_ms / 1000, (long)(timeout_ms % 1000) * 1000000L};
	if (__atomic_load_n(&shm->hdr->generation, __ATOMIC_ACQUIRE) != seen)
		return 1;
	long rc = syscall(SYS_futex, &shm->hdr->generation, FUTEX_WAIT, seen, timeout_ms < 0 ? NULL : &ts,
			  NULL, 0);
	return rc == 0 || errno == EAGAIN;
}

int shm_mutex_init(pthread_mutex_t *m)
{
	pthread_mutexattr_t a;
	pthread_mutexattr_init(&a);
	pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
	pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
	int rc = pthread_mutex_init(m, &a);
	pthread_mutexattr_destroy(&a);
	return rc;
}

void shm_lock(pthread_mutex_t *m)
{
	int rc = pthread_mutex_lock(m);
	if (rc == EOWNERDEAD) /* the holder died: its update is either done or never visible */
		pthread_mutex_consistent(m);
}

void shm_unlock(pthread_mutex_t *m)
{
	pthread_mutex_unlock(m);
}

static uint32_t my_pid; /* cached; a forked child forgets it */
static pthread_once_t pid_once = PTHREAD_ONCE_INIT;

static void forget_pid(void)
{
	my_pid = 0;
}
static void watch_forks(void)
{
	pthread_atfork(NULL, NULL, forget_pid);
}

void shm_spin_lock(shm_spinlock *l)
{
	uint32_t me = __atomic_load_n(&my_pid, __ATOMIC_RELAXED);
	if (!me) {
		pthread_once(&pid_once, watch_forks);
		me = (uint32_t)getpid();
		__atomic_store_n(&my_pid, me, __ATOMIC_RELAXED);
	}
	for (uint64_t spins = 0;; spins++) {
		uint32_t free_ = 0;
		if (__atomic_compare_exchange_n(&l->holder, &free_, me, false, __ATOMIC_ACQUIRE,
						__ATOMIC_RELAXED))
			return;
		__builtin_ia32_pause();
		if ((spins & 0xfffff) == 0xfffff) { /* about a millisecond: is the holder alive? */
			uint32_t h = __atomic_load_n(&l->holder, __ATOMIC_RELAXED);
			if (h && kill((pid_t)h, 0) < 0 && errno == ESRCH)
				__atomic_compare_exchange_n(&l->holder, &h, 0, false, __ATOMIC_ACQ_REL,
							    __ATOMIC_RELAXED);
		}
	}
}

void shm_spin_unlock(shm_spinlock *l)
{
	__atomic_store_n(&l->holder, 0, __ATOMIC_RELEASE);
}

#define ALIGN 64

uint64_t shm_alloc_locked(struct bpftime_shm *shm, uint64_t size)
{
	struct shm_header *h = shm->hdr;
	uint64_t need = (size + sizeof(struct shm_block) + ALIGN - 1) & ~(uint64_t)(ALIGN - 1);
	uint64_t prev = 0, cur = h->free_head;
	while (cur) {
		struct shm_block *b = shm_ptr(shm, cur);
		if (b->size >= need) {
			uint64_t next = b->next;
			if (b->size - need >= 2 * ALIGN) { /* split: the tail stays free */
				uint64_t rest = cur + need;
				struct shm_block *r = shm_ptr(shm, rest);
				r->size = b->size - need;
				r->next = next;
				next = rest;
				b->size = need;
			}
			if (prev)
				((struct shm_block *)shm_ptr(shm, prev))->next = next;
			else
				h->free_head = next;
			b->next = 0;
			h->heap_used += b->size;
			memset(b + 1, 0, b->size - sizeof(*b));
			return cur + sizeof(*b);
		}
		prev = cur;
		cur = b->next;
	}
	return 0;
}

void shm_free_locked(struct bpftime_shm *shm, uint64_t off)
{
	struct shm_header *h = shm->hdr;
	uint64_t at = off - sizeof(struct shm_block);
	struct shm_block *b = shm_ptr(shm, at);
	h->heap_used -= b->size;
	uint64_t prev = 0, cur = h->free_head;
	while (cur && cur < at) {
		prev = cur;
		cur = ((struct shm_block *)shm_ptr(shm, cur))->next;
	}
	b->next = cur;
	if (cur && at + b->size == cur) { /* merge with the following block */
		struct shm_block *n = shm_ptr(shm, cur);
		b->size += n->size;
		b->next = n->next;
	}
	if (prev) {
		struct shm_block *p = shm_ptr(shm, prev);
		if (prev + p->size == at) { /* merge into the preceding block */
			p->size += b->size;
			p->next = b->next;
		} else {
			p->next = at;
		}
	} else {
		h->free_head = at;
	}
}

struct shm_object *shm_object_add_locked(struct bpftime_shm *shm, uint32_t kind, const char *name,
					 uint64_t offset, uint64_t size)
{
	struct shm_header *h = shm->hdr;
	for (int i = 0; i < SHM_MAX_OBJECTS; i++) {
		struct shm_object *o = &h->objects[i];
		if (o->id)
			continue;
		o->kind = kind;
		snprintf(o->name, sizeof(o->name), "%s", name ? name : "");
		o->offset = offset;
		o->size = size;
		o->owner = getpid();
		o->pinned = 0;
		__atomic_store_n(&o->id, h->next_id++, __ATOMIC_RELEASE);
		shm_bump_generation(shm);
		return o;
	}
	set_error("object table full (%d objects)", SHM_MAX_OBJECTS);
	return NULL;
}

struct shm_object *shm_object_find(const struct bpftime_shm *shm, uint32_t id)
{
	if (!id)
		return NULL;
	for (int i = 0; i < SHM_MAX_OBJECTS; i++)
		if (__atomic_load_n(&shm->hdr->objects[i].id, __ATOMIC_ACQUIRE) == id)
			return &shm->hdr->objects[i];
	return NULL;
}

static void format_segment(struct shm_header *h, uint64_t size)
{
	memset(h, 0, sizeof(*h));
	h->version = SHM_LAYOUT_VERSION;
	h->header_size = sizeof(*h);
	h->size = size;
	shm_mutex_init(&h->lock);
	h->heap_start = (sizeof(*h) + ALIGN - 1) & ~(uint64_t)(ALIGN - 1);
	h->free_head = h->heap_start;
	struct shm_block *b = (struct shm_block *)((uint8_t *)h + h->heap_start);
	b->size = (size - h->heap_start) & ~(uint64_t)(ALIGN - 1);
	b->next = 0;
	h->next_id = 1;
	/* Magic last: a reader never sees a half-formatted segment as valid. */
	__atomic_store_n(&h->magic, SHM_MAGIC, __ATOMIC_RELEASE);
}

static int shm_path(const char *name, char *out, size_t len)
{
	if (!name || !*name || strchr(name, '/') || strlen(name) > 200) {
		set_error("invalid segment name '%s'", name ? name : "");
		return -1;
	}
	snprintf(out, len, "/%s", name);
	return 0;
}

struct bpftime_shm *bpftime_shm_open(const char *name, uint64_t size_mb, uint32_t flags)
{
	char path[256];
	if (shm_path(name, path, sizeof(path)) < 0)
		return NULL;
	bool create = flags & BPFTIME_SHM_CREATE;
	int fd = shm_open(path, O_RDWR | (create ? O_CREAT : 0), (mode_t)(flags & 0777 ? flags & 0777 : 0600));
	if (fd < 0) {
		set_error("segment '%s': %s", name, strerror(errno));
		return NULL;
	}
	struct stat st;
	fstat(fd, &st);
	uint64_t size = (uint64_t)st.st_size;
	bool fresh = false;
	if (size == 0) {
		if (!create) {
			close(fd);
			set_error("segment '%s' is empty (being created?)", name);
			return NULL;
		}
		size = (size_mb ? size_mb : 32) << 20;
		if (ftruncate(fd, (off_t)size) < 0) {
			set_error("segment '%s': cannot size to %llu bytes: %s", name,
				      (unsigned long long)size, strerror(errno));
			close(fd);
			return NULL;
		}
		fresh = true;
	}
	if (size < sizeof(struct shm_header) + 4096) {
		close(fd);
		set_error("segment '%s' is too small (%llu bytes)", name, (unsigned long long)size);
		return NULL;
	}
	void *base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (base == MAP_FAILED) {
		set_error("segment '%s': mmap: %s", name, strerror(errno));
		return NULL;
	}
	struct shm_header *h = base;
	if (fresh)
		format_segment(h, size);
	uint64_t magic = __atomic_load_n(&h->magic, __ATOMIC_ACQUIRE);
	const char *why = magic != SHM_MAGIC ? "not a bpftime segment (bad magic)"
			  : h->version != SHM_LAYOUT_VERSION || h->header_size != sizeof(*h)
			      ? "layout version differs from this build"
			      : h->size != size ? "size in header differs from the file" : NULL;
	if (why) {
		uint32_t version = h->version;
		bool older = magic == SHM_MAGIC && version < SHM_LAYOUT_VERSION;
		if (magic == SHM_MAGIC && h->version != SHM_LAYOUT_VERSION)
			set_error("segment '%s': layout version %u, this build uses %u", name,
				      h->version, SHM_LAYOUT_VERSION);
		else
			set_error("segment '%s': %s", name, why);
		munmap(base, size);
		/*
		 * A segment left by an older build is replaced when the caller may create one:
		 * processes of that build keep their mapping of the old file.
		 */
		if (older && create && shm_unlink(path) == 0) {
			fprintf(stderr, "bpftime: segment '%s' had the older layout version %u; replaced by a "
					"new one\n",
				name, version);
			return bpftime_shm_open(name, size_mb, flags);
		}
		return NULL;
	}
	struct bpftime_shm *shm = calloc(1, sizeof(*shm));
	if (!shm) {
		munmap(base, size);
		set_error("out of memory");
		return NULL;
	}
	shm->hdr = h;
	shm->base = base;
	shm->size = size;
	snprintf(shm->name, sizeof(shm->name), "%s", name);
	return shm;
}

void bpftime_shm_close(struct bpftime_shm *shm)
{
	if (!shm)
		return;
	munmap(shm->base, shm->size);
	free(shm);
}

int bpftime_shm_remove(const char *name)
{
	char path[256];
	if (shm_path(name, path, sizeof(path)) < 0)
		return -EINVAL;
	if (shm_unlink(path) < 0) {
		int e = errno;
		set_error("segment '%s': %s", name, strerror(e));
		return -e;
	}
	return 0;
}

int bpftime_shm_stats(const struct bpftime_shm *shm, struct bpftime_shm_stats *out)
{
	struct shm_header *h = shm->hdr;
	out->size = h->size;
	out->heap_used = h->heap_used;
	out->generation = __atomic_load_n(&h->generation, __ATOMIC_ACQUIRE);
	out->objects = 0;
	for (int i = 0; i < SHM_MAX_OBJECTS; i++)
		out->objects += h->objects[i].id != 0;
	return 0;
}

int bpftime_object_at(const struct bpftime_shm *shm, uint32_t index, struct bpftime_object_info *out)
{
	if (index >= SHM_MAX_OBJECTS)
		return -ENOENT;
	const struct shm_object *o = &shm->hdr->objects[index];
	uint32_t id = __atomic_load_n(&o->id, __ATOMIC_ACQUIRE);
	memset(out, 0, sizeof(*out));
	if (!id)
		return 0;
	out->id = id;
	out->kind = o->kind;
	memcpy(out->name, o->name, sizeof(out->name));
	out->name[sizeof(out->name) - 1] = 0;
	return 1;
}
