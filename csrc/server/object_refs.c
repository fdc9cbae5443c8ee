/*
 * Reference counts of the objects this process uses, as the kernel keeps
 * them: an fd holds its object, a program holds the maps it uses, a link
 * holds its program. An object this process created leaves the segment
 * with its last reference, unless pinned; objects other processes created
 * (opened by id) are only counted.
 */
#include "server.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct obj_ref {
	uint32_t id;
	uint32_t refs;
	bool created; /* by this process: deleted with its last reference */
	pid_t creator; /* a forked child closing its copies of the fds deletes nothing */
	bool frozen;
	uint32_t nholds;
	uint32_t *holds;
	struct obj_ref *next;
};

static struct obj_ref *refs;

static bool is_pinned(uint32_t id)
{
	const struct shm_object *o = server_shm ? shm_object_find(server_shm, id) : NULL;
	return o && o->pinned;
}

void delete_unless_pinned(uint32_t id)
{
	if (server_shm && !is_pinned(id))
		bpftime_object_delete(server_shm, id);
}

static struct obj_ref *find(uint32_t id)
{
	for (struct obj_ref *r = refs; r; r = r->next)
		if (r->id == id)
			return r;
	return NULL;
}

static struct obj_ref *add(uint32_t id)
{
	struct obj_ref *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->id = id;
	r->next = refs;
	refs = r;
	return r;
}

void ref_created(uint32_t id, const uint32_t *holds, uint32_t nholds)
{
	struct obj_ref *r = add(id);
	if (!r)
		return; /* the object then lives until the process ends (see server_exit) */
	r->refs = 1;
	r->created = true;
	r->creator = getpid();
	if (nholds && (r->holds = malloc(sizeof(*holds) * nholds))) {
		memcpy(r->holds, holds, sizeof(*holds) * nholds);
		r->nholds = nholds;
		for (uint32_t i = 0; i < nholds; i++)
			ref_get(holds[i]);
	}
}

void ref_get(uint32_t id)
{
	struct obj_ref *r = find(id);
	if (!r && !(r = add(id)))
		return;
	r->refs++;
}

static void unlink_ref(struct obj_ref *gone)
{
	for (struct obj_ref **p = &refs; *p; p = &(*p)->next)
		if (*p == gone) {
			*p = gone->next;
			return;
		}
}

void ref_put(uint32_t id)
{
	struct obj_ref *r = find(id);
	if (!r || !r->refs || --r->refs)
		return;
	unlink_ref(r);
	bool pinned = is_pinned(id);
	if (r->created && r->creator == getpid())
		delete_unless_pinned(id);
	for (uint32_t i = 0; !pinned && i < r->nholds; i++) /* a pinned object keeps what it holds */
		ref_put(r->holds[i]);
	free(r->holds);
	free(r);
}

void ref_pin(uint32_t id)
{
	bpftime_object_set_pinned(server_shm, id, 1);
	struct obj_ref *r = find(id);
	for (uint32_t i = 0; r && i < r->nholds; i++)
		ref_pin(r->holds[i]);
}

void ref_freeze(uint32_t id)
{
	struct obj_ref *r = find(id);
	if (r)
		r->frozen = true;
}

bool ref_frozen(uint32_t id)
{
	struct obj_ref *r = find(id);
	return r && r->frozen;
}

bool ref_held(uint32_t id)
{
	struct obj_ref *r = find(id);
	return r && r->refs;
}
