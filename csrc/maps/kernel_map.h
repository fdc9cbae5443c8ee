/*
 * Maps fronting a kernel map (kernel_map.c) and how a process gets the kernel map's fd
 * (kernel_map_fd.c): from BPF_MAP_GET_FD_BY_ID when it may, else from `bpftime daemon`, which
 * hands fds of the maps it fronts over an abstract unix socket (SCM_RIGHTS), so unprivileged
 * traced processes need no CAP_BPF.
 */
#ifndef BPFTIME_KERNEL_MAP_H
#define BPFTIME_KERNEL_MAP_H

#include "map.h"

/* The daemon's abstract unix socket ("\0" + this): fd requests, and one daemon per machine. */
#define KERNEL_MAP_SOCKET "bpftime-daemon"
#define KERNEL_MAP_REQ_MAGIC 0x6b6d6170u /* "kmap": the kernel map's fd */
#define KERNEL_OUT_REQ_MAGIC 0x6b6f7574u /* "kout": its output program's (kernel_ring.c) */
/* The largest record output into a fronted ring buffer or perf event array (a per-CPU scratch). */
#define KERNEL_RING_MAX_RECORD 32768u
/* Bytes of one key's values across CPUs a fronting map may have (a per-thread buffer). */
#define KERNEL_MAP_MAX_VALUE 4096u
#define KERNEL_MAP_MAX_KEY 512u

struct kernel_map_request {
	uint32_t magic; /* KERNEL_MAP_REQ_MAGIC or KERNEL_OUT_REQ_MAGIC */
	uint32_t map_id; /* kernel map id */
};
struct kernel_map_reply {
	int32_t err; /* 0: the fd comes with it (SCM_RIGHTS); else -errno */
};

/*
 * A fronted array the kernel lets user space map (BPF_F_MMAPABLE: libbpf's .bss, .data, .rodata):
 * in this process, its values in the segment become a shared mapping of the kernel map's own
 * values (read-only when the kernel map is frozen or read-only to programs), so programs and the
 * kernel see each other's stores with no system call. Once per process and map; false when not
 * shared (then operations go through bpf(2)).
 */
HIDDEN bool kernel_map_share_values(struct bpftime_shm *shm, struct shm_map *m);
/*
 * Puts the segment's own pages back where this process mapped the values of fronted maps that
 * are gone, before the range can be reused. The agent calls it each time it follows the segment.
 */
HIDDEN void kernel_map_unshare_stale(struct bpftime_shm *shm);
/* Whether this process maps m's values from the kernel (kernel_map_share_values). */
HIDDEN bool kernel_map_values_shared(const struct shm_map *m);

/* This process's fd for kernel map `id` (kept for the process's life), or -errno. */
HIDDEN int kernel_map_fd(uint32_t id);
/* The fd kept for (what: a request magic, kernel map id), or -ENOENT. */
HIDDEN int kernel_fd_cached(uint32_t what, uint32_t id);
/* Keeps fd for (what, id) for the process's life; returns the fd kept (another thread's, if it won). */
HIDDEN int kernel_fd_keep(uint32_t what, uint32_t id, int fd);
/* Asks `bpftime daemon` for (what, id)'s fd over its socket, or -errno. */
HIDDEN int kernel_fd_from_daemon(uint32_t what, uint32_t id);

/*
 * Output into the kernel ring buffer or perf event array m fronts (kernel_ring.c): the kernel's
 * bpf_ringbuf_output / bpf_perf_event_output result, or -errno.
 */
HIDDEN int kernel_ring_output(const struct shm_map *m, const void *data, uint64_t size, uint64_t flags);
/* bpf_ringbuf_query for the kernel ring buffer m fronts: its own positions (0 if unreachable). */
HIDDEN uint64_t kernel_ring_query(const struct shm_map *m, uint64_t flags);
/* Submit (output to the kernel) or discard a record reserved in m's shadow ring. */
HIDDEN int kernel_ring_commit(struct bpftime_shm *shm, struct shm_map *m, uint32_t *hdr, bool discard,
			      uint64_t flags);

/* bpf(2) on kernel maps, -errno on failure. */
HIDDEN int kernel_map_lookup(int fd, const void *key, void *value);
HIDDEN int kernel_map_update(int fd, const void *key, const void *value, uint64_t flags);
HIDDEN int kernel_map_delete(int fd, const void *key);
HIDDEN int kernel_map_next_key(int fd, const void *key, void *next);
/* A program changed the value it looked up at `value` (in m's shadow): write it to the kernel. */
HIDDEN int kernel_map_write_back(struct bpftime_shm *shm, struct shm_map *m, const void *key);

#endif
