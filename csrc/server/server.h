/*
 * The syscall server: LD_PRELOAD'ed into an unmodified libbpf application
 * (`bpftime load`), it answers the application's bpf(2), perf_event_open,
 * ioctl, mmap and epoll calls on eBPF objects from the shared-memory runtime
 * instead of the kernel. Everything else goes to the kernel untouched.
 */
#ifndef BPFTIME_SERVER_H
#define BPFTIME_SERVER_H

#define _GNU_SOURCE
#include "../base/log.h"
#include "../shm/segment.h"

#include <linux/bpf.h>
#include <stdbool.h>
#include <errno.h>
#include <stdint.h>
#include <sys/types.h>

/* The segment every object lives in; NULL when it could not be opened (calls then fail). */
HIDDEN extern struct bpftime_shm *server_shm;
/* A read-write fd of the segment's file, for mmap of map memory. */
HIDDEN extern int server_shm_fd;

/* Held around every change to the fd table and the objects behind it. */
HIDDEN void server_lock(void);
HIDDEN void server_unlock(void);

/* One line on stderr, "bpftime-server: ...", for refusals and unsupported calls. */
HIDDEN void server_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The name of a bpf(2) command ("BPF_MAP_CREATE"), or "cmd N". */
HIDDEN const char *bpf_cmd_name(int cmd);

/* ---- fds handed to the application: real fds (eventfds), so they never collide with its files ---- */

enum server_fd_kind { SFD_MAP = 1, SFD_PROG, SFD_BTF, SFD_LINK, SFD_PERF_EVENT, SFD_PERF_OUTPUT };

/*
 * A uprobe or tracepoint perf event. It becomes a link in the segment once
 * a program is bound to it (ioctl SET_BPF or BPF_LINK_CREATE) and it is
 * enabled; the perf event fd and any bpf link fd made of it share it.
 */
struct perf_probe {
	struct bpftime_link_spec spec; /* prog_id 0 until a program is bound */
	bool enabled;
	uint32_t link_id; /* the segment's link while bound and enabled */
	uint32_t fds;     /* fds that refer to it */
	pid_t creator;    /* only it changes the link: a forked child's closes do not */
	struct timer_event *timer; /* a timer event (timer_event.c): no link, a thread of ours */
};

/*
 * A PERF_COUNT_SW_BPF_OUTPUT perf event (a perf_buffer's per-CPU fd): the
 * consumer maps it, then stores it in a perf event array; from then on the
 * mapping shows that entry's ring in the segment.
 */
struct perf_output {
	uint64_t va, len;  /* the consumer's mapping, 0 until it maps the fd */
	uint32_t map_id;   /* the perf event array holding it, 0 until stored */
	uint32_t index;
};

struct server_fd {
	uint32_t kind;
	uint32_t id; /* the object's id in the segment (BTF: ours) */
	struct perf_probe *probe;   /* perf events and links */
	struct event_waker *waker;  /* ring buffers and perf outputs watched by epoll or poll */
	struct perf_output output;  /* SFD_PERF_OUTPUT */
};

/* A new placeholder fd for an object; it takes over a reference the caller holds. -errno on failure. */
HIDDEN int sfd_new(uint32_t kind, uint32_t id, struct perf_probe *probe);
/* One more than the highest fd the table can hold. Lock held. */
HIDDEN int sfd_capacity(void);
/* The entry behind fd, or NULL when fd is not one of ours. Lock held. */
HIDDEN struct server_fd *sfd_get(int fd);
/* The id of the map (or program) behind fd: -EBADF when fd is not ours, -EINVAL when another kind. */
HIDDEN int sfd_map_id(int fd);
HIDDEN int sfd_prog_id(int fd);
/* The application closes fd (or dup2 replaces it): forget it, drop its references. Lock held. */
HIDDEN void sfd_forget(int fd);
/* fd `to` becomes a copy of our fd `from` (dup, fcntl F_DUPFD). Lock held. */
HIDDEN void sfd_copy(int from, int to);
/* Calls fn for every fd of ours (for cleanup). Lock held. */
HIDDEN void sfd_each(void (*fn)(int fd, struct server_fd *e));

/* ---- references, as the kernel counts them: fds, programs' maps, links' programs ---- */

/* An object this process created, with one reference (its fd) and the objects it holds. */
HIDDEN void ref_created(uint32_t id, const uint32_t *holds, uint32_t nholds);
HIDDEN void ref_get(uint32_t id);
/* Drops a reference; an object we created goes from the segment with its last one, unless pinned. */
HIDDEN void ref_put(uint32_t id);
/* Deletes the object from the segment, unless it is pinned (it then outlives us). */
HIDDEN void delete_unless_pinned(uint32_t id);
/* BPF_OBJ_PIN: the object and everything it holds outlive this process. */
HIDDEN void ref_pin(uint32_t id);
/* BPF_MAP_FREEZE: user space may no longer write the map. */
HIDDEN void ref_freeze(uint32_t id);
HIDDEN bool ref_frozen(uint32_t id);
/* This process holds a reference to the object (an fd, or an object of its holding it). */
HIDDEN bool ref_held(uint32_t id);

/* ---- commands ---- */

/* bpf(2): the result, or -errno. */
HIDDEN long server_bpf(int cmd, union bpf_attr *attr, unsigned int size);
HIDDEN long bpf_map_command(int cmd, union bpf_attr *attr);
HIDDEN long bpf_prog_load(union bpf_attr *attr);
HIDDEN long bpf_prog_test_run(union bpf_attr *attr);
/* BPF_PROG_TEST_RUN of a syscall program `id` (prog_test_run.c). */
HIDDEN long prog_test_run_syscall(union bpf_attr *attr, uint32_t id);
HIDDEN long bpf_btf_load(union bpf_attr *attr);
HIDDEN long bpf_btf_by_id(int cmd, union bpf_attr *attr);
HIDDEN long bpf_btf_info(struct server_fd *e, union bpf_attr *attr);
/* The bytes of the BTF behind fd (NULL: not a BTF fd of ours). Lock held. */
HIDDEN const uint8_t *server_btf_bytes(int fd, uint32_t *size);
/*
 * BPF_MAP_CREATE's BTF (btf_fd, key and value type ids), checked as the kernel checks it
 * against the sizes; *spin_lock_off gets the offset + 1 of a struct bpf_spin_lock at the value's
 * top level (0: none). 0 or -errno. Lock held.
 */
HIDDEN long map_btf_check(const union bpf_attr *attr, uint32_t *spin_lock_off);
/* BPF_BTF_LOAD's check of special fields, as the kernel's: a struct with two struct bpf_spin_lock
 * (-E2BIG), or one not 4-byte aligned (-EFAULT). 0 otherwise (and for BTF it cannot parse). */
HIDDEN long btf_check_special_fields(const uint8_t *data, uint32_t size);
/* BPF_OBJ_GET_INFO_BY_FD's copy-out: `have` bytes, the caller's extra bytes checked to be zero. */
HIDDEN long server_info_out(union bpf_attr *attr, const void *info, uint32_t have);
HIDDEN long bpf_link_create(union bpf_attr *attr);
HIDDEN long bpf_link_detach(struct server_fd *e);
/* Pins by path and links by id (pins.c). */
HIDDEN long server_obj_pin(union bpf_attr *attr);
HIDDEN long server_obj_get(union bpf_attr *attr, unsigned int size);
HIDDEN long server_link_fd_by_id(union bpf_attr *attr);

/* perf_event_open for probes we answer: the fd, -errno, or 1 when the kernel should have it. */
HIDDEN long server_perf_event_open(void *attr, int pid, int cpu, int group_fd, unsigned long flags);
/* ioctl on a perf event fd of ours. */
HIDDEN long perf_probe_ioctl(struct server_fd *e, unsigned long req, unsigned long arg);
/* The last fd of a probe is gone: its link goes too. */
HIDDEN void perf_probe_put(struct perf_probe *p);

/* ---- timer perf events (interval probes): programs run here, on a thread per event ---- */
struct perf_event_attr;
HIDDEN int timer_event_open(const struct perf_event_attr *attr, int pid, int cpu, unsigned long flags);
/* Runs the bound program every period while bound and enabled, else stops it. */
HIDDEN long timer_event_sync(struct perf_probe *p);
HIDDEN void timer_event_free(struct timer_event *t);
/* Binds program `prog_id` (a reference is taken) with a cookie. */
HIDDEN long perf_probe_bind(struct perf_probe *p, uint32_t prog_id, uint64_t cookie);

/* ---- ring buffers and perf outputs under epoll and poll ---- */

/* epoll_ctl / epoll_wait on sets that may hold ring buffer or perf output fds of ours. */
HIDDEN void waker_epoll_ctl(int epfd, int op, int fd);
HIDDEN void waker_before_epoll_wait(int epfd);
/* poll / ppoll on fds that may be ours. */
struct pollfd;
HIDDEN void waker_before_poll(const struct pollfd *fds, unsigned long n);
/* An fd closes: if it was an epoll set, forget what it watched. */
HIDDEN void waker_fd_closed(int fd);
/* The fd closes: its waker ends. Lock held. */
HIDDEN void waker_stop(struct event_waker *w);
/* A perf output was stored in a perf event array: its waker watches that entry. Lock held. */
HIDDEN void waker_rebind(struct event_waker *w, uint32_t map_id, int64_t index);

/*
 * Where an mmap of one of our fds goes: the caller's fixed address, or fresh
 * private anonymous memory with `prot` (to be covered by segment pages).
 * *fixed tells which, for undoing. -errno on failure.
 */
HIDDEN long server_mapping_address(void *addr, size_t len, int prot, int flags, bool *fixed);

/* ---- perf buffers ---- */

/* mmap of a perf output fd; map update storing one in a perf event array. Lock held. */
HIDDEN long perf_output_mmap(struct server_fd *e, void *addr, size_t len, int prot, int flags, off_t off);
HIDDEN void perf_output_store(int fd, uint32_t map_id, uint32_t index);
HIDDEN long perf_output_ioctl(unsigned long req);
/* The perf event array with this id, or NULL. */
struct shm_map;
HIDDEN struct shm_map *perf_array(uint32_t map_id);

/* Whether file offset `offset` of ELF file `path` is a function's first instruction (elf_entry.c). */
HIDDEN bool elf_function_entry(const char *path, uint64_t offset);

#endif
