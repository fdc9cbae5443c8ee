/*
 * Generated tracepoint collectors in kernel mode (`bpftime gen tracepoint`): load an object,
 * attach each of its tracepoint programs, and hand the records of its ring buffer `events` to
 * the caller in batches: each record as [u32 length][u32 0][bytes, padded to 8]. A record that
 * does not fit the caller's buffer waits for the next read.
 */
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

struct tp_collector {
	struct bpf_object *obj;
	struct bpf_link **links;
	int nlinks;
	struct ring_buffer *rb;
	unsigned char *out;
	uint64_t out_size, out_used;
	unsigned char *pending; /* a record that did not fit the last read */
	uint32_t pending_len;
};

static bool put(struct tp_collector *c, const void *data, uint32_t len)
{
	uint64_t need = 8 + (((uint64_t)len + 7) & ~7ull);
	if (c->out_used + need > c->out_size)
		return false;
	unsigned char *at = c->out + c->out_used;
	memcpy(at, &len, 4);
	memset(at + 4, 0, 4);
	memcpy(at + 8, data, len);
	c->out_used += need;
	return true;
}

static int on_record(void *ctx, void *data, size_t size)
{
	struct tp_collector *c = ctx;
	if (c->pending || !put(c, data, (uint32_t)size)) {
		if (c->pending)
			return -EAGAIN; /* cannot happen: we stop at the first that does not fit */
		c->pending = malloc(size);
		if (!c->pending)
			return -ENOMEM;
		memcpy(c->pending, data, size);
		c->pending_len = (uint32_t)size;
		return -EAGAIN; /* libbpf consumed it; we keep it for the next read */
	}
	return 0;
}

struct tp_collector *tpc_open(const char *object_path, char *err, uint64_t errsz)
{
	struct tp_collector *c = calloc(1, sizeof(*c));
	if (!c) {
		set_error(err, errsz, "out of memory");
		return NULL;
	}
	if (access("/sys/kernel/btf/vmlinux", R_OK) != 0) {
		set_error(err, errsz, "kernel BTF not found at /sys/kernel/btf/vmlinux: CO-RE needs CONFIG_DEBUG_INFO_BTF");
		goto fail;
	}
	c->obj = bpf_object__open_file(object_path, NULL);
	if (!c->obj) {
		set_error(err, errsz, "cannot open %s: %s", object_path, strerror(errno));
		goto fail;
	}
	if (bpf_object__load(c->obj) != 0) {
		int e = errno;
		set_error(err, errsz, "loading %s into the kernel: %s%s", object_path, strerror(e),
			  e == EPERM || e == EACCES ? ": run as root or use --userspace" : "");
		goto fail;
	}
	struct bpf_program *p;
	int n = 0;
	bpf_object__for_each_program(p, c->obj) n++;
	c->links = calloc(n ? n : 1, sizeof(*c->links));
	if (!c->links) {
		set_error(err, errsz, "out of memory");
		goto fail;
	}
	bpf_object__for_each_program(p, c->obj)
	{
		struct bpf_link *l = bpf_program__attach(p);
		if (!l) {
			set_error(err, errsz, "attaching %s (%s): %s", bpf_program__name(p), bpf_program__section_name(p),
				  strerror(errno));
			goto fail;
		}
		c->links[c->nlinks++] = l;
	}
	struct bpf_map *events = bpf_object__find_map_by_name(c->obj, "events");
	c->rb = events ? ring_buffer__new(bpf_map__fd(events), on_record, c, NULL) : NULL;
	if (!c->rb) {
		set_error(err, errsz, "%s: no ring buffer map 'events'", object_path);
		goto fail;
	}
	return c;
fail:
	tpc_close(c);
	return NULL;
}

/* Fills buf with records (waiting up to timeout_ms for the first); returns the bytes used. */
int64_t tpc_read(struct tp_collector *c, void *buf, uint64_t size, int32_t timeout_ms)
{
	c->out = buf;
	c->out_size = size;
	c->out_used = 0;
	if (c->pending) {
		if (!put(c, c->pending, c->pending_len))
			return -EMSGSIZE; /* the caller's buffer is smaller than one record */
		free(c->pending);
		c->pending = NULL;
	}
	int rc = c->out_used ? ring_buffer__consume(c->rb) : ring_buffer__poll(c->rb, timeout_ms);
	if (rc < 0 && rc != -EAGAIN && rc != -EINTR)
		return rc;
	return (int64_t)c->out_used;
}

void tpc_close(struct tp_collector *c)
{
	if (!c)
		return;
	if (c->rb)
		ring_buffer__free(c->rb);
	for (int i = 0; i < c->nlinks; i++)
		bpf_link__destroy(c->links[i]);
	free(c->links);
	if (c->obj)
		bpf_object__close(c->obj);
	free(c->pending);
	free(c);
}
