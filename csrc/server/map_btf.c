/*
 * The BTF of a map made through bpf(2): the key and value types must have the
 * map's sizes (as the kernel checks), and a struct bpf_spin_lock at the value's
 * top level is the lock BPF_F_LOCK and bpf_spin_lock use.
 */
#include "server.h"
#include "raw_syscall.h"

#include <fcntl.h>
#include <sys/syscall.h>

#include <linux/btf.h>
#include <stdlib.h>
#include <string.h>

struct btf_view {
	const uint8_t *types, *strs;
	uint32_t types_len, strs_len;
	uint32_t n;	    /* types, id 0 (void) included */
	uint32_t *offsets; /* of each type in `types` */
};

static const struct btf_type *type_at(const struct btf_view *v, uint32_t id)
{
	return id && id < v->n ? (const struct btf_type *)(v->types + v->offsets[id]) : NULL;
}

static const char *name_of(const struct btf_view *v, const struct btf_type *t)
{
	return t->name_off < v->strs_len ? (const char *)v->strs + t->name_off : "";
}

/* Bytes after a type's header, by kind; -1 for a kind we do not know. */
static long trailer(const struct btf_type *t)
{
	uint32_t vlen = BTF_INFO_VLEN(t->info);
	switch (BTF_INFO_KIND(t->info)) {
	case BTF_KIND_INT: case BTF_KIND_VAR: case BTF_KIND_DECL_TAG: return 4;
	case BTF_KIND_ARRAY: return sizeof(struct btf_array);
	case BTF_KIND_STRUCT: case BTF_KIND_UNION: case BTF_KIND_DATASEC: case BTF_KIND_ENUM64:
		return (long)vlen * 12;
	case BTF_KIND_ENUM: case BTF_KIND_FUNC_PROTO: return (long)vlen * 8;
	case BTF_KIND_PTR: case BTF_KIND_FWD: case BTF_KIND_TYPEDEF: case BTF_KIND_VOLATILE:
	case BTF_KIND_CONST: case BTF_KIND_RESTRICT: case BTF_KIND_FUNC: case BTF_KIND_FLOAT:
	case BTF_KIND_TYPE_TAG: return 0;
	default: return -1;
	}
}

static bool view_open(struct btf_view *v, const uint8_t *data, uint32_t size)
{
	const struct btf_header *h = (const struct btf_header *)data;
	if (size < sizeof(*h) || h->magic != BTF_MAGIC || h->hdr_len > size ||
	    (uint64_t)h->hdr_len + h->type_off + h->type_len > size ||
	    (uint64_t)h->hdr_len + h->str_off + h->str_len > size)
		return false;
	v->types = data + h->hdr_len + h->type_off;
	v->types_len = h->type_len;
	v->strs = data + h->hdr_len + h->str_off;
	v->strs_len = h->str_len;
	uint32_t cap = 1024;
	v->offsets = malloc(cap * sizeof(uint32_t));
	v->n = 1;
	for (uint32_t at = 0; v->offsets && at < v->types_len;) {
		if (at + sizeof(struct btf_type) > v->types_len)
			return false;
		long more = trailer((const struct btf_type *)(v->types + at));
		if (more < 0 || at + sizeof(struct btf_type) + (uint64_t)more > v->types_len)
			return false;
		if (v->n == cap) {
			uint32_t *bigger = realloc(v->offsets, (cap *= 2) * sizeof(uint32_t));
			if (!bigger)
				return false;
			v->offsets = bigger;
		}
		v->offsets[v->n++] = at;
		at += (uint32_t)(sizeof(struct btf_type) + (uint64_t)more);
	}
	return v->offsets != NULL;
}

/* Through typedefs and qualifiers. */
static const struct btf_type *skip_modifiers(const struct btf_view *v, uint32_t id)
{
	const struct btf_type *t = type_at(v, id);
	for (int depth = 0; t && depth < 32; depth++) {
		switch (BTF_INFO_KIND(t->info)) {
		case BTF_KIND_TYPEDEF: case BTF_KIND_VOLATILE: case BTF_KIND_CONST: case BTF_KIND_RESTRICT:
		case BTF_KIND_TYPE_TAG:
			t = type_at(v, t->type);
			continue;
		default: return t;
		}
	}
	return NULL;
}

/* A type's size in bytes, or -1 when it has none (void, functions, forward declarations). */
static int64_t size_of(const struct btf_view *v, uint32_t id, int depth)
{
	const struct btf_type *t = skip_modifiers(v, id);
	if (!t || depth > 32)
		return -1;
	switch (BTF_INFO_KIND(t->info)) {
	case BTF_KIND_INT: case BTF_KIND_STRUCT: case BTF_KIND_UNION: case BTF_KIND_ENUM:
	case BTF_KIND_ENUM64: case BTF_KIND_FLOAT: case BTF_KIND_DATASEC: return t->size;
	case BTF_KIND_PTR: return 8;
	case BTF_KIND_ARRAY: {
		const struct btf_array *a = (const struct btf_array *)(t + 1);
		int64_t elem = size_of(v, a->type, depth + 1);
		return elem < 0 ? -1 : elem * a->nelems;
	}
	default: return -1;
	}
}

/* The struct bpf_spin_lock members at a struct's top level: how many, and the first misaligned one. */
static int spin_locks(const struct btf_view *v, const struct btf_type *t, uint32_t *first_bits, bool *misaligned)
{
	int n = 0;
	*misaligned = false;
	const struct btf_member *m = (const struct btf_member *)(t + 1);
	for (uint32_t i = 0; i < BTF_INFO_VLEN(t->info); i++) {
		const struct btf_type *mt = skip_modifiers(v, m[i].type);
		if (!mt || BTF_INFO_KIND(mt->info) != BTF_KIND_STRUCT || strcmp(name_of(v, mt), "bpf_spin_lock"))
			continue;
		uint32_t bits = BTF_INFO_KFLAG(t->info) ? BTF_MEMBER_BIT_OFFSET(m[i].offset) : m[i].offset;
		if (!n++)
			*first_bits = bits;
		if (bits % 32)
			*misaligned = true;
	}
	return n;
}

long btf_check_special_fields(const uint8_t *data, uint32_t size)
{
	struct btf_view v = {0};
	long ret = 0;
	if (view_open(&v, data, size)) {
		for (uint32_t id = 1; id < v.n && !ret; id++) {
			const struct btf_type *t = type_at(&v, id);
			if (BTF_INFO_KIND(t->info) != BTF_KIND_STRUCT && BTF_INFO_KIND(t->info) != BTF_KIND_UNION)
				continue;
			uint32_t bits;
			bool misaligned;
			int n = spin_locks(&v, t, &bits, &misaligned);
			ret = n > 1 ? -E2BIG : misaligned ? -EFAULT : 0;
		}
	}
	free(v.offsets);
	return ret;
}

long map_btf_check(const union bpf_attr *attr, uint32_t *spin_lock_off)
{
	*spin_lock_off = 0;
	if (!attr->btf_key_type_id && !attr->btf_value_type_id)
		return 0;
	uint32_t size;
	const uint8_t *data = server_btf_bytes((int)attr->btf_fd, &size);
	if (!data) {
		server_log("BPF_MAP_CREATE: btf_fd %u is not a BTF object", attr->btf_fd);
		/* EBADF for an fd that is not open, EINVAL for one that is something else */
		return raw_syscall6(SYS_fcntl, attr->btf_fd, F_GETFD, 0, 0, 0, 0) < 0 ? -EBADF : -EINVAL;
	}
	struct btf_view v = {0};
	long ret = 0;
	if (!view_open(&v, data, size)) {
		ret = -EINVAL;
		goto out;
	}
	/*
	 * A key type the size of the key. Without one (void), only what the kernel's array takes: a
	 * global data section (.data, .bss, .rodata: one entry, a DATASEC value).
	 */
	const struct btf_type *value = type_at(&v, attr->btf_value_type_id);
	bool data_section = !attr->btf_key_type_id && attr->map_type == BPF_MAP_TYPE_ARRAY &&
			    attr->max_entries == 1 && value && BTF_INFO_KIND(value->info) == BTF_KIND_DATASEC;
	if (!data_section && size_of(&v, attr->btf_key_type_id, 0) != attr->key_size) {
		server_log("BPF_MAP_CREATE: BTF key type %u does not describe the %u-byte key",
			   attr->btf_key_type_id, attr->key_size);
		ret = -EINVAL;
		goto out;
	}
	if (size_of(&v, attr->btf_value_type_id, 0) != attr->value_size) {
		server_log("BPF_MAP_CREATE: BTF value type %u does not describe the %u-byte value",
			   attr->btf_value_type_id, attr->value_size);
		ret = -EINVAL;
		goto out;
	}
	const struct btf_type *t = skip_modifiers(&v, attr->btf_value_type_id);
	if (t && (BTF_INFO_KIND(t->info) == BTF_KIND_STRUCT || BTF_INFO_KIND(t->info) == BTF_KIND_UNION)) {
		uint32_t bits;
		bool misaligned;
		if (spin_locks(&v, t, &bits, &misaligned)) /* one, aligned: checked when the BTF was loaded */
			*spin_lock_off = bits / 8 + 1;
	}
out:
	free(v.offsets);
	return ret;
}
