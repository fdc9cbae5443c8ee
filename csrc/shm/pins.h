/*
 * Pins by path (BPF_OBJ_PIN / BPF_OBJ_GET of the syscall server): each pin is
 * an object of kind SHM_PIN in the segment, holding the pinned object's id and
 * the path, so every process of the segment finds it. A pin is never released
 * with its creator; its target stays pinned while any pin names it.
 */
#ifndef BPFTIME_SHM_PINS_H
#define BPFTIME_SHM_PINS_H

#include "segment.h"

struct shm_pin {
	uint32_t target;   /* the pinned map, program or link */
	uint32_t path_len; /* without the terminating zero */
	char path[];
};

/* 0; -EEXIST (the path is taken), -ENOENT (no object `target`), -ENOMEM / -ENOSPC (full). */
HIDDEN int shm_pin_add(struct bpftime_shm *shm, const char *path, uint32_t target);
/* The id pinned at `path`, or -ENOENT. */
HIDDEN int64_t shm_pin_find(struct bpftime_shm *shm, const char *path);
/* Some pin names object `id`. */
HIDDEN bool shm_pin_names(struct bpftime_shm *shm, uint32_t id);
/*
 * Removes the pin at `path`: its target in *target; *last tells whether no other pin names it
 * (its pinned mark is then cleared). 0 or -ENOENT.
 */
HIDDEN int shm_pin_remove(struct bpftime_shm *shm, const char *path, uint32_t *target, bool *last);

#endif
