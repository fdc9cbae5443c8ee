/*
 * epoll and poll on ring buffer and perf output fds. Producers in other
 * processes wake consumers with a futex in the segment; epoll and poll need
 * an fd. Each watched fd gets a waker thread that sleeps on the futex and
 * makes the fd (an eventfd) readable when records arrive. Before every
 * epoll_wait or poll on such fds, the server drains their eventfds and either
 * marks one readable at once (records are waiting) or arms its waker.
 * Nothing polls: an idle consumer sleeps in the kernel, its waker on the futex.
 */
#include "../maps/perf_event_array.h" /* before libc headers: they define F_LOCK */
#include "server.h"

#include "raw_syscall.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <time.h>

struct event_waker {
	/* What it watches: ring buffer map_id (index -1) or entry `index` of perf event array map_id. */
	uint32_t map_id;
	int64_t index;
	int efd;        /* our own dup of the fd: valid until the thread ends */
	uint32_t armed; /* futex: the consumer waits, wake it when records arrive */
	uint32_t stop;
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

static bool has_records(const struct event_waker *w)
{
	uint32_t id = __atomic_load_n(&w->map_id, __ATOMIC_ACQUIRE);
	int64_t index = __atomic_load_n(&w->index, __ATOMIC_ACQUIRE);
	if (index < 0) {
		struct bpftime_ringbuf_info info;
		return bpftime_ringbuf_info(server_shm, id, &info) == 0 &&
		       __atomic_load_n(info.producer_pos, __ATOMIC_ACQUIRE) !=
			       __atomic_load_n(info.consumer_pos, __ATOMIC_ACQUIRE);
	}
	struct shm_map *m = perf_array(id);
	return m && index < m->max_entries && pea_has_records(server_shm, m, (uint32_t)index);
}

/* Sleeps until records arrive or about a second passes (so a deleted map is noticed). */
static bool wait_records(const struct event_waker *w)
{
	uint32_t id = __atomic_load_n(&w->map_id, __ATOMIC_ACQUIRE);
	int64_t index = __atomic_load_n(&w->index, __ATOMIC_ACQUIRE);
	if (index < 0)
		return bpftime_ringbuf_wait(server_shm, id, 1000) == 1;
	struct shm_map *m = perf_array(id);
	if (m && index < m->max_entries)
		return pea_wait(server_shm, m, (uint32_t)index, 1000) == 1;
	struct timespec second = {1, 0}; /* not stored in a perf event array yet */
	nanosleep(&second, NULL);
	return false;
}

static void *waker_main(void *arg)
{
	struct event_waker *w = arg;
	while (!__atomic_load_n(&w->stop, __ATOMIC_ACQUIRE)) {
		if (!__atomic_load_n(&w->armed, __ATOMIC_ACQUIRE)) {
			/* Sleep until armed or stopped (both wake this futex). */
			raw_syscall6(SYS_futex, (long)&w->armed, FUTEX_WAIT, 0, 0, 0, 0);
			continue;
		}
		if (wait_records(w) && __atomic_exchange_n(&w->armed, 0, __ATOMIC_ACQ_REL))
			signal_fd(w->efd);
	}
	raw_syscall6(SYS_close, w->efd, 0, 0, 0, 0, 0);
	free(w);
	return NULL;
}

/* What fd watches, when it is a ring buffer or a perf output of ours. */
static bool watchable(const struct server_fd *e, uint32_t *map_id, int64_t *index)
{
	if (!e)
		return false;
	if (e->kind == SFD_PERF_OUTPUT) {
		*map_id = e->output.map_id;
		*index = e->output.index;
		return true;
	}
	struct bpftime_map_info m;
	if (e->kind != SFD_MAP || bpftime_map_info(server_shm, e->id, &m) < 0 || m.type != BPF_MAP_TYPE_RINGBUF)
		return false;
	*map_id = e->id;
	*index = -1;
	return true;
}

/* The fd's waker, started on first use. Lock held. */
static struct event_waker *waker_of(int fd)
{
	struct server_fd *e = sfd_get(fd);
	uint32_t map_id;
	int64_t index;
	if (!server_shm || !watchable(e, &map_id, &index))
		return NULL;
	if (e->waker)
		return e->waker;
	struct event_waker *w = calloc(1, sizeof(*w));
	if (!w)
		return NULL;
	w->map_id = map_id;
	w->index = index;
	w->efd = (int)raw_syscall6(SYS_fcntl, fd, F_DUPFD_CLOEXEC, 0, 0, 0, 0);
	pthread_t t;
	pthread_attr_t a;
	pthread_attr_init(&a);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&a, 64 << 10);
	/*
	 * All signals blocked in the waker (it inherits the mask): a process signal such as Ctrl-C's
	 * SIGINT must reach the application's threads, which a waker sleeping on a futex would
	 * swallow (the handler would run here, and the application's epoll_wait go on sleeping).
	 */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	bool ok = w->efd >= 0 && pthread_create(&t, &a, waker_main, w) == 0;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&a);
	if (!ok) {
		if (w->efd >= 0)
			raw_syscall6(SYS_close, w->efd, 0, 0, 0, 0, 0);
		free(w);
		server_log("fd %d: cannot start the thread that wakes its consumer", fd);
		return NULL;
	}
	return e->waker = w;
}

void waker_stop(struct event_waker *w)
{
	__atomic_store_n(&w->stop, 1, __ATOMIC_RELEASE);
	__atomic_store_n(&w->armed, 1, __ATOMIC_RELEASE);
	futex_wake(&w->armed);
	/* The thread frees w after its bounded wait. */
}

void waker_rebind(struct event_waker *w, uint32_t map_id, int64_t index)
{
	__atomic_store_n(&w->index, index, __ATOMIC_RELEASE);
	__atomic_store_n(&w->map_id, map_id, __ATOMIC_RELEASE);
}

/* Before the consumer sleeps: readable now if records wait, else the waker watches for them. */
static void prepare(struct event_waker *w)
{
	uint64_t drained;
	raw_syscall6(SYS_read, w->efd, (long)&drained, 8, 0, 0, 0);
	if (has_records(w)) {
		signal_fd(w->efd);
	} else {
		__atomic_store_n(&w->armed, 1, __ATOMIC_RELEASE);
		futex_wake(&w->armed);
	}
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

void waker_epoll_ctl(int epfd, int op, int fd)
{
	server_lock();
	if (op == EPOLL_CTL_DEL) {
		unwatch(epfd, fd);
	} else if (op == EPOLL_CTL_ADD && waker_of(fd)) {
		struct watch *w = malloc(sizeof(*w));
		if (w) {
			*w = (struct watch){epfd, fd, watches};
			watches = w;
		}
	}
	server_unlock();
}

void waker_before_epoll_wait(int epfd)
{
	if (!__atomic_load_n(&watches, __ATOMIC_ACQUIRE))
		return;
	server_lock();
	for (struct watch *w = watches; w; w = w->next) {
		struct server_fd *e = w->epfd == epfd ? sfd_get(w->fd) : NULL;
		if (e && e->waker)
			prepare(e->waker);
	}
	server_unlock();
}

void waker_before_poll(const struct pollfd *fds, unsigned long n)
{
	server_lock();
	for (unsigned long i = 0; i < n; i++) {
		struct event_waker *w = sfd_get(fds[i].fd) ? waker_of(fds[i].fd) : NULL;
		if (w)
			prepare(w);
	}
	server_unlock();
}

void waker_fd_closed(int fd)
{
	if (!__atomic_load_n(&watches, __ATOMIC_ACQUIRE))
		return;
	server_lock();
	unwatch(fd, -1);
	unwatch(-1, fd);
	server_unlock();
}
