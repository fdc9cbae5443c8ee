/* Creating, opening and allocating in the shared-memory segment. */
#define _GNU_SOURCE
#include "segment.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <limits.h>
#include <linux/futex.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
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

uint32_t shm_self_pid(void)
{
	uint32_t me = __atomic_load_n(&my_pid, __ATOMIC_RELAXED);
	if (!me) {
		pthread_once(&pid_once, watch_forks);
		me = (uint32_t)getpid();
		__atomic_store_n(&my_pid, me, __ATOMIC_RELAXED);
	}
	return me;
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
	if (!name || !*name || strchr(name, '/') || strlen(name) > 200 || !strcmp(name, ".") ||
	    !strcmp(name, "..")) {
		set_error("invalid segment name '%s'", name ? name : "");
		return -1;
	}
	snprintf(out, len, "/dev/shm/%s", name);
	return 0;
}

/* The group named by `group` (a name or a number), or -1 with the error set. */
static int64_t group_id(const char *group)
{
	char *end;
	errno = 0;
	unsigned long long n = strtoull(group, &end, 10);
	if (!*end && end != group && !errno && n < 0xffffffffull)
		return (int64_t)n;
	struct group gr, *found = NULL;
	char buf[4096];
	if (getgrnam_r(group, &gr, buf, sizeof(buf), &found) != 0 || !found) {
		set_error("BPFTIME_SHM_GROUP: no group '%s'", group);
		return -1;
	}
	return (int64_t)found->gr_gid;
}

static const char *user_name(uid_t uid, char *buf, size_t len)
{
	struct passwd pw, *found = NULL;
	char tmp[2048];
	if (getpwuid_r(uid, &pw, tmp, sizeof(tmp), &found) == 0 && found)
		snprintf(buf, len, "uid %u (%s)", (unsigned)uid, found->pw_name);
	else
		snprintf(buf, len, "uid %u", (unsigned)uid);
	return buf;
}

/*
 * Whether the segment behind `st` may be trusted: a regular file that belongs
 * to us (our effective uid), to root, or to the user we were told to trust,
 * with no permission bits beyond `mode` (and group bits only for `gid`).
 * Whoever can write the segment can run code in every traced process.
 */
static int check_trust(const char *name, const struct stat *st, uint32_t mode, int64_t gid, int32_t trust_uid)
{
	char who[160], me[160];
	if (!S_ISREG(st->st_mode)) {
		set_error("segment '%s': /dev/shm/%s is not a regular file; refusing it", name, name);
		return -1;
	}
	uid_t euid = geteuid();
	if (st->st_uid != euid && st->st_uid != 0 && (trust_uid < 0 || st->st_uid != (uid_t)trust_uid)) {
		set_error("segment '%s' belongs to %s, not to you (%s) or root: refusing it, since whoever owns "
			  "it can run code in your traced processes. Remove /dev/shm/%s (as its owner or root) "
			  "or choose another name with BPFTIME_GLOBAL_SHM_NAME",
			  name, user_name(st->st_uid, who, sizeof(who)), user_name(euid, me, sizeof(me)), name);
		return -1;
	}
	uint32_t have = st->st_mode & 0777;
	if (have & ~mode) {
		set_error("segment '%s' has mode 0%o, wider than the 0%o asked for (%s): refusing it, since "
			  "whoever can write it can run code in traced processes. Share it on purpose with "
			  "BPFTIME_SHM_GROUP=<group> (mode 0660), or remove /dev/shm/%s",
			  name, have, mode, user_name(st->st_uid, who, sizeof(who)), name);
		return -1;
	}
	if ((have & 0070) && (gid < 0 || st->st_gid != (gid_t)gid)) {
		set_error("segment '%s' is shared with group %u, which BPFTIME_SHM_GROUP does not name: "
			  "refusing it. Set BPFTIME_SHM_GROUP=%u to use it, or remove /dev/shm/%s",
			  name, (unsigned)st->st_gid, (unsigned)st->st_gid, name);
		return -1;
	}
	return 0;
}

/* Checks the header against the file's size; 0 when it is a whole segment of this build. */
static const char *header_problem(const struct shm_header *h, uint64_t size)
{
	if (__atomic_load_n(&h->magic, __ATOMIC_ACQUIRE) != SHM_MAGIC)
		return "not a bpftime segment (bad magic)";
	if (h->version != SHM_LAYOUT_VERSION || h->header_size != sizeof(*h))
		return "layout version differs from this build";
	if (h->size != size)
		return "size in header differs from the file (truncated or overwritten?)";
	uint64_t heap = (sizeof(*h) + ALIGN - 1) & ~(uint64_t)(ALIGN - 1);
	if (h->heap_start != heap || (h->free_head && (h->free_head < heap || h->free_head >= size)) ||
	    h->heap_used > size)
		return "header is damaged (overwritten?)";
	for (int i = 0; i < SHM_MAX_OBJECTS; i++) {
		const struct shm_object *o = &h->objects[i];
		if (!__atomic_load_n(&o->id, __ATOMIC_ACQUIRE))
			continue;
		if (o->kind < SHM_MAP || o->kind > SHM_PIN || o->offset < heap || o->offset >= size ||
		    o->size > size - o->offset)
			return "object table is damaged (overwritten?)";
	}
	return NULL;
}

/* Maps the segment behind `fd` (which it keeps) once its header is whole. */
static struct bpftime_shm *map_fd(const char *name, int fd, const struct stat *st, bool format, char *problem,
				  size_t problem_len)
{
	uint64_t size = (uint64_t)st->st_size;
	void *base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (base == MAP_FAILED) {
		set_error("segment '%s': mmap: %s", name, strerror(errno));
		return NULL;
	}
	struct shm_header *h = base;
	if (format)
		format_segment(h, size);
	const char *why = header_problem(h, size);
	if (why) {
		if (problem)
			snprintf(problem, problem_len, "%s", why);
		if (__atomic_load_n(&h->magic, __ATOMIC_ACQUIRE) == SHM_MAGIC && h->version != SHM_LAYOUT_VERSION)
			set_error("segment '%s': layout version %u, this build uses %u", name, h->version,
				  SHM_LAYOUT_VERSION);
		else
			set_error("segment '%s': %s", name, why);
		munmap(base, size);
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
	shm->fd = fd;
	snprintf(shm->name, sizeof(shm->name), "%s", name);
	return shm;
}

/* Reads the header through the fd: whether it is (or may soon be: being formatted) a segment. */
static uint64_t read_magic(int fd, uint32_t *version)
{
	struct shm_header h;
	if (pread(fd, &h, sizeof(h.magic) + sizeof(h.version), 0) != (ssize_t)(sizeof(h.magic) + sizeof(h.version)))
		return 0;
	*version = h.version;
	return h.magic;
}

/* Sizes a segment we just created; a full /dev/shm is an error here, never a SIGBUS later. */
static int reserve(const char *name, int fd, uint64_t size)
{
	int rc = posix_fallocate(fd, 0, (off_t)size);
	if (rc == 0)
		return 0;
	struct statvfs vfs;
	unsigned long long free_mb = statvfs("/dev/shm", &vfs) == 0 ? (unsigned long long)vfs.f_bavail * vfs.f_frsize >> 20 : 0;
	set_error("segment '%s': cannot reserve %llu MiB in /dev/shm (%llu MiB free): %s; set "
		  "BPFTIME_SHM_MEMORY_MB lower or free space in /dev/shm",
		  name, (unsigned long long)(size >> 20), free_mb, strerror(rc));
	return -1;
}

struct bpftime_shm *bpftime_shm_open_as(const char *name, uint64_t size_mb, uint32_t flags, const char *group,
					int32_t trust_uid)
{
	char path[256];
	if (shm_path(name, path, sizeof(path)) < 0)
		return NULL;
	int64_t gid = -1;
	if (group && *group && (gid = group_id(group)) < 0)
		return NULL;
	uint32_t mode = flags & 0777 ? flags & 0777 : 0600;
	if (gid >= 0)
		mode |= 0660;
	if (mode & 0002) {
		set_error("segment '%s': mode 0%o would let any user write it (and run code in traced "
			  "processes); share it with a group instead (BPFTIME_SHM_GROUP)",
			  name, mode);
		return NULL;
	}
	if (size_mb > (UINT64_MAX >> 20)) {
		set_error("segment '%s': %llu MiB is too large", name, (unsigned long long)size_mb);
		return NULL;
	}
	uint64_t want = (size_mb ? size_mb : 32) << 20;
	bool create = flags & BPFTIME_SHM_CREATE, created = false;
	int fd = -1;
	if (create) {
		fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, (mode_t)mode);
		if (fd >= 0) {
			created = true;
			/* The umask may have narrowed it; the group is the one asked for. */
			if ((gid >= 0 && fchown(fd, (uid_t)-1, (gid_t)gid) < 0) || fchmod(fd, (mode_t)mode) < 0) {
				set_error("segment '%s': cannot give it group %lld, mode 0%o: %s", name,
					  (long long)gid, mode, strerror(errno));
				goto fail_created;
			}
			if (reserve(name, fd, want) < 0)
				goto fail_created;
		} else if (errno != EEXIST) {
			set_error("segment '%s': %s", name, strerror(errno));
			return NULL;
		}
	}
	if (fd < 0)
		fd = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		if (e == ELOOP)
			set_error("segment '%s': /dev/shm/%s is a symbolic link; refusing it", name, name);
		else if (e == EACCES)
			set_error("segment '%s': %s (its owner has not shared it with you; see BPFTIME_SHM_GROUP)",
				  name, strerror(e));
		else
			set_error("segment '%s': %s", name, strerror(e));
		return NULL;
	}
	struct stat st;
	if (fstat(fd, &st) < 0) {
		set_error("segment '%s': fstat: %s", name, strerror(errno));
		close(fd);
		return NULL;
	}
	if (check_trust(name, &st, mode, gid, trust_uid) < 0) {
		close(fd);
		return NULL;
	}
	if (!created) {
		/* Another process may be creating it: give it a moment to size and format it. */
		uint32_t version = 0;
		for (int i = 0; i < 50 && ((uint64_t)st.st_size < sizeof(struct shm_header) ||
					     read_magic(fd, &version) == 0); i++) {
			usleep(20000);
			fstat(fd, &st);
		}
		if (st.st_size == 0 && create && st.st_uid == geteuid()) {
			/* Left empty by a creator that died: ours to size. */
			if (reserve(name, fd, want) < 0) {
				close(fd);
				return NULL;
			}
			fstat(fd, &st);
			created = true;
		}
	}
	if ((uint64_t)st.st_size < sizeof(struct shm_header) + 4096) {
		close(fd);
		set_error("segment '%s' is too small (%llu bytes): truncated, or left half-created; remove it",
			  name, (unsigned long long)st.st_size);
		return NULL;
	}
	uint32_t version = 0;
	uint64_t magic = created ? SHM_MAGIC : read_magic(fd, &version);
	char problem[128] = "";
	struct bpftime_shm *shm = map_fd(name, fd, &st, created, problem, sizeof(problem));
	if (shm)
		return shm;
	close(fd);
	/*
	 * A segment left by an older build is replaced when the caller may create one:
	 * processes of that build keep their mapping of the old file.
	 */
	if (magic == SHM_MAGIC && version < SHM_LAYOUT_VERSION && create && st.st_uid == geteuid() &&
	    unlink(path) == 0) {
		fprintf(stderr, "bpftime: segment '%s' had the older layout version %u; replaced by a new one\n",
			name, version);
		return bpftime_shm_open_as(name, size_mb, flags, group, trust_uid);
	}
	return NULL;
fail_created:
	unlink(path);
	close(fd);
	return NULL;
}

struct bpftime_shm *bpftime_shm_open(const char *name, uint64_t size_mb, uint32_t flags)
{
	return bpftime_shm_open_as(name, size_mb, flags, NULL, -1);
}

struct bpftime_shm *shm_open_inherited(int fd, const char *name, const char *group)
{
	int64_t gid = -1;
	if (group && *group && (gid = group_id(group)) < 0)
		return NULL;
	struct stat st;
	uint32_t version = 0;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size < sizeof(struct shm_header) + 4096 ||
	    read_magic(fd, &version) != SHM_MAGIC) {
		set_error("inherited descriptor %d is not a bpftime segment", fd);
		return NULL;
	}
	if (check_trust(name, &st, gid >= 0 ? 0660 : 0600, gid, -1) < 0)
		return NULL;
	return map_fd(name, fd, &st, false, NULL, 0);
}

int shm_fd(const struct bpftime_shm *shm)
{
	return shm->fd;
}

int shm_move_fd(struct bpftime_shm *shm, int min_fd)
{
	int fd = fcntl(shm->fd, F_DUPFD_CLOEXEC, min_fd);
	if (fd < 0)
		return -errno;
	close(shm->fd);
	shm->fd = fd;
	return fd;
}

int bpftime_shm_check(const struct bpftime_shm *shm)
{
	struct stat st;
	if (fstat(shm->fd, &st) < 0) {
		set_error("segment '%s': fstat: %s", shm->name, strerror(errno));
		return -EIO;
	}
	if ((uint64_t)st.st_size < shm->size) {
		set_error("segment '%s' shrank from %llu to %llu bytes (truncated by someone): it can no longer "
			  "be used",
			  shm->name, (unsigned long long)shm->size, (unsigned long long)st.st_size);
		return -EIO;
	}
	const char *why = header_problem(shm->hdr, shm->size);
	if (why) {
		set_error("segment '%s': %s: it can no longer be used", shm->name, why);
		return -EIO;
	}
	return 0;
}

bool shm_intact(const struct bpftime_shm *shm)
{
	struct stat st;
	return fstat(shm->fd, &st) == 0 && (uint64_t)st.st_size >= shm->size &&
	       __atomic_load_n(&shm->hdr->magic, __ATOMIC_ACQUIRE) == SHM_MAGIC && shm->hdr->size == shm->size;
}

void bpftime_shm_close(struct bpftime_shm *shm)
{
	if (!shm)
		return;
	munmap(shm->base, shm->size);
	if (shm->fd >= 0)
		close(shm->fd);
	free(shm);
}

int bpftime_shm_remove(const char *name)
{
	char path[256];
	if (shm_path(name, path, sizeof(path)) < 0)
		return -EINVAL;
	if (unlink(path) < 0) {
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
