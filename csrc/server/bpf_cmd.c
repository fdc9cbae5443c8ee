/* bpf(2): checks the attribute block as the kernel does, then hands each command to its handler. */
#include "server.h"

#include "../base/safe_copy.h"
#include "../maps/map.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ENDOF(field) (offsetof(union bpf_attr, field) + sizeof(((union bpf_attr *)0)->field))

static const char *const cmd_names[] = {
	"BPF_MAP_CREATE", "BPF_MAP_LOOKUP_ELEM", "BPF_MAP_UPDATE_ELEM", "BPF_MAP_DELETE_ELEM",
	"BPF_MAP_GET_NEXT_KEY", "BPF_PROG_LOAD", "BPF_OBJ_PIN", "BPF_OBJ_GET", "BPF_PROG_ATTACH",
	"BPF_PROG_DETACH", "BPF_PROG_TEST_RUN", "BPF_PROG_GET_NEXT_ID", "BPF_MAP_GET_NEXT_ID",
	"BPF_PROG_GET_FD_BY_ID", "BPF_MAP_GET_FD_BY_ID", "BPF_OBJ_GET_INFO_BY_FD", "BPF_PROG_QUERY",
	"BPF_RAW_TRACEPOINT_OPEN", "BPF_BTF_LOAD", "BPF_BTF_GET_FD_BY_ID", "BPF_TASK_FD_QUERY",
	"BPF_MAP_LOOKUP_AND_DELETE_ELEM", "BPF_MAP_FREEZE", "BPF_BTF_GET_NEXT_ID", "BPF_MAP_LOOKUP_BATCH",
	"BPF_MAP_LOOKUP_AND_DELETE_BATCH", "BPF_MAP_UPDATE_BATCH", "BPF_MAP_DELETE_BATCH",
	"BPF_LINK_CREATE", "BPF_LINK_UPDATE", "BPF_LINK_GET_FD_BY_ID", "BPF_LINK_GET_NEXT_ID",
	"BPF_ENABLE_STATS", "BPF_ITER_CREATE", "BPF_LINK_DETACH", "BPF_PROG_BIND_MAP",
};

const char *bpf_cmd_name(int cmd)
{
	static __thread char other[24];
	if (cmd >= 0 && cmd < (int)(sizeof(cmd_names) / sizeof(cmd_names[0])))
		return cmd_names[cmd];
	snprintf(other, sizeof(other), "cmd %d", cmd);
	return other;
}

/* Where each command's attributes end: the kernel refuses non-zero bytes after them (CHECK_ATTR). */
static size_t attr_end(int cmd)
{
	switch (cmd) {
	case BPF_MAP_CREATE: return ENDOF(map_extra);
	case BPF_MAP_LOOKUP_ELEM: case BPF_MAP_UPDATE_ELEM: case BPF_MAP_DELETE_ELEM:
	case BPF_MAP_GET_NEXT_KEY: case BPF_MAP_LOOKUP_AND_DELETE_ELEM: return ENDOF(flags);
	case BPF_MAP_FREEZE: return ENDOF(map_fd);
	case BPF_MAP_LOOKUP_BATCH: case BPF_MAP_LOOKUP_AND_DELETE_BATCH: case BPF_MAP_UPDATE_BATCH:
	case BPF_MAP_DELETE_BATCH: return ENDOF(batch);
	case BPF_PROG_LOAD: return ENDOF(core_relo_rec_size);
	case BPF_PROG_TEST_RUN: return ENDOF(test.batch_size);
	case BPF_OBJ_PIN: case BPF_OBJ_GET: return ENDOF(file_flags);
	case BPF_PROG_GET_NEXT_ID: case BPF_MAP_GET_NEXT_ID: case BPF_BTF_GET_NEXT_ID:
	case BPF_LINK_GET_NEXT_ID: return ENDOF(next_id);
	case BPF_PROG_GET_FD_BY_ID: case BPF_MAP_GET_FD_BY_ID: case BPF_BTF_GET_FD_BY_ID:
	case BPF_LINK_GET_FD_BY_ID: return ENDOF(open_flags);
	case BPF_OBJ_GET_INFO_BY_FD: return ENDOF(info);
	case BPF_BTF_LOAD: return ENDOF(btf_log_level);
	case BPF_LINK_CREATE: return ENDOF(link_create);
	case BPF_LINK_DETACH: return ENDOF(link_detach);
	case BPF_PROG_BIND_MAP: return ENDOF(prog_bind_map);
	default: return sizeof(union bpf_attr);
	}
}

static long obj_info(union bpf_attr *attr);
static long next_id(int cmd, union bpf_attr *attr);
static long fd_by_id(int cmd, union bpf_attr *attr);

long server_bpf(int cmd, union bpf_attr *user, unsigned int size)
{
	union bpf_attr attr;
	memset(&attr, 0, sizeof(attr));
	if (size > sizeof(attr)) { /* a newer libbpf: what we do not know must be zero */
		unsigned char extra[64];
		for (unsigned int at = sizeof(attr); at < size; at += sizeof(extra)) {
			unsigned int n = size - at < sizeof(extra) ? size - at : sizeof(extra);
			if (safe_read(extra, (uintptr_t)user + at, n) < 0)
				return -EFAULT;
			for (unsigned int i = 0; i < n; i++)
				if (extra[i])
					return -E2BIG;
		}
		size = sizeof(attr);
	}
	if (safe_read(&attr, (uintptr_t)user, size) < 0)
		return -EFAULT;
	const unsigned char *bytes = (const unsigned char *)&attr;
	for (size_t i = attr_end(cmd); i < sizeof(attr); i++)
		if (bytes[i]) {
			server_log("%s: attribute byte %zu is not zero (not a field of this command)",
				   bpf_cmd_name(cmd), i);
			return -EINVAL;
		}
	if (!server_shm)
		return -EPERM;
	long ret;
	server_lock();
	switch (cmd) {
	case BPF_MAP_CREATE: case BPF_MAP_LOOKUP_ELEM: case BPF_MAP_UPDATE_ELEM: case BPF_MAP_DELETE_ELEM:
	case BPF_MAP_GET_NEXT_KEY: case BPF_MAP_LOOKUP_AND_DELETE_ELEM: case BPF_MAP_FREEZE:
	case BPF_MAP_LOOKUP_BATCH: case BPF_MAP_LOOKUP_AND_DELETE_BATCH: case BPF_MAP_UPDATE_BATCH:
	case BPF_MAP_DELETE_BATCH:
		ret = bpf_map_command(cmd, &attr);
		break;
	case BPF_PROG_LOAD: ret = bpf_prog_load(&attr); break;
	case BPF_PROG_TEST_RUN: ret = bpf_prog_test_run(&attr); break;
	case BPF_BTF_LOAD: ret = bpf_btf_load(&attr); break;
	case BPF_BTF_GET_NEXT_ID: case BPF_BTF_GET_FD_BY_ID: ret = bpf_btf_by_id(cmd, &attr); break;
	case BPF_OBJ_GET_INFO_BY_FD: ret = obj_info(&attr); break;
	case BPF_PROG_GET_NEXT_ID: case BPF_MAP_GET_NEXT_ID: case BPF_LINK_GET_NEXT_ID:
		ret = next_id(cmd, &attr);
		break;
	case BPF_PROG_GET_FD_BY_ID: case BPF_MAP_GET_FD_BY_ID: ret = fd_by_id(cmd, &attr); break;
	case BPF_LINK_CREATE: ret = bpf_link_create(&attr); break;
	case BPF_LINK_DETACH: {
		struct server_fd *e = sfd_get((int)attr.link_detach.link_fd);
		ret = !e ? -EBADF : e->kind != SFD_LINK ? -EINVAL : bpf_link_detach(e);
		break;
	}
	case BPF_OBJ_PIN: ret = server_obj_pin(&attr); break;
	case BPF_OBJ_GET: ret = server_obj_get(&attr, size); break;
	case BPF_LINK_GET_FD_BY_ID: ret = server_link_fd_by_id(&attr); break;
	case BPF_PROG_BIND_MAP: {
		/* The kernel keeps the map alive as long as the program; a reference here does that. */
		int prog = sfd_prog_id((int)attr.prog_bind_map.prog_fd);
		int map = sfd_map_id((int)attr.prog_bind_map.map_fd);
		ret = prog < 0 ? prog : map < 0 ? map : attr.prog_bind_map.flags ? -EINVAL : 0;
		if (ret == 0)
			ref_get((uint32_t)map);
		break;
	}
	default:
		/* What the kernel answers for commands it has but we do not run. */
		ret = cmd >= 0 && cmd <= BPF_PROG_BIND_MAP ? -EOPNOTSUPP : -EINVAL;
		server_log("%s is not supported: %s", bpf_cmd_name(cmd), strerror((int)-ret));
		break;
	}
	server_unlock();
	if (ret >= 0 && (cmd == BPF_OBJ_GET_INFO_BY_FD || cmd == BPF_PROG_TEST_RUN || cmd == BPF_MAP_LOOKUP_BATCH ||
			 cmd == BPF_PROG_GET_NEXT_ID || cmd == BPF_MAP_GET_NEXT_ID || cmd == BPF_LINK_GET_NEXT_ID ||
			 cmd == BPF_BTF_GET_NEXT_ID ||
			 cmd == BPF_MAP_LOOKUP_AND_DELETE_BATCH || cmd == BPF_MAP_UPDATE_BATCH ||
			 cmd == BPF_MAP_DELETE_BATCH) &&
	    safe_write((uintptr_t)user, &attr, size) < 0)
		return -EFAULT;
	/* Batches report how far they got even when they stop with an error. */
	if (ret == -ENOENT && (cmd == BPF_MAP_LOOKUP_BATCH || cmd == BPF_MAP_LOOKUP_AND_DELETE_BATCH))
		safe_write((uintptr_t)user, &attr, size);
	return ret;
}

/* Copies `have` bytes of info out; the caller's extra bytes must be zero, like the kernel checks. */
long server_info_out(union bpf_attr *attr, const void *info, uint32_t have)
{
	uint32_t len = attr->info.info_len;
	uint64_t to = attr->info.info;
	for (uint32_t i = have; i < len; i++) {
		unsigned char b;
		if (safe_read(&b, to + i, 1) < 0)
			return -EFAULT;
		if (b)
			return -E2BIG;
	}
	uint32_t n = len < have ? len : have;
	if (safe_write(to, info, n) < 0)
		return -EFAULT;
	attr->info.info_len = n;
	return 0;
}

static long map_info(union bpf_attr *attr, uint32_t id)
{
	struct bpftime_map_info m;
	if (bpftime_map_info(server_shm, id, &m) < 0)
		return -ENOENT;
	struct bpf_map_info info;
	memset(&info, 0, sizeof(info));
	info.type = m.type;
	info.id = m.id;
	info.key_size = m.key_size;
	info.value_size = m.value_size;
	info.max_entries = m.max_entries;
	info.map_flags = m.map_flags;
	memcpy(info.name, m.name, sizeof(info.name));
	return server_info_out(attr, &info, sizeof(info));
}

static long prog_info(union bpf_attr *attr, uint32_t id)
{
	uint32_t type;
	int64_t len = bpftime_prog_code(server_shm, id, NULL, 0, &type);
	if (len < 0)
		return -ENOENT;
	struct bpf_prog_info want, info;
	memset(&want, 0, sizeof(want));
	uint32_t n = attr->info.info_len < sizeof(want) ? attr->info.info_len : sizeof(want);
	if (safe_read(&want, attr->info.info, n) < 0)
		return -EFAULT;
	memset(&info, 0, sizeof(info));
	info.type = type;
	info.id = id;
	info.xlated_prog_len = (uint32_t)len;
	if (want.xlated_prog_insns && want.xlated_prog_len) {
		uint8_t *code = malloc((size_t)len);
		if (!code)
			return -ENOMEM;
		bpftime_prog_code(server_shm, id, code, (uint64_t)len, NULL);
		int bad = safe_write(want.xlated_prog_insns, code,
				     want.xlated_prog_len < (uint64_t)len ? want.xlated_prog_len : (uint64_t)len);
		free(code);
		if (bad < 0)
			return -EFAULT;
		info.xlated_prog_insns = want.xlated_prog_insns;
	}
	const struct shm_object *o = shm_object_find(server_shm, id);
	if (o)
		memcpy(info.name, o->name, sizeof(info.name) - 1);
	return server_info_out(attr, &info, sizeof(info));
}

static long obj_info(union bpf_attr *attr)
{
	struct server_fd *e = sfd_get((int)attr->info.bpf_fd);
	if (!e)
		return -EBADF;
	switch (e->kind) {
	case SFD_MAP: return map_info(attr, e->id);
	case SFD_PROG: return prog_info(attr, e->id);
	case SFD_BTF: return bpf_btf_info(e, attr);
	case SFD_LINK: {
		struct bpf_link_info info;
		memset(&info, 0, sizeof(info));
		info.type = BPF_LINK_TYPE_PERF_EVENT;
		info.id = e->probe->link_id;
		info.prog_id = e->probe->spec.prog_id;
		return server_info_out(attr, &info, sizeof(info));
	}
	default: return -EINVAL; /* perf event fds have no bpf info */
	}
}

static uint32_t kind_of_cmd(int cmd)
{
	switch (cmd) {
	case BPF_MAP_GET_NEXT_ID: case BPF_MAP_GET_FD_BY_ID: return SHM_MAP;
	case BPF_PROG_GET_NEXT_ID: case BPF_PROG_GET_FD_BY_ID: return SHM_PROG;
	default: return SHM_LINK;
	}
}

static long next_id(int cmd, union bpf_attr *attr)
{
	uint32_t kind = kind_of_cmd(cmd), best = 0;
	for (uint32_t i = 0; i < SHM_MAX_OBJECTS; i++) {
		const struct shm_object *o = &server_shm->hdr->objects[i];
		uint32_t id = __atomic_load_n(&o->id, __ATOMIC_ACQUIRE);
		if (id && o->kind == kind && id > attr->start_id && (!best || id < best))
			best = id;
	}
	if (!best)
		return -ENOENT;
	attr->next_id = best;
	return 0;
}

static long fd_by_id(int cmd, union bpf_attr *attr)
{
	uint32_t kind = kind_of_cmd(cmd);
	const struct shm_object *o = shm_object_find(server_shm, attr->map_id);
	if (!o || o->kind != kind)
		return -ENOENT;
	ref_get(attr->map_id);
	int fd = sfd_new(kind == SHM_MAP ? SFD_MAP : SFD_PROG, attr->map_id, NULL);
	if (fd < 0)
		ref_put(attr->map_id);
	return fd;
}
