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
		if (rc == 0 && last && !ref_held(target)) {
			const struct shm_object *o = shm_object_find(server_shm, target);
			int32_t owner = o ? o->owner : 0;
			if (o && (owner == getpid() || (owner > 0 && kill(owner, 0) < 0 && errno == ESRCH)))
				bpftime_object_delete(server_shm, target);
		}
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
