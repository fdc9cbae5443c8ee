/*
 * The libc entry points the server replaces. Calls on fds of ours are
 * answered here; everything else goes straight to the kernel.
 */
#include "../maps/map.h" /* before libc headers: they define F_LOCK */
#include "server.h"

#include "../maps/map_mmap.h"
#include "raw_syscall.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))

struct bpftime_shm *server_shm;
int server_shm_fd = -1;

void server_log(const char *fmt, ...)
{
	char line[1200];
	va_list ap;
	va_start(ap, fmt);
	size_t n = log_format(line, sizeof(line), "bpftime-server", fmt, ap);
	va_end(ap);
	raw_syscall6(SYS_write, 2, (long)line, (long)n, 0, 0, 0);
}

static long do_close(int fd)
{
	server_lock();
	sfd_forget(fd);
	server_unlock();
	waker_fd_closed(fd);
	return raw_syscall6(SYS_close, fd, 0, 0, 0, 0, 0);
}

/* close_range: ours in the range are forgotten (unless it only marks them close-on-exec). */
static long do_close_range(unsigned int first, unsigned int last, unsigned int flags)
{
	long ret = raw_syscall6(SYS_close_range, first, last, flags, 0, 0, 0);
	if (ret == 0 && !(flags & CLOSE_RANGE_CLOEXEC)) {
		server_lock();
		unsigned int end = (unsigned int)sfd_capacity(); /* watched fds are ours: below it too */
		for (unsigned int fd = first; fd <= last && fd < end; fd++)
			sfd_forget((int)fd);
		for (unsigned int fd = first; fd <= last && fd < end; fd++)
			waker_fd_closed((int)fd);
		server_unlock();
	}
	return ret;
}

/* dup and friends: the new fd stands for the same object. */
static long after_dup(int from, long to)
{
	if (to >= 0 && to != from) {
		server_lock();
		if (sfd_get(from))
			sfd_copy(from, (int)to);
		else
			sfd_forget((int)to);
		server_unlock();
	}
	return to;
}

static long do_ioctl(int fd, unsigned long req, unsigned long arg)
{
	server_lock();
	struct server_fd *e = sfd_get(fd);
	long ret = !e				? 1
		   : e->kind == SFD_PERF_EVENT	? perf_probe_ioctl(e, req, arg)
		   : e->kind == SFD_PERF_OUTPUT ? perf_output_ioctl(req)
						: -ENOTTY;
	server_unlock();
	return ret == 1 ? raw_syscall6(SYS_ioctl, fd, (long)req, (long)arg, 0, 0, 0) : ret;
}

long server_mapping_address(void *addr, size_t len, int prot, int flags, bool *fixed)
{
	*fixed = flags & (MAP_FIXED | MAP_FIXED_NOREPLACE);
	return *fixed ? (long)addr
		      : raw_syscall6(SYS_mmap, (long)addr, (long)len, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
}

/* mmap of a map fd: BPF_F_MMAPABLE arrays and ring buffers, as views of the segment's pages. */
static long map_mmap(void *addr, size_t len, int prot, int flags, struct server_fd *e, off_t off)
{
	const struct shm_map *m = map_by_id(server_shm, e->id);
	struct map_mmap_piece pieces[MAP_MMAP_MAX_PIECES];
	if (!m || !map_mmap_layout(m, pieces))
		return -KERNEL_ENOTSUPP;
	if (!(flags & MAP_SHARED))
		return -EINVAL;
	if ((prot & PROT_WRITE) && ref_frozen(e->id))
		return -EPERM;
	bool fixed;
	long va = server_mapping_address(addr, len, PROT_NONE, flags, &fixed);
	if (va < 0 && va > -4096)
		return va;
	int rc = map_mmap_range(m, server_shm_fd, (uint8_t *)va, (uint64_t)off, len, prot);
	if (rc < 0) {
		if (!fixed)
			raw_syscall6(SYS_munmap, va, (long)len, 0, 0, 0, 0);
		return rc;
	}
	return va;
}

static long do_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	if (fd >= 0) {
		server_lock();
		struct server_fd *e = sfd_get(fd);
		long ret = !e			       ? 1
			   : e->kind == SFD_MAP	       ? map_mmap(addr, len, prot, flags, e, off)
			   : e->kind == SFD_PERF_OUTPUT ? perf_output_mmap(e, addr, len, prot, flags, off)
							: -ENODEV;
		server_unlock();
		if (ret != 1)
			return ret;
	}
	return raw_syscall6(SYS_mmap, (long)addr, (long)len, prot, flags, fd, off);
}

static long do_perf_event_open(long attr, long pid, long cpu, long group, long flags)
{
	long ret = server_shm ? server_perf_event_open((void *)attr, (int)pid, (int)cpu, (int)group,
						       (unsigned long)flags)
			      : 1;
	return ret == 1 ? raw_syscall6(SYS_perf_event_open, attr, pid, cpu, group, flags, 0) : ret;
}

EXPORT long syscall(long n, ...)
{
	va_list ap;
	va_start(ap, n);
	long a[6];
	for (int i = 0; i < 6; i++)
		a[i] = va_arg(ap, long);
	va_end(ap);
	switch (n) {
	case SYS_bpf: return errno_result(server_bpf((int)a[0], (union bpf_attr *)a[1], (unsigned int)a[2]));
	case SYS_perf_event_open: return errno_result(do_perf_event_open(a[0], a[1], a[2], a[3], a[4]));
	case SYS_close: return errno_result(do_close((int)a[0]));
	case SYS_close_range:
		return errno_result(do_close_range((unsigned int)a[0], (unsigned int)a[1], (unsigned int)a[2]));
	case SYS_ioctl: return errno_result(do_ioctl((int)a[0], (unsigned long)a[1], (unsigned long)a[2]));
	case SYS_mmap: return errno_result(do_mmap((void *)a[0], (size_t)a[1], (int)a[2], (int)a[3], (int)a[4], a[5]));
	default: return errno_result(raw_syscall6(n, a[0], a[1], a[2], a[3], a[4], a[5]));
	}
}

EXPORT int close(int fd)
{
	return (int)errno_result(do_close(fd));
}

EXPORT int close_range(unsigned int first, unsigned int last, int flags)
{
	return (int)errno_result(do_close_range(first, last, (unsigned int)flags));
}

EXPORT int ioctl(int fd, unsigned long req, ...)
{
	va_list ap;
	va_start(ap, req);
	unsigned long arg = va_arg(ap, unsigned long);
	va_end(ap);
	return (int)errno_result(do_ioctl(fd, req, arg));
}

EXPORT void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	return (void *)errno_result(do_mmap(addr, len, prot, flags, fd, off));
}
EXPORT void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	return mmap(addr, len, prot, flags, fd, off);
}

EXPORT int dup(int fd)
{
	return (int)errno_result(after_dup(fd, raw_syscall6(SYS_dup, fd, 0, 0, 0, 0, 0)));
}
EXPORT int dup2(int from, int to)
{
	if (from == to) /* dup2 onto itself only checks that the fd is open */
		return (int)errno_result(raw_syscall6(SYS_fcntl, from, F_GETFD, 0, 0, 0, 0) < 0 ? -EBADF : to);
	return (int)errno_result(after_dup(from, raw_syscall6(SYS_dup2, from, to, 0, 0, 0, 0)));
}
EXPORT int dup3(int from, int to, int flags)
{
	return (int)errno_result(after_dup(from, raw_syscall6(SYS_dup3, from, to, flags, 0, 0, 0)));
}

static long do_fcntl(int fd, int cmd, long arg)
{
	long ret = raw_syscall6(SYS_fcntl, fd, cmd, arg, 0, 0, 0);
	return cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC ? after_dup(fd, ret) : ret;
}
EXPORT int fcntl(int fd, int cmd, ...)
{
	va_list ap;
	va_start(ap, cmd);
	long arg = va_arg(ap, long);
	va_end(ap);
	return (int)errno_result(do_fcntl(fd, cmd, arg));
}
/* The same call under the name large-file builds use. */
EXPORT int fcntl64(int fd, int cmd, ...) __attribute__((alias("fcntl")));

EXPORT int epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev)
{
	long ret = raw_syscall6(SYS_epoll_ctl, epfd, op, fd, (long)ev, 0, 0);
	if (ret == 0 && server_shm)
		waker_epoll_ctl(epfd, op, fd);
	return (int)errno_result(ret);
}

EXPORT int epoll_wait(int epfd, struct epoll_event *events, int max, int timeout)
{
	waker_before_epoll_wait(epfd);
	return (int)errno_result(raw_syscall6(SYS_epoll_wait, epfd, (long)events, max, timeout, 0, 0));
}

EXPORT int epoll_pwait(int epfd, struct epoll_event *events, int max, int timeout, const sigset_t *mask)
{
	waker_before_epoll_wait(epfd);
	return (int)errno_result(
		raw_syscall6(SYS_epoll_pwait, epfd, (long)events, max, timeout, (long)mask, 8));
}

/* <poll.h> declares fds write-only (for callers' analysis); our poll reads them. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
EXPORT int poll(struct pollfd *fds, nfds_t n, int timeout)
{
	if (server_shm)
		waker_before_poll(fds, n);
	return (int)errno_result(raw_syscall6(SYS_poll, (long)fds, (long)n, timeout, 0, 0, 0));
}

/* poll as _FORTIFY_SOURCE builds call it. */
EXPORT int __poll_chk(struct pollfd *fds, nfds_t n, int timeout, size_t fds_len)
{
	if (fds_len / sizeof(*fds) < n)
		abort();
	return poll(fds, n, timeout);
}

EXPORT int ppoll(struct pollfd *fds, nfds_t n, const struct timespec *timeout, const sigset_t *mask)
{
	if (server_shm)
		waker_before_poll(fds, n);
	struct timespec t, *tp = NULL;
	if (timeout) { /* the kernel updates it; the caller's stays as it was */
		t = *timeout;
		tp = &t;
	}
	return (int)errno_result(raw_syscall6(SYS_ppoll, (long)fds, (long)n, (long)tp, (long)mask, 8, 0));
}
#pragma GCC diagnostic pop

__attribute__((constructor)) static void server_start(void)
{
	const char *name = getenv("BPFTIME_GLOBAL_SHM_NAME");
	if (!name || !*name)
		name = "bpftime_maps_shm";
	const char *mb = getenv("BPFTIME_SHM_MEMORY_MB");
	server_shm = bpftime_shm_open_as(name, mb ? strtoull(mb, NULL, 10) : 0, BPFTIME_SHM_CREATE,
					 getenv("BPFTIME_SHM_GROUP"), -1);
	if (!server_shm) {
		server_log("%s: eBPF calls will fail with EPERM", bpftime_last_error());
		return;
	}
	/* The very file checked and mapped (never reopened by name: it may have been replaced). */
	server_shm_fd = shm_fd(server_shm);
}

/* A normal exit closes every fd: what this process created goes, unless pinned. */
__attribute__((destructor)) static void server_exit(void)
{
	if (server_shm)
		bpftime_objects_release(server_shm, getpid());
}
