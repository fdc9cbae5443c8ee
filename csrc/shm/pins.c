/* Pins by path: see pins.h. */
#include "pins.h"

#include <errno.h>
#include <string.h>

/* The pin object at `path`, or NULL. Lock held. */
static struct shm_object *find_locked(struct bpftime_shm *shm, const char *path, struct shm_pin **pin)
{
	size_t len = strlen(path);
	for (int i = 0; i < SHM_MAX_OBJECTS; i++) {
		struct shm_object *o = &shm->hdr->objects[i];
		if (!__atomic_load_n(&o->id, __ATOMIC_ACQUIRE) || o->kind != SHM_PIN)
			continue;
		struct shm_pin *p = shm_ptr(shm, o->offset);
		if (p && p->path_len == len && o->size >= sizeof(*p) + len + 1 && !memcmp(p->path, path, len)) {
			*pin = p;
			return o;
		}
	}
	return NULL;
}

static bool named_by_a_pin(struct bpftime_shm *shm, uint32_t target)
{
	for (int i = 0; i < SHM_MAX_OBJECTS; i++) {
		struct shm_object *o = &shm->hdr->objects[i];
		if (!__atomic_load_n(&o->id, __ATOMIC_ACQUIRE) || o->kind != SHM_PIN)
			continue;
		struct shm_pin *p = shm_ptr(shm, o->offset);
		if (p && p->target == target)
			return true;
	}
	return false;
}

int shm_pin_add(struct bpftime_shm *shm, const char *path, uint32_t target)
{
	size_t len = strlen(path);
	struct shm_pin *p;
	shm_lock(&shm->hdr->lock);
	int ret = 0;
	struct shm_object *t = shm_object_find(shm, target);
	if (!t || t->kind == SHM_PIN) {
		ret = -ENOENT;
	} else if (find_locked(shm, path, &p)) {
		ret = -EEXIST;
	} else {
		uint64_t off = shm_alloc_locked(shm, sizeof(*p) + len + 1);
		if (!off) {
			ret = -ENOMEM;
		} else {
			p = shm_ptr(shm, off);
			p->target = target;
			p->path_len = (uint32_t)len;
			memcpy(p->path, path, len + 1);
			struct shm_object *o = shm_object_add_locked(shm, SHM_PIN, "pin", off, sizeof(*p) + len + 1);
			if (!o) {
				shm_free_locked(shm, off);
				ret = -ENOSPC;
			} else {
				o->pinned = 1; /* outlives its creator */
				t->pinned = 1;
			}
		}
	}
	shm_unlock(&shm->hdr->lock);
	return ret;
}

bool shm_pin_names(struct bpftime_shm *shm, uint32_t id)
{
	shm_lock(&shm->hdr->lock);
	bool named = named_by_a_pin(shm, id);
	shm_unlock(&shm->hdr->lock);
	return named;
}

int64_t shm_pin_find(struct bpftime_shm *shm, const char *path)
{
	struct shm_pin *p;
	shm_lock(&shm->hdr->lock);
	int64_t ret = find_locked(shm, path, &p) ? (int64_t)p->target : -ENOENT;
	shm_unlock(&shm->hdr->lock);
	return ret;
}

int shm_pin_remove(struct bpftime_shm *shm, const char *path, uint32_t *target, bool *last)
{
	struct shm_pin *p;
	shm_lock(&shm->hdr->lock);
	struct shm_object *o = find_locked(shm, path, &p);
	if (!o) {
		shm_unlock(&shm->hdr->lock);
		return -ENOENT;
	}
	*target = p->target;
	shm_free_locked(shm, o->offset);
	__atomic_store_n(&o->id, 0, __ATOMIC_RELEASE);
	*last = !named_by_a_pin(shm, *target);
	struct shm_object *t = shm_object_find(shm, *target);
	if (*last && t)
		t->pinned = 0;
	shm_bump_generation(shm);
	shm_unlock(&shm->hdr->lock);
	return 0;
}
