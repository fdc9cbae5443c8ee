/* Struct layouts from the kernel's BTF (see kernel_btf.h): a small reader of the type section. */
#include "kernel_btf.h"
#include "error.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/btf.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

struct kbtf {
	uint8_t *data;
	uint64_t size;
	const char *strs;
	uint32_t str_len;
	bool mapped;           /* data is an mmap of the file, not a malloc'ed copy */
	uint32_t ntypes;       /* ids 1..ntypes */
	const struct btf_type **types; /* by id */
};

#define MAX_BTF_SIZE (256u << 20)

static const char *name_of(const struct kbtf *b, uint32_t off)
{
	return off < b->str_len ? b->strs + off : "";
}

/* Bytes of kind-specific data after a btf_type; -1 for a kind we do not know. */
static int64_t extra_len(const struct btf_type *t)
{
	uint32_t vlen = BTF_INFO_VLEN(t->info);
	switch (BTF_INFO_KIND(t->info)) {
	case BTF_KIND_INT:
	case BTF_KIND_VAR:
	case BTF_KIND_DECL_TAG:
		return 4;
	case BTF_KIND_ARRAY:
		return sizeof(struct btf_array);
	case BTF_KIND_STRUCT:
	case BTF_KIND_UNION:
		return (int64_t)vlen * sizeof(struct btf_member);
	case BTF_KIND_ENUM:
		return (int64_t)vlen * sizeof(struct btf_enum);
	case BTF_KIND_FUNC_PROTO:
		return (int64_t)vlen * sizeof(struct btf_param);
	case BTF_KIND_DATASEC:
		return (int64_t)vlen * sizeof(struct btf_var_secinfo);
	case 19: /* BTF_KIND_ENUM64: name, lo32, hi32 */
		return (int64_t)vlen * 12;
	case BTF_KIND_PTR:
	case BTF_KIND_FWD:
	case BTF_KIND_TYPEDEF:
	case BTF_KIND_VOLATILE:
	case BTF_KIND_CONST:
	case BTF_KIND_RESTRICT:
	case BTF_KIND_FUNC:
	case BTF_KIND_FLOAT:
	case 18: /* BTF_KIND_TYPE_TAG */
		return 0;
	default:
		return -1;
	}
}

static int index_types(struct kbtf *b, const char *path)
{
	const struct btf_header *h = (const void *)b->data;
	if (b->size < sizeof(*h) || h->magic != BTF_MAGIC || h->hdr_len > b->size) {
		set_error("%s: not BTF (bad magic or header)", path);
		return -1;
	}
	uint64_t tstart = (uint64_t)h->hdr_len + h->type_off, tend = tstart + h->type_len;
	uint64_t sstart = (uint64_t)h->hdr_len + h->str_off;
	if (tend > b->size || sstart + h->str_len > b->size) {
		set_error("%s: type or string section past the end of the file", path);
		return -1;
	}
	b->strs = (const char *)b->data + sstart;
	b->str_len = h->str_len;
	uint32_t cap = 1024;
	b->types = malloc(cap * sizeof(*b->types));
	if (!b->types)
		goto oom;
	b->types[0] = NULL; /* void */
	uint32_t n = 0;
	for (uint64_t off = tstart; off < tend;) {
		if (off + sizeof(struct btf_type) > tend) {
			set_error("%s: truncated type at offset %llu", path, (unsigned long long)off);
			return -1;
		}
		const struct btf_type *t = (const void *)(b->data + off);
		int64_t extra = extra_len(t);
		if (extra < 0) {
			set_error("%s: type %u has unknown kind %u", path, n + 1, BTF_INFO_KIND(t->info));
			return -1;
		}
		if (++n >= cap) {
			cap *= 2;
			const struct btf_type **nt = realloc(b->types, cap * sizeof(*nt));
			if (!nt)
				goto oom;
			b->types = nt;
		}
		b->types[n] = t;
		off += sizeof(*t) + (uint64_t)extra;
	}
	b->ntypes = n;
	return 0;
oom:
	set_error("%s: out of memory", path);
	return -1;
}

struct kbtf *kbtf_open(const char *path)
{
	if (!path)
		path = "/sys/kernel/btf/vmlinux";
	struct kbtf *b = calloc(1, sizeof(*b));
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (!b || fd < 0) {
		set_error("%s: cannot open the kernel's BTF (%s)", path, b ? strerror(errno) : "out of memory");
		goto fail;
	}
	/*
	 * Recent kernels let /sys/kernel/btf/vmlinux be mapped: ~0.2 ms instead of ~9 ms of
	 * 4 KiB sysfs reads, which every traced process calling bpf_get_current_task pays.
	 */
	struct stat st;
	if (fstat(fd, &st) == 0 && st.st_size > 4096 && (uint64_t)st.st_size <= MAX_BTF_SIZE) {
		void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (m != MAP_FAILED) {
			b->data = m;
			b->size = (uint64_t)st.st_size;
			b->mapped = true;
			close(fd);
			if (index_types(b, path) < 0) {
				kbtf_close(b);
				return NULL;
			}
			return b;
		}
	}
	/* sysfs reports a size of 4096 or the real one depending on the kernel: read to the end. */
	uint64_t cap = 8u << 20;
	b->data = malloc(cap);
	while (b->data) {
		ssize_t r = read(fd, b->data + b->size, cap - b->size);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			set_error("%s: read: %s", path, strerror(errno));
			goto fail;
		}
		if (r == 0)
			break;
		b->size += (uint64_t)r;
		if (b->size == cap) {
			if (cap >= MAX_BTF_SIZE) {
				set_error("%s: larger than %u MiB", path, MAX_BTF_SIZE >> 20);
				goto fail;
			}
			cap *= 2;
			uint8_t *nd = realloc(b->data, cap);
			if (!nd)
				free(b->data);
			b->data = nd;
		}
	}
	if (!b->data) {
		set_error("%s: out of memory", path);
		goto fail;
	}
	close(fd);
	fd = -1;
	if (index_types(b, path) < 0)
		goto fail;
	return b;
fail:
	if (fd >= 0)
		close(fd);
	kbtf_close(b);
	return NULL;
}

void kbtf_close(struct kbtf *b)
{
	if (!b)
		return;
	free(b->types);
	if (b->mapped)
		munmap(b->data, b->size);
	else
		free(b->data);
	free(b);
}

/* Through typedefs and qualifiers. */
static const struct btf_type *resolve(const struct kbtf *b, uint32_t id, uint32_t *out_id)
{
	for (int hops = 0; hops < 32 && id && id <= b->ntypes; hops++) {
		const struct btf_type *t = b->types[id];
		uint32_t k = BTF_INFO_KIND(t->info);
		if (k != BTF_KIND_TYPEDEF && k != BTF_KIND_VOLATILE && k != BTF_KIND_CONST &&
		    k != BTF_KIND_RESTRICT && k != 18) {
			if (out_id)
				*out_id = id;
			return t;
		}
		id = t->type;
	}
	return NULL;
}

static bool is_composite(const struct btf_type *t)
{
	uint32_t k = t ? BTF_INFO_KIND(t->info) : 0;
	return k == BTF_KIND_STRUCT || k == BTF_KIND_UNION;
}

/* The size in bytes of type id (0 when unknown or a flexible array). */
static uint64_t size_of(const struct kbtf *b, uint32_t id)
{
	const struct btf_type *t = resolve(b, id, NULL);
	if (!t)
		return 0;
	switch (BTF_INFO_KIND(t->info)) {
	case BTF_KIND_INT:
	case BTF_KIND_STRUCT:
	case BTF_KIND_UNION:
	case BTF_KIND_ENUM:
	case 19:
	case BTF_KIND_FLOAT:
		return t->size;
	case BTF_KIND_PTR:
		return 8;
	case BTF_KIND_ARRAY: {
		const struct btf_array *a = (const void *)(t + 1);
		return a->nelems * size_of(b, a->type);
	}
	default:
		return 0;
	}
}

uint32_t kbtf_struct(const struct kbtf *b, const char *name, uint32_t *size)
{
	for (uint32_t id = 1; id <= b->ntypes; id++) {
		const struct btf_type *t = b->types[id];
		if (is_composite(t) && strcmp(name_of(b, t->name_off), name) == 0) {
			if (size)
				*size = t->size;
			return id;
		}
	}
	return 0;
}

static int64_t member_in(const struct kbtf *b, uint32_t id, const char *name, uint32_t *size,
			 uint32_t *type_id, int depth)
{
	const struct btf_type *t = resolve(b, id, NULL);
	if (!is_composite(t) || depth > 8)
		return -1;
	const struct btf_member *m = (const void *)(t + 1);
	bool bitfields = t->info >> 31; /* kind_flag: offset holds the bitfield size too */
	for (uint32_t i = 0; i < BTF_INFO_VLEN(t->info); i++) {
		uint32_t bits = bitfields ? BTF_MEMBER_BIT_OFFSET(m[i].offset) : m[i].offset;
		if (bitfields && BTF_MEMBER_BITFIELD_SIZE(m[i].offset))
			continue;
		const char *n = name_of(b, m[i].name_off);
		if (*n == 0) {
			int64_t inner = member_in(b, m[i].type, name, size, type_id, depth + 1);
			if (inner >= 0)
				return bits / 8 + inner;
			continue;
		}
		if (strcmp(n, name) != 0 || bits % 8)
			continue;
		if (size)
			*size = (uint32_t)size_of(b, m[i].type);
		if (type_id) {
			uint32_t rid = 0;
			*type_id = is_composite(resolve(b, m[i].type, &rid)) ? rid : 0;
		}
		return bits / 8;
	}
	return -1;
}

int64_t kbtf_member(const struct kbtf *b, uint32_t id, const char *name, uint32_t *size, uint32_t *type_id)
{
	return member_in(b, id, name, size, type_id, 0);
}

int64_t kbtf_offset(const struct kbtf *b, const char *name, const char *path, uint32_t *size)
{
	uint32_t id = kbtf_struct(b, name, NULL);
	int64_t total = 0;
	char step[64];
	while (id && *path) {
		const char *dot = strchr(path, '.');
		size_t n = dot ? (size_t)(dot - path) : strlen(path);
		if (n >= sizeof(step))
			return -1;
		memcpy(step, path, n);
		step[n] = 0;
		uint32_t next = 0;
		int64_t off = kbtf_member(b, id, step, size, &next);
		if (off < 0)
			return -1;
		total += off;
		path += n + (dot != NULL);
		if (!*path)
			return total;
		id = next;
	}
	return -1;
}
