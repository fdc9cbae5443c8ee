/* The fds the server hands out: eventfds standing for maps, programs, BTF, links and perf events. */
#include "server.h"

#include "raw_syscall.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>

/* Recursive: the runtime calls mmap and close itself, which come back here. */
static pthread_mutex_t table_lock = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;
static struct server_fd **table; /* indexed by fd */
static int capacity;

void server_lock(void)
{
	pthread_mutex_lock(&table_lock);
}
void server_unlock(void)
{
	pthread_mutex_unlock(&table_lock);
}

static int ensure_capacity(int fd)
{
	if (fd < capacity)
		return 0;
	int cap = capacity ? capacity : 256;
	while (cap <= fd)
		cap *= 2;
	struct server_fd **t = realloc(table, sizeof(*t) * (size_t)cap);
	if (!t)
		return -ENOMEM;
	memset(t + capacity, 0, sizeof(*t) * (size_t)(cap - capacity));
	__atomic_store_n(&table, t, __ATOMIC_RELEASE);
	capacity = cap;
	return 0;
}

int sfd_capacity(void)
{
	return capacity;
}

struct server_fd *sfd_get(int fd)
{
	return fd >= 0 && fd < capacity ? table[fd] : NULL;
}

static int install(int fd, const struct server_fd *proto)
{
	struct server_fd *e = malloc(sizeof(*e));
	if (!e || ensure_capacity(fd) < 0) {
		free(e);
		return -ENOMEM;
	}
	*e = *proto;
	e->waker = NULL;
	if (e->probe)
		e->probe->fds++;
	table[fd] = e;
	return fd;
}

int sfd_new(uint32_t kind, uint32_t id, struct perf_probe *probe)
{
	/* Like the kernel's bpf fds: close-on-exec. Non-blocking, so a stray read never hangs. */
	int fd = (int)raw_syscall6(SYS_eventfd2, 0, EFD_CLOEXEC | EFD_NONBLOCK, 0, 0, 0, 0);
	if (fd < 0)
		return fd;
	struct server_fd proto = {.kind = kind, .id = id, .probe = probe};
	int rc = install(fd, &proto);
	if (rc < 0)
		raw_syscall6(SYS_close, fd, 0, 0, 0, 0, 0);
	return rc;
}

/* What the kernel says of an fd that is not the object asked for: EBADF if it is not open at all. */
static int not_this_kind(int fd)
{
	return fd < 0 || raw_syscall6(SYS_fcntl, fd, F_GETFD, 0, 0, 0, 0) < 0 ? -EBADF : -EINVAL;
}

int sfd_map_id(int fd)
{
	struct server_fd *e = sfd_get(fd);
	return e && e->kind == SFD_MAP ? (int)e->id : not_this_kind(fd);
}

int sfd_prog_id(int fd)
{
	struct server_fd *e = sfd_get(fd);
	return e && e->kind == SFD_PROG ? (int)e->id : not_this_kind(fd);
}

void sfd_forget(int fd)
{
	struct server_fd *e = sfd_get(fd);
	if (!e)
		return;
	table[fd] = NULL;
	if (e->waker)
		waker_stop(e->waker);
	if (e->kind == SFD_LINK) /* closing a link's fd detaches its program, as in the kernel */
		bpf_link_detach(e);
	if (e->probe)
		perf_probe_put(e->probe);
	else if (e->kind == SFD_MAP || e->kind == SFD_PROG)
		ref_put(e->id);
	free(e);
}

void sfd_copy(int from, int to)
{
	struct server_fd *e = sfd_get(from);
	if (!e || from == to)
		return;
	sfd_forget(to);
	if (!e->probe && (e->kind == SFD_MAP || e->kind == SFD_PROG))
		ref_get(e->id);
	install(to, e);
}

void sfd_each(void (*fn)(int fd, struct server_fd *e))
{
	for (int fd = 0; fd < capacity; fd++)
		if (table[fd])
			fn(fd, table[fd]);
}
