/* bpf(2) map commands: create, element operations, batches and freeze, on segment maps. */
#include "../maps/map.h" /* before libc headers: they define F_LOCK */
#include "server.h"

#include "../base/safe_copy.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Bytes of one value as user space sees it: every CPU's copy for per-CPU maps. */
static uint64_t user_value_size(const struct bpftime_map_info *m)
{
	return m->ncpus > 1 ? (uint64_t)m->value_stride * m->ncpus : m->value_size;
}

static long map_create(union bpf_attr *attr)
{
	char name[BPF_OBJ_NAME_LEN + 1] = {0};
	memcpy(name, attr->map_name, BPF_OBJ_NAME_LEN);
	uint32_t inner = 0;
	if (attr->inner_map_fd) {
		int id = sfd_map_id((int)attr->inner_map_fd);
		if (id < 0 && (attr->map_type == BPF_MAP_TYPE_ARRAY_OF_MAPS ||
			       attr->map_type == BPF_MAP_TYPE_HASH_OF_MAPS))
			return id;
		inner = id > 0 ? (uint32_t)id : 0;
	}
	int id = bpftime_map_create(server_shm, attr->map_type, name, attr->key_size, attr->value_size,
				    attr->max_entries, attr->map_flags, attr->map_extra, inner);
	if (id < 0) {
		server_log("BPF_MAP_CREATE '%s': %s", name, bpftime_last_error());
		return id;
	}
	/* Then its BTF, as the kernel: the layout comes from the sizes; a struct bpf_spin_lock in the value is
	 * the map's lock (EOPNOTSUPP in a map type that cannot have one). */
	uint32_t spin_lock_off;
	long btf = map_btf_check(attr, &spin_lock_off);
	if (btf == 0 && spin_lock_off && bpftime_map_set_spin_lock(server_shm, (uint32_t)id, spin_lock_off - 1) < 0) {
		server_log("BPF_MAP_CREATE '%s': %s", name, bpftime_last_error());
		btf = -EOPNOTSUPP;
	}
	if (btf < 0) {
		bpftime_object_delete(server_shm, (uint32_t)id);
		return btf;
	}
	ref_created((uint32_t)id, NULL, 0);
	int fd = sfd_new(SFD_MAP, (uint32_t)id, NULL);
	if (fd < 0)
		ref_put((uint32_t)id);
	return fd;
}

/* Values of prog arrays and maps of maps are fds in user space and ids in the segment. */
static long value_from_user(const struct bpftime_map_info *m, uint8_t *value)
{
	bool holds_maps = m->type == BPF_MAP_TYPE_ARRAY_OF_MAPS || m->type == BPF_MAP_TYPE_HASH_OF_MAPS;
	if (!holds_maps && m->type != BPF_MAP_TYPE_PROG_ARRAY)
		return 0;
	int fd;
	memcpy(&fd, value, 4);
	int id = holds_maps ? sfd_map_id(fd) : sfd_prog_id(fd);
	if (id < 0)
		return id;
	memcpy(value, &id, 4);
	return 0;
}

struct elem_op {
	struct bpftime_map_info info;
	uint8_t *key, *value;
	uint64_t vsize;
};

static long elem_op_init(struct elem_op *op, int map_fd)
{
	int id = sfd_map_id(map_fd);
	if (id < 0)
		return id;
	if (bpftime_map_info(server_shm, (uint32_t)id, &op->info) < 0)
		return -EBADF;
	op->vsize = user_value_size(&op->info);
	op->key = calloc(1, op->info.key_size + 8);
	op->value = calloc(1, op->vsize + 8);
	return op->key && op->value ? 0 : -ENOMEM;
}

static void elem_op_done(struct elem_op *op)
{
	free(op->key);
	free(op->value);
}

/* The key handed to the runtime: none for maps without keys. */
static const void *elem_key(const struct elem_op *op)
{
	return op->info.key_size ? op->key : NULL;
}

static long read_key(struct elem_op *op, uint64_t user_key)
{
	if (!op->info.key_size) /* queues, stacks, bloom filters, ring buffers: no key may be given */
		return user_key ? -EINVAL : 0;
	return safe_read(op->key, user_key, op->info.key_size);
}

/* An update of op->key to `value` (translated); a perf output fd stored in a perf event array shows its ring. */
static long stored(struct elem_op *op, const uint8_t *value, uint64_t flags)
{
	long ret = bpftime_map_update(server_shm, op->info.id, elem_key(op), value, flags);
	if (ret == 0 && op->info.type == BPF_MAP_TYPE_PERF_EVENT_ARRAY) {
		int fd;
		uint32_t index;
		memcpy(&fd, value, 4);
		memcpy(&index, op->key, 4);
		perf_output_store(fd, op->info.id, index);
	}
	return ret;
}

static long elem_command(int cmd, union bpf_attr *attr)
{
	struct elem_op op = {0};
	long ret = elem_op_init(&op, (int)attr->map_fd);
	if (ret < 0)
		goto out;
	uint32_t id = op.info.id;
	const void *key = elem_key(&op);
	switch (cmd) {
	case BPF_MAP_LOOKUP_ELEM:
		if ((ret = read_key(&op, attr->key)) < 0)
			break;
		/* A bloom filter's lookup asks whether the value is in it. */
		if (op.info.type == BPF_MAP_TYPE_BLOOM_FILTER &&
		    (ret = safe_read(op.value, attr->value, op.vsize)) < 0)
			break;
		ret = bpftime_map_lookup_flags(server_shm, id, key, op.value, attr->flags);
		if (ret == 0 && op.info.type != BPF_MAP_TYPE_BLOOM_FILTER)
			ret = safe_write(attr->value, op.value, op.vsize);
		break;
	case BPF_MAP_UPDATE_ELEM:
		if (ref_frozen(id)) {
			ret = -EPERM;
			break;
		}
		if ((ret = read_key(&op, attr->key)) < 0 || (ret = safe_read(op.value, attr->value, op.vsize)) < 0 ||
		    (ret = value_from_user(&op.info, op.value)) < 0)
			break;
		ret = stored(&op, op.value, attr->flags);
		break;
	case BPF_MAP_DELETE_ELEM:
		if (ref_frozen(id)) {
			ret = -EPERM;
			break;
		}
		if ((ret = read_key(&op, attr->key)) < 0)
			break;
		ret = bpftime_map_delete(server_shm, id, key);
		break;
	case BPF_MAP_GET_NEXT_KEY:
		if (attr->key && (ret = read_key(&op, attr->key)) < 0)
			break;
		ret = bpftime_map_get_next_key(server_shm, id, attr->key ? op.key : NULL, op.value);
		if (ret == 0)
			ret = safe_write(attr->next_key, op.value, op.info.key_size);
		break;
	case BPF_MAP_LOOKUP_AND_DELETE_ELEM:
		if (attr->flags) {
			ret = -EINVAL;
			break;
		}
		if ((ret = read_key(&op, attr->key)) < 0)
			break;
		ret = bpftime_map_lookup_and_delete(server_shm, id, key, op.value);
		if (ret == 0)
			ret = safe_write(attr->value, op.value, op.vsize);
		break;
	}
out:
	elem_op_done(&op);
	return ret;
}

/*
 * Batches walk the map in get_next_key order; the batch token is a u32 count
 * of elements already returned (the kernel's is a bucket index: opaque to
 * user space either way).
 */
static long batch_command(int cmd, union bpf_attr *attr)
{
	struct elem_op op = {0};
	long ret = elem_op_init(&op, (int)attr->batch.map_fd);
	if (ret < 0)
		goto out;
	uint32_t id = op.info.id, count = attr->batch.count, done = 0;
	uint64_t ksz = op.info.key_size, vsz = op.vsize;
	if (attr->batch.elem_flags & ~(uint64_t)BPF_F_LOCK || attr->batch.flags || map_type(op.info.type)->keyless) {
		ret = -EINVAL;
		goto out;
	}
	if (cmd != BPF_MAP_LOOKUP_BATCH && cmd != BPF_MAP_LOOKUP_AND_DELETE_BATCH && ref_frozen(id)) {
		ret = -EPERM;
		goto out;
	}
	if (cmd == BPF_MAP_UPDATE_BATCH || cmd == BPF_MAP_DELETE_BATCH) {
		for (; done < count; done++) {
			if ((ret = safe_read(op.key, attr->batch.keys + done * ksz, ksz)) < 0)
				break;
			if (cmd == BPF_MAP_DELETE_BATCH) {
				ret = bpftime_map_delete(server_shm, id, op.key);
			} else {
				if ((ret = safe_read(op.value, attr->batch.values + done * vsz, vsz)) < 0 ||
				    (ret = value_from_user(&op.info, op.value)) < 0)
					break;
				ret = stored(&op, op.value, attr->batch.elem_flags);
			}
			if (ret < 0)
				break;
		}
		attr->batch.count = done;
		goto out;
	}
	uint32_t skip = 0;
	if (attr->batch.in_batch && (ret = safe_read(&skip, attr->batch.in_batch, 4)) < 0)
		goto out;
	bool deleting = cmd == BPF_MAP_LOOKUP_AND_DELETE_BATCH;
	if (count == 0) {
		ret = -EINVAL;
		goto out;
	}
	uint8_t *prev = calloc(1, ksz + 8);
	if (!prev) {
		ret = -ENOMEM;
		goto out;
	}
	bool have_prev = false;
	/* Skip what earlier batches returned (deleting batches took theirs out already). */
	for (uint32_t i = 0; !deleting && i < skip; i++) {
		if ((ret = bpftime_map_get_next_key(server_shm, id, have_prev ? prev : NULL, op.key)) < 0)
			break;
		memcpy(prev, op.key, ksz);
		have_prev = true;
	}
	if (ret == 0) {
		for (; done < count; done++) {
			ret = bpftime_map_get_next_key(server_shm, id, have_prev ? prev : NULL, op.key);
			if (ret < 0)
				break;
			memcpy(prev, op.key, ksz);
			have_prev = true;
			ret = bpftime_map_lookup_flags(server_shm, id, op.key, op.value, attr->batch.elem_flags);
			if (ret < 0 || (ret = safe_write(attr->batch.keys + done * ksz, op.key, ksz)) < 0 ||
			    (ret = safe_write(attr->batch.values + done * vsz, op.value, vsz)) < 0)
				break;
		}
		if (deleting) /* after the walk, so it is not disturbed */
			for (uint32_t i = 0; i < done; i++) {
				safe_read(op.key, attr->batch.keys + i * ksz, ksz);
				bpftime_map_delete(server_shm, id, op.key);
			}
	}
	free(prev);
	uint32_t token = deleting ? 0 : skip + done;
	if ((ret == 0 || ret == -ENOENT) && safe_write(attr->batch.out_batch, &token, 4) < 0)
		ret = -EFAULT;
	attr->batch.count = done;
out:
	elem_op_done(&op);
	return ret;
}

long bpf_map_command(int cmd, union bpf_attr *attr)
{
	switch (cmd) {
	case BPF_MAP_CREATE: return map_create(attr);
	case BPF_MAP_FREEZE: {
		int id = sfd_map_id((int)attr->map_fd);
		if (id < 0)
			return id;
		if (ref_frozen((uint32_t)id)) /* a frozen map is no longer writable, so: not permitted */
			return -EPERM;
		ref_freeze((uint32_t)id);
		return 0;
	}
	case BPF_MAP_LOOKUP_BATCH: case BPF_MAP_LOOKUP_AND_DELETE_BATCH: case BPF_MAP_UPDATE_BATCH:
	case BPF_MAP_DELETE_BATCH:
		return batch_command(cmd, attr);
	default: return elem_command(cmd, attr);
	}
}
