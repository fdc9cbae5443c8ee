/*
 * A process's fds for kernel maps (and for the programs that output into fronted ring buffers and
 * perf event arrays, kernel_ring.c): asked once per map and kept. BPF_MAP_GET_FD_BY_ID needs
 * CAP_SYS_ADMIN; without it the fd comes from `bpftime daemon` over its abstract unix socket
 * (SCM_RIGHTS). No locks a probe could wait on: the table is filled with atomic operations.
 */
#define _GNU_SOURCE
#include "kernel_map.h"

#include <errno.h>
#include <linux/bpf.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#define FD_SLOTS 128

static struct fd_slot {
	uint32_t id; /* 0: free; UINT32_MAX: being filled */
	uint32_t what; /* KERNEL_MAP_REQ_MAGIC: the map's fd; KERNEL_OUT_REQ_MAGIC: its output program */
	int fd;
} slots[FD_SLOTS];

static long sys_bpf(int cmd, union bpf_attr *attr)
{
	long rc = syscall(SYS_bpf, cmd, attr, sizeof(*attr));
	return rc < 0 ? -errno : rc;
}

int kernel_map_lookup(int fd, const void *key, void *value)
{
	union bpf_attr a = {.map_fd = (uint32_t)fd, .key = (uintptr_t)key, .value = (uintptr_t)value};
	return (int)sys_bpf(BPF_MAP_LOOKUP_ELEM, &a);
}

int kernel_map_update(int fd, const void *key, const void *value, uint64_t flags)
{
	union bpf_attr a = {.map_fd = (uint32_t)fd, .key = (uintptr_t)key, .value = (uintptr_t)value,
			    .flags = flags};
	return (int)sys_bpf(BPF_MAP_UPDATE_ELEM, &a);
}

int kernel_map_delete(int fd, const void *key)
{
	union bpf_attr a = {.map_fd = (uint32_t)fd, .key = (uintptr_t)key};
	return (int)sys_bpf(BPF_MAP_DELETE_ELEM, &a);
}

int kernel_map_next_key(int fd, const void *key, void *next)
{
	union bpf_attr a = {.map_fd = (uint32_t)fd, .key = (uintptr_t)key, .next_key = (uintptr_t)next};
	return (int)sys_bpf(BPF_MAP_GET_NEXT_KEY, &a);
}

int kernel_fd_from_daemon(uint32_t what, uint32_t id)
{
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -errno;
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	memcpy(addr.sun_path + 1, KERNEL_MAP_SOCKET, sizeof(KERNEL_MAP_SOCKET) - 1);
	socklen_t len = offsetof(struct sockaddr_un, sun_path) + 1 + sizeof(KERNEL_MAP_SOCKET) - 1;
	/* A daemon that does not answer must not hold up the process for long. */
	struct timeval tv = {.tv_sec = 1};
	setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	int rc = -ENOENT;
	struct kernel_map_request req = {what, id};
	if (connect(s, (struct sockaddr *)&addr, len) < 0 ||
	    send(s, &req, sizeof(req), MSG_NOSIGNAL) != (ssize_t)sizeof(req)) {
		rc = errno == ECONNREFUSED ? -ENOENT : -errno;
		close(s);
		return rc;
	}
	struct kernel_map_reply reply;
	_Alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int))];
	struct iovec iov = {&reply, sizeof(reply)};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control,
			     .msg_controllen = sizeof(control)};
	ssize_t n = recvmsg(s, &msg, MSG_CMSG_CLOEXEC);
	close(s);
	if (n != (ssize_t)sizeof(reply))
		return n < 0 ? -errno : -EPROTO;
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
	if (reply.err < 0)
		return reply.err;
	if (!c || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
		return -EPROTO;
	int fd;
	memcpy(&fd, CMSG_DATA(c), sizeof(fd));
	return fd;
}

int kernel_fd_cached(uint32_t what, uint32_t id)
{
	for (int i = 0; i < FD_SLOTS; i++)
		if (__atomic_load_n(&slots[i].id, __ATOMIC_ACQUIRE) == id && slots[i].what == what)
			return slots[i].fd;
	return -ENOENT;
}

int kernel_fd_keep(uint32_t what, uint32_t id, int fd)
{
	/* Publish it: fd first, then the id. Two threads racing keep one fd each; one is closed. */
	for (int i = 0; i < FD_SLOTS; i++) {
		uint32_t seen = __atomic_load_n(&slots[i].id, __ATOMIC_ACQUIRE);
		if (seen == id && slots[i].what == what) {
			close(fd);
			return slots[i].fd;
		}
		if (seen)
			continue;
		uint32_t zero = 0, claimed = UINT32_MAX;
		if (!__atomic_compare_exchange_n(&slots[i].id, &zero, claimed, false, __ATOMIC_ACQ_REL,
						 __ATOMIC_ACQUIRE)) {
			i--; /* taken meanwhile: look at it again */
			continue;
		}
		slots[i].fd = fd;
		slots[i].what = what;
		__atomic_store_n(&slots[i].id, id, __ATOMIC_RELEASE);
		return fd;
	}
	return fd; /* the table is full: the fd is used without being kept (leaks one fd) */
}

int kernel_map_fd(uint32_t id)
{
	int fd = kernel_fd_cached(KERNEL_MAP_REQ_MAGIC, id);
	if (fd >= 0)
		return fd;
	union bpf_attr a = {.map_id = id};
	fd = (int)sys_bpf(BPF_MAP_GET_FD_BY_ID, &a);
	if (fd == -EPERM || fd == -EACCES)
		fd = kernel_fd_from_daemon(KERNEL_MAP_REQ_MAGIC, id);
	if (fd < 0) {
		set_error("kernel map %u: no fd for it (%s; is `bpftime daemon` running?)", id, strerror(-fd));
		return fd;
	}
	return kernel_fd_keep(KERNEL_MAP_REQ_MAGIC, id, fd);
}
