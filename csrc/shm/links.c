/*
 * Links: what a program is attached to (a uprobe or uretprobe at a file
 * offset, a syscall tracepoint), stored in the segment like the kernel's
 * bpf_link, so that agents in traced processes find and install them.
 */
#include "segment.h"
#include "../base/syscall_names.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int bpftime_link_create(struct bpftime_shm *shm, const char *name, const struct bpftime_link_spec *spec)
{
	const char *n = name ? name : "";
	struct shm_object *p = shm_object_find(shm, spec->prog_id);
	if (spec->type == BPFTIME_LINK_DETACH) {
		if (spec->pid <= 0) {
			set_error("link '%s': a detach request names a process (pid > 0)", n);
			return -EINVAL;
		}
	} else if (!p || p->kind != SHM_PROG) {
		set_error("link '%s': no program with id %u", n, spec->prog_id);
		return -EBADF;
	}
	uint32_t type = spec->type & ~BPFTIME_LINK_OVER_KERNEL_PROBE;
	if ((spec->type & BPFTIME_LINK_OVER_KERNEL_PROBE) && type != BPFTIME_LINK_UPROBE &&
	    type != BPFTIME_LINK_URETPROBE) {
		set_error("link '%s': only uprobes and uretprobes take over a kernel probe", n);
		return -EINVAL;
	}
	if (type < BPFTIME_LINK_UPROBE || type > BPFTIME_LINK_UREPLACE) {
		set_error("link '%s': unknown link type %u", n, spec->type);
		return -EINVAL;
	}
	if (spec->flags & ~BPFTIME_LINK_F_FUNC_ENTRY) {
		set_error("link '%s': unknown flags 0x%x", n, spec->flags);
		return -EINVAL;
	}
	if (spec->type == BPFTIME_LINK_UREPLACE && !(spec->flags & BPFTIME_LINK_F_FUNC_ENTRY)) {
		set_error("link '%s': a replace link must be at a function's entry (offset 0 into it)", n);
		return -EINVAL;
	}
	if (memchr(spec->target, 0, sizeof(spec->target)) == NULL) {
		set_error("link '%s': target is not NUL-terminated", n);
		return -EINVAL;
	}
	if (spec->type == BPFTIME_LINK_SYSCALL_TRACEPOINT) {
		/* Only what a process can see of itself: syscalls/ and raw_syscalls/, names we know. */
		struct syscall_tp tp;
		char why[400];
		int rc = syscall_tp_parse(spec->target, &tp, why, sizeof(why));
		if (rc < 0) {
			set_error("link '%s': %s", n, why);
			return rc;
		}
		if (spec->offset > 0xffff) {
			set_error("link '%s': tracepoint id %llu does not fit common_type (u16)", n,
				  (unsigned long long)spec->offset);
			return -EINVAL;
		}
	}
	shm_lock(&shm->hdr->lock);
	uint64_t off = shm_alloc_locked(shm, sizeof(*spec));
	struct shm_object *o = NULL;
	if (off) {
		memcpy(shm_ptr(shm, off), spec, sizeof(*spec));
		o = shm_object_add_locked(shm, SHM_LINK, n, off, sizeof(*spec));
		if (!o)
			shm_free_locked(shm, off);
	}
	shm_unlock(&shm->hdr->lock);
	if (!off) {
		set_error("link '%s': segment '%s' is full", n, shm->name);
		return -ENOMEM;
	}
	return o ? (int)o->id : -ENOSPC;
}

int bpftime_link_info(struct bpftime_shm *shm, uint32_t id, struct bpftime_link_spec *out)
{
	struct shm_object *o = shm_object_find(shm, id);
	if (!o || o->kind != SHM_LINK) {
		set_error("no link with id %u", id);
		return -ENOENT;
	}
	memcpy(out, shm_ptr(shm, o->offset), sizeof(*out));
	return 0;
}
