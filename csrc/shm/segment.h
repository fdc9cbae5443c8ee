/*
 * The shared-memory segment: one file under /dev/shm that the control plane
 * and every traced process map, each at its own address. Everything inside
 * refers to everything else by offset from the segment's start.
 */
#ifndef BPFTIME_SEGMENT_H
#define BPFTIME_SEGMENT_H

#include "../base/base.h"
#include "../base/error.h"
#include "../include/bpftime.h"

#include <pthread.h>
#include <sys/types.h>
#include <stdbool.h>
#include <stdint.h>

#define SHM_MAGIC 0x4d48534d49545042ull /* "BPTIMSHM" */
/*
 * 3: each map type has its own struct after the common map header; 4: lock-free ring buffer
 * producers; 5: links carry ref_ctr_offset and flags (USDT semaphores, function entries);
 * 6: pins (SHM_PIN); 7: the map header names the kernel map a map fronts; 8: 4- and 8-byte
 * hash keys hashed as words (base/map_hash.h), so elements' stored hashes differ from 7's.
 */
#define SHM_LAYOUT_VERSION 8
#define SHM_MAX_OBJECTS 1024
#define SHM_NAME_LEN 16

enum shm_kind { SHM_FREE = 0, SHM_MAP = 1, SHM_PROG = 2, SHM_LINK = 3, SHM_PIN = 4 /* shm/pins.h */ };

struct shm_object {
	uint32_t id;   /* 0 when the slot is free */
	uint32_t kind; /* enum shm_kind */
	char name[SHM_NAME_LEN];
	uint64_t offset; /* of the object's data */
	uint64_t size;
	int32_t owner;   /* pid of the process that created it */
	uint32_t pinned; /* kept when its owner goes (BPF_OBJ_PIN) */
};

struct shm_header {
	uint64_t magic;
	uint32_t version;
	uint32_t header_size;
	uint64_t size;        /* bytes in the segment */
	pthread_mutex_t lock; /* robust, process-shared: allocator and object table */
	uint64_t heap_start;
	uint64_t free_head; /* offset of the first free block, sorted by offset */
	uint64_t heap_used;
	uint32_t next_id;
	uint32_t generation; /* bumped on every object table change */
	struct shm_object objects[SHM_MAX_OBJECTS];
};

/* A free or used heap block; user data follows the header. */
struct shm_block {
	uint64_t size; /* including this header */
	uint64_t next; /* next free block (free blocks only) */
};

struct bpftime_shm {
	struct shm_header *hdr;
	uint8_t *base;
	uint64_t size;
	char name[256];
	int fd; /* kept open: size checks (bpftime_shm_check), mmap of map pages, inheritance */
};

static inline void *shm_ptr(const struct bpftime_shm *shm, uint64_t off)
{
	return off ? shm->base + off : NULL;
}
static inline uint64_t shm_off(const struct bpftime_shm *shm, const void *p)
{
	return p ? (uint64_t)((const uint8_t *)p - shm->base) : 0;
}

/*
 * A segment a process inherited as descriptor `fd` (BPFTIME_SHM_FD: the name may
 * no longer be ours to open after setuid): the same trust checks as by name.
 */
HIDDEN struct bpftime_shm *shm_open_inherited(int fd, const char *name, const char *group);
HIDDEN int shm_fd(const struct bpftime_shm *shm);
/* Moves the segment's descriptor to the lowest free one >= min_fd (close-on-exec): its fd or -errno. */
HIDDEN int shm_move_fd(struct bpftime_shm *shm, int min_fd);
/* bpftime_shm_check's quick half (size and header; not the object table), for hot waits. */
HIDDEN bool shm_intact(const struct bpftime_shm *shm);

/* Robust process-shared mutexes: a holder that died leaves the lock usable. */
HIDDEN int shm_mutex_init(pthread_mutex_t *m);
HIDDEN void shm_lock(pthread_mutex_t *m);
HIDDEN void shm_unlock(pthread_mutex_t *m);

/* This process's id, cached (a forked child asks again). */
HIDDEN uint32_t shm_self_pid(void);

/* Heap: zeroed blocks of at least `size` bytes, or 0 when the segment is full. Lock held. */
HIDDEN uint64_t shm_alloc_locked(struct bpftime_shm *shm, uint64_t size);
HIDDEN void shm_free_locked(struct bpftime_shm *shm, uint64_t off);

/* The generation changes with every object table change; agents sleep until it does. */
HIDDEN void shm_bump_generation(struct bpftime_shm *shm);
/* 1 when the generation differs from `seen` (or may: woken), 0 on timeout. */
HIDDEN int shm_wait_generation(struct bpftime_shm *shm, uint32_t seen, int timeout_ms);

/* Object table. Lock held. */
HIDDEN struct shm_object *shm_object_add_locked(struct bpftime_shm *shm, uint32_t kind,
						const char *name, uint64_t offset, uint64_t size);
HIDDEN struct shm_object *shm_object_find(const struct bpftime_shm *shm, uint32_t id);

/*
 * Type-specific teardown of an object of `kind` just before bpftime_object_delete
 * frees its data (lock held). The layer that owns the kind registers it (maps/,
 * when the library loads), so the segment needs to know nothing of maps.
 */
typedef void (*shm_teardown_fn)(struct bpftime_shm *shm, void *data);
HIDDEN void shm_set_teardown(uint32_t kind, shm_teardown_fn fn);

#endif
