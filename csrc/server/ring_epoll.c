/*
 * epoll on ring buffer fds. Producers in other processes wake consumers with
 * a futex in the segment; epoll needs an fd. Each watched ring gets a waker
 * thread that sleeps on the futex and makes the ring's eventfd readable when
 * records arrive. Before every epoll_wait on a set holding rings, the server
 * drains their eventfds and either marks a ring readable at once (records are
 * waiting) or arms its waker. Nothing polls: an idle consumer sleeps in
 * epoll_wait and its waker sleeps on the futex.
 */
#include "server.h"

#include "raw_syscall.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <time.h>

struct ring_waker {
	uint32_t map_id;
	int efd;        /* our own dup of the ring's eventfd: valid until the thread ends */
	uint32_t armed; /* futex: the consumer waits, wake it when records arrive */
	uint32_t stop;  /* futex too */
};

struct watch {
	int epfd, fd;
	struct watch *next;
};
static struct watch *watches; /* under the server lock */

static void futex_wake(uint32_t *word)
{
	raw_syscall6(SYS_futex, (long)word, FUTEX_WAKE, 1, 0, 0, 0);
}

static void signal_fd(int efd)
{
	uint64_t one = 1;
	raw_syscall6(SYS_write, efd, (long)&one, 8, 0, 0, 0);
}

static uint64_t ring_available(uint32_t id)
{
	struct bpftime_ringbuf_info info;
	if (bpftime_ringbuf_info(server_shm, id, &info) < 0)
		return 0;
	return __atomic_load_n(info.producer_pos, __ATOMIC_ACQUIRE) -
	       __atomic_load_n(info.consumer_pos, __ATOMIC_ACQUIRE);
}

static void *waker_main(void *arg)
{
	struct ring_waker *w = arg;
	while (!__atomic_load_n(&w->stop, __ATOMIC_ACQUIRE)) {
		if (!__atomic_load_n(&w->armed, __ATOMIC_ACQUIRE)) {
			/* Sleep until armed or stopped (both wake this futex). */
			raw_syscall6(SYS_futex, (long)&w->armed, FUTEX_WAIT, 0, 0, 0, 0);
			continue;
		}
		/* A bounded wait, so a ring deleted under us is noticed. */
		if (bpftime_ringbuf_wait(server_shm, w->map_id, 1000) == 1 &&
		    __atomic_exchange_n(&w->armed, 0, __ATOMIC_ACQ_REL))
			signal_fd(w->efd);
	}
	raw_syscall6(SYS_close, w->efd, 0, 0, 0, 0, 0);
	free(w);
	return NULL;
}

static struct ring_waker *waker_start(int fd, uint32_t map_id)
{
	struct ring_waker *w = calloc(1, sizeof(*w));
	if (!w)
		return NULL;
	w->map_id = map_id;
	w->efd = (int)raw_syscall6(SYS_fcntl, fd, F_DUPFD_CLOEXEC, 0, 0, 0, 0);
	pthread_t t;
	pthread_attr_t a;
	pthread_attr_init(&a);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&a, 64 << 10);
	bool ok = w->efd >= 0 && pthread_create(&t, &a, waker_main, w) == 0;
	pthread_attr_destroy(&a);
	if (!ok) {
		if (w->efd >= 0)
			raw_syscall6(SYS_close, w->efd, 0, 0, 0, 0, 0);
		free(w);
		return NULL;
	}
	return w;
}

void ring_waker_stop(struct ring_waker *w)
{
	__atomic_store_n(&w->stop, 1, __ATOMIC_RELEASE);
	__atomic_store_n(&w->armed, 1, __ATOMIC_RELEASE);
	futex_wake(&w->armed);
	/* The thread frees w; the fd going away is noticed within its bounded wait. */
}

static bool is_ring(const struct server_fd *e)
{
	struct bpftime_map_info m;
	return e && e->kind == SFD_MAP && bpftime_map_info(server_shm, e->id, &m) == 0 &&
	       m.type == BPF_MAP_TYPE_RINGBUF;
}

static void unwatch(int epfd, int fd)
{
	for (struct watch **p = &watches; *p;) {
		struct watch *w = *p;
		if ((epfd < 0 || w->epfd == epfd) && (fd < 0 || w->fd == fd)) {
			*p = w->next;
			free(w);
		} else {
			p = &w->next;
		}
	}
}

void ring_epoll_ctl(int epfd, int op, int fd)
{
	server_lock();
	struct server_fd *e = sfd_get(fd);
	if (server_shm && is_ring(e)) {
		if (op == EPOLL_CTL_ADD) {
			struct watch *w = malloc(sizeof(*w));
			if (!e->waker)
				e->waker = waker_start(fd, e->id);
			if (w && e->waker) {
				*w = (struct watch){epfd, fd, watches};
				watches = w;
			} else {
				free(w);
				server_log("epoll on ring buffer fd %d: cannot start its waker", fd);
			}
		} else if (op == EPOLL_CTL_DEL) {
			unwatch(epfd, fd);
		}
	}
	server_unlock();
}

void ring_epoll_before_wait(int epfd)
{
	if (!__atomic_load_n(&watches, __ATOMIC_ACQUIRE))
		return;
	server_lock();
	for (struct watch *w = watches; w; w = w->next) {
		if (w->epfd != epfd)
			continue;
		struct server_fd *e = sfd_get(w->fd);
		if (!e || !e->waker)
			continue;
		uint64_t drained;
		raw_syscall6(SYS_read, e->waker->efd, (long)&drained, 8, 0, 0, 0);
		if (ring_available(e->id)) {
			signal_fd(e->waker->efd);
		} else {
			__atomic_store_n(&e->waker->armed, 1, __ATOMIC_RELEASE);
			futex_wake(&e->waker->armed);
		}
	}
	server_unlock();
}

void ring_epoll_closed(int fd)
{
	if (!__atomic_load_n(&watches, __ATOMIC_ACQUIRE))
		return;
	server_lock();
	unwatch(fd, -1);
	unwatch(-1, fd);
	server_unlock();
}
