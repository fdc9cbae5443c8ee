/*
 * Objects belong to the process that created them until pinned, as kernel
 * objects belong to fds; deleting one (any kind) frees its data.
 */
#include "segment.h"

#include <errno.h>
#include <signal.h>
#include <sys/types.h>

int bpftime_object_set_pinned(struct bpftime_shm *shm, uint32_t id, int pinned)
{
	shm_lock(&shm->hdr->lock);
	struct shm_object *o = shm_object_find(shm, id);
	if (o)
		o->pinned = pinned != 0;
	shm_unlock(&shm->hdr->lock);
	if (!o) {
		set_error("no object with id %u", id);
		return -ENOENT;
	}
	return 0;
}

static shm_teardown_fn teardown[SHM_LINK + 1];

void shm_set_teardown(uint32_t kind, shm_teardown_fn fn)
{
	if (kind <= SHM_LINK)
		teardown[kind] = fn;
}

int bpftime_object_delete(struct bpftime_shm *shm, uint32_t id)
{
	shm_lock(&shm->hdr->lock);
	struct shm_object *o = shm_object_find(shm, id);
	if (!o) {
		shm_unlock(&shm->hdr->lock);
		set_error("no object with id %u", id);
		return -ENOENT;
	}
	if (o->kind <= SHM_LINK && teardown[o->kind])
		teardown[o->kind](shm, shm_ptr(shm, o->offset));
	shm_free_locked(shm, o->offset);
	__atomic_store_n(&o->id, 0, __ATOMIC_RELEASE);
	shm_bump_generation(shm);
	shm_unlock(&shm->hdr->lock);
	return 0;
}

int bpftime_objects_release(struct bpftime_shm *shm, int32_t pid)
{
	/* Links go first, so agents stop running programs before their maps disappear. */
	static const uint32_t order[] = {SHM_LINK, SHM_PROG, SHM_MAP};
	int released = 0;
	for (unsigned k = 0; k < sizeof(order) / sizeof(order[0]); k++) {
		for (int i = 0; i < SHM_MAX_OBJECTS; i++) {
			const struct shm_object *o = &shm->hdr->objects[i];
			uint32_t id = __atomic_load_n(&o->id, __ATOMIC_ACQUIRE);
			if (id && o->kind == order[k] && o->owner == pid && !o->pinned &&
			    bpftime_object_delete(shm, id) == 0)
				released++;
		}
	}
	return released;
}

int bpftime_objects_release_dead(struct bpftime_shm *shm)
{
	int32_t checked[64];
	int n = 0, released = 0;
	for (int i = 0; i < SHM_MAX_OBJECTS; i++) {
		const struct shm_object *o = &shm->hdr->objects[i];
		if (!__atomic_load_n(&o->id, __ATOMIC_ACQUIRE) || o->pinned)
			continue;
		int32_t pid = __atomic_load_n(&o->owner, __ATOMIC_RELAXED);
		bool seen = false;
		for (int k = 0; k < n && !seen; k++)
			seen = checked[k] == pid;
		if (seen || pid <= 0)
			continue;
		if (n < (int)(sizeof(checked) / sizeof(checked[0])))
			checked[n++] = pid;
		/* EPERM: alive, someone else's. Only ESRCH says the owner is gone. */
		if (kill(pid, 0) < 0 && errno == ESRCH)
			released += bpftime_objects_release(shm, pid);
	}
	return released;
}
