/* Programs stored in the segment: name, type and instructions, for `tool run` and the agent. */
#include "segment.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

struct shm_prog {
	uint32_t type; /* enum bpf_prog_type */
	uint32_t ninsns;
	char name[SHM_NAME_LEN];
	uint8_t insns[]; /* ninsns * 8 bytes */
};

int bpftime_prog_create(struct bpftime_shm *shm, const char *name, uint32_t type, const void *insns,
			uint64_t len)
{
	if (!insns || len == 0 || len % 8 || len / 8 > BPFTIME_MAX_INSNS) {
		set_error("program '%s': %llu bytes is not a whole number of instructions (1 to %d)",
			      name ? name : "", (unsigned long long)len, BPFTIME_MAX_INSNS);
		return -EINVAL;
	}
	shm_lock(&shm->hdr->lock);
	uint64_t off = shm_alloc_locked(shm, sizeof(struct shm_prog) + len);
	if (!off) {
		shm_unlock(&shm->hdr->lock);
		set_error("program '%s': segment '%s' has no room for %llu bytes", name ? name : "",
			      shm->name, (unsigned long long)len);
		return -ENOMEM;
	}
	struct shm_prog *p = shm_ptr(shm, off);
	p->type = type;
	p->ninsns = (uint32_t)(len / 8);
	snprintf(p->name, sizeof(p->name), "%s", name ? name : "");
	memcpy(p->insns, insns, len);
	struct shm_object *o = shm_object_add_locked(shm, SHM_PROG, name, off, sizeof(*p) + len);
	if (!o)
		shm_free_locked(shm, off);
	shm_unlock(&shm->hdr->lock);
	return o ? (int)o->id : -ENOSPC;
}

/* Copies up to `cap` bytes of the program's instructions; returns its length in bytes. */
int64_t bpftime_prog_code(struct bpftime_shm *shm, uint32_t id, void *out, uint64_t cap,
			  uint32_t *type)
{
	struct shm_object *o = shm_object_find(shm, id);
	if (!o || o->kind != SHM_PROG) {
		set_error("no program with id %u", id);
		return -ENOENT;
	}
	const struct shm_prog *p = shm_ptr(shm, o->offset);
	uint64_t len = (uint64_t)p->ninsns * 8;
	if (out)
		memcpy(out, p->insns, len < cap ? len : cap);
	if (type)
		*type = p->type;
	return (int64_t)len;
}
