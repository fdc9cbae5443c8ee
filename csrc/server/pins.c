/*
 * Pinning by path, as libbpf uses it: BPF_OBJ_PIN records the path in the
 * segment (shm/pins.h), so that BPF_OBJ_GET finds the object from any process
 * of the segment, and unlink() of the path removes the pin. Nothing is written
 * to bpffs: the path is checked as the kernel checks it (its directory exists,
 * is on bpffs, the name is free), then only the segment knows it.
 * BPF_LINK_GET_FD_BY_ID (and BPF_OBJ_GET of a pinned link) give an fd for a
 * link another process may have made.
 */
#include "server.h"
#include "raw_syscall.h"
#include "../base/safe_copy.h"
#include "../shm/pins.h"

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <signal.h>
#include <linux/bpf.h>
#include <linux/magic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))

/* The application's path string (at most PATH_MAX bytes with its zero). */
static long read_path(uint64_t user, char *out)
{
	for (size_t i = 0; i < PATH_MAX; i++) {
		if (safe_read(&out[i], user + i, 1) < 0)
			return -EFAULT;
		if (!out[i])
			return i ? 0 : -ENOENT;
	}
	return -ENAMETOOLONG;
}

/*
 * The key of a path: its directory resolved (symbolic links, "..", relative
 * paths), then its last name. -errno as path lookup fails: no directory, not a
 * directory. *dir_fs gets the directory's filesystem magic.
 */
static long path_key(const char *path, char *key, long *dir_fs)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	const char *name = slash ? slash + 1 : path;
	if (!*name)
		return -EISDIR; /* "DIR/": a directory, not a name in it */
	if (!slash)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == path)
		snprintf(dir, sizeof(dir), "/");
	else
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
	struct stat st;
	if (raw_syscall6(SYS_newfstatat, AT_FDCWD, (long)dir, (long)&st, 0, 0, 0) < 0)
		return -ENOENT;
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR;
	char real[PATH_MAX];
	if (!realpath(dir, real))
		return -ENOENT;
	struct statfs fs;
	*dir_fs = raw_syscall6(SYS_statfs, (long)real, (long)&fs, 0, 0, 0, 0) < 0 ? 0 : (long)fs.f_type;
	if ((size_t)snprintf(key, PATH_MAX, "%s/%s", strcmp(real, "/") ? real : "", name) >= PATH_MAX)
		return -ENAMETOOLONG;
	return 0;
}

/* An fd for a link of the segment: this process's own probe if it has one, else a view of it. */
static long link_fd(uint32_t id)
{
	for (int fd = 0; fd < sfd_capacity(); fd++) {
		struct server_fd *e = sfd_get(fd);
		if (e && e->probe && e->probe->link_id == id)
			return sfd_new(SFD_LINK, 0, e->probe);
	}
	struct perf_probe *p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	if (bpftime_link_info(server_shm, id, &p->spec) < 0) {
		free(p);
		return -ENOENT;
	}
	p->enabled = true;
	p->link_id = id;
	p->creator = 0; /* not ours: closing it, or BPF_LINK_DETACH, leaves the link to its maker */
	long fd = sfd_new(SFD_LINK, 0, p);
	if (fd < 0)
		free(p);
	return fd;
}

/* An fd for object `id` of the segment (a reference taken), by its kind. */
static long object_fd(uint32_t id)
{
	const struct shm_object *o = shm_object_find(server_shm, id);
	if (!o)
		return -ENOENT;
	if (o->kind == SHM_LINK)
		return link_fd(id);
	if (o->kind != SHM_MAP && o->kind != SHM_PROG)
		return -EINVAL;
	ref_get(id);
	long fd = sfd_new(o->kind == SHM_MAP ? SFD_MAP : SFD_PROG, id, NULL);
	if (fd < 0)
		ref_put(id);
	return fd;
}

long server_obj_pin(union bpf_attr *attr)
{
	if (attr->file_flags)
		return -EINVAL;
	/* The object first, then the path, as the kernel looks at them. */
	struct server_fd *e = sfd_get((int)attr->bpf_fd);
	if (!e) /* not a map, program or link: the kernel says EINVAL, even for a closed fd */
		return -EINVAL;
	uint32_t id = e->kind == SFD_LINK ? e->probe->link_id : e->id;
	if ((e->kind != SFD_MAP && e->kind != SFD_PROG && e->kind != SFD_LINK) || !id)
		return -EINVAL;
	char path[PATH_MAX], key[PATH_MAX];
	long fs = 0, ret = read_path(attr->pathname, path);
	if (ret == 0)
		ret = path_key(path, key, &fs);
	if (ret < 0)
		return ret == -EISDIR ? -EEXIST : ret;
	struct stat st;
	if (raw_syscall6(SYS_newfstatat, AT_FDCWD, (long)key, (long)&st, AT_SYMLINK_NOFOLLOW, 0, 0) == 0)
		return -EEXIST; /* a file there (a kernel pin, say) */
	if (fs != BPF_FS_MAGIC)
		return -EPERM;
	ret = shm_pin_add(server_shm, key, id);
	if (ret < 0)
		return ret;
	if (e->kind == SFD_LINK) /* a pinned link keeps its program, which keeps its maps */
		ref_pin(e->probe->spec.prog_id);
	ref_pin(id);
	return 0;
}

long server_obj_get(union bpf_attr *attr, unsigned int size)
{
	if (attr->bpf_fd || attr->file_flags & ~(uint32_t)(BPF_F_RDONLY | BPF_F_WRONLY) ||
	    (attr->file_flags & BPF_F_RDONLY && attr->file_flags & BPF_F_WRONLY))
		return -EINVAL;
	char path[PATH_MAX], key[PATH_MAX];
	long fs = 0, ret = read_path(attr->pathname, path);
	if (ret == 0 && path_key(path, key, &fs) == 0) {
		int64_t id = shm_pin_find(server_shm, key);
		if (id > 0) {
			if (attr->file_flags)
				server_log("BPF_OBJ_GET %s: read-only and write-only fds are not kept apart; "
					   "the fd can read and write",
					   key);
			return object_fd((uint32_t)id);
		}
	}
	if (ret < 0)
		return ret;
	/* Not pinned here: the kernel answers (no such file, not a bpf file, or its own pin). */
	return raw_syscall6(SYS_bpf, BPF_OBJ_GET, (long)attr, size, 0, 0, 0);
}

long server_link_fd_by_id(union bpf_attr *attr)
{
	if (attr->open_flags)
		return -EINVAL;
	const struct shm_object *o = shm_object_find(server_shm, attr->link_id);
	if (!o || o->kind != SHM_LINK)
		return -ENOENT;
	return link_fd(attr->link_id);
}

/* The objects `id` holds (a link its program, a program the maps its code names): up to `cap`. */
static uint32_t held_by(uint32_t id, uint32_t *out, uint32_t cap)
{
	const struct shm_object *o = shm_object_find(server_shm, id);
	uint32_t n = 0;
	if (o && o->kind == SHM_LINK) {
		struct bpftime_link_spec spec;
		if (bpftime_link_info(server_shm, id, &spec) == 0 && spec.prog_id)
			out[n++] = spec.prog_id;
	} else if (o && o->kind == SHM_PROG) {
		int64_t len = bpftime_prog_code(server_shm, id, NULL, 0, NULL);
		struct bpf_insn *code = len > 0 ? malloc((size_t)len) : NULL;
		if (code && bpftime_prog_code(server_shm, id, code, (uint64_t)len, NULL) == len) {
			for (int64_t pc = 0; pc < len / 8 && n < cap; pc++)
				if (code[pc].code == (BPF_LD | BPF_IMM | BPF_DW)) {
					/* map ids (the server stores them in place of the fds) */
					if (code[pc].src_reg == 1 || code[pc].src_reg == 2)
						out[n++] = (uint32_t)code[pc].imm;
					pc++;
				}
		}
		free(code);
	}
	return n;
}

/* Some pinned object other than `except` holds `id`. */
static bool held_by_a_pinned(uint32_t id, uint32_t except)
{
	uint32_t holds[64];
	for (int i = 0; i < SHM_MAX_OBJECTS; i++) {
		const struct shm_object *o = &server_shm->hdr->objects[i];
		uint32_t oid = __atomic_load_n(&o->id, __ATOMIC_ACQUIRE);
		if (!oid || oid == except || !o->pinned || (o->kind != SHM_LINK && o->kind != SHM_PROG))
			continue;
		uint32_t n = held_by(oid, holds, 64);
		for (uint32_t k = 0; k < n; k++)
			if (holds[k] == id)
				return true;
	}
	return false;
}

/* A link fd of this process names link `id`. */
static bool link_held_here(uint32_t id)
{
	for (int fd = 0; fd < sfd_capacity(); fd++) {
		struct server_fd *e = sfd_get(fd);
		if (e && e->probe && e->probe->link_id == id)
			return true;
	}
	return false;
}

/* An object deleted when its owner is gone and nobody here holds it (the kernel's last reference). */
static void release_if_orphan(uint32_t id)
{
	const struct shm_object *o = shm_object_find(server_shm, id);
	if (!o || o->pinned || ref_held(id) || (o->kind == SHM_LINK && link_held_here(id)))
		return;
	int32_t owner = o->owner;
	if (owner == getpid() || (owner > 0 && kill(owner, 0) < 0 && errno == ESRCH))
		bpftime_object_delete(server_shm, id);
}

/*
 * The last pin of `id` is gone: what pinning it had kept (the program of a link, the maps of a
 * program) is kept no more, unless named by a pin itself or held by another pinned object.
 */
static void unpinned(uint32_t id, int depth)
{
	uint32_t holds[64];
	uint32_t n = depth < 3 ? held_by(id, holds, 64) : 0;
	release_if_orphan(id);
	for (uint32_t k = 0; k < n; k++) {
		if (held_by_a_pinned(holds[k], id))
			continue;
		const struct shm_object *h = shm_object_find(server_shm, holds[k]);
		if (!h || !h->pinned || shm_pin_names(server_shm, holds[k]))
			continue;
		bpftime_object_set_pinned(server_shm, holds[k], 0);
		unpinned(holds[k], depth + 1);
	}
}

/*
 * unlink() of a pinned path removes the pin (the kernel's way to unpin). The
 * last pin of an object no process holds any more deletes it, as the kernel
 * frees an object with its last reference; one a live process holds stays until it
 * lets it go.
 */
static long unpin_or_unlink(int dirfd, const char *path, int flags)
{
	char key[PATH_MAX];
	long fs;
	if (server_shm && path && !(flags & AT_REMOVEDIR) && (dirfd == AT_FDCWD || path[0] == '/') &&
	    path_key(path, key, &fs) == 0) {
		uint32_t target;
		bool last;
		server_lock();
		int rc = shm_pin_remove(server_shm, key, &target, &last);
		if (rc == 0 && last)
			unpinned(target, 0);
		server_unlock();
		if (rc == 0)
			return 0;
	}
	return raw_syscall6(SYS_unlinkat, dirfd, (long)path, flags, 0, 0, 0);
}

EXPORT int unlink(const char *path)
{
	return (int)errno_result(unpin_or_unlink(AT_FDCWD, path, 0));
}

EXPORT int unlinkat(int dirfd, const char *path, int flags)
{
	return (int)errno_result(unpin_or_unlink(dirfd, path, flags));
}
