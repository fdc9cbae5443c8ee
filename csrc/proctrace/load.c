/*
 * Kernel side through libbpf: open the object, write the filters into .rodata, size the page
 * pools to this machine's CPUs, load (CO-RE against the kernel's BTF), attach each program to
 * its tracepoint (ids from tracefs), and map the data pages for reading.
 */
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/perf_event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"

void set_error(char *err, uint64_t size, const char *fmt, ...)
{
	if (!err || !size)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, size, fmt, ap);
	va_end(ap);
}

/* libbpf's last warning, kept to explain a failure (its messages otherwise go nowhere). */
static __thread char libbpf_said[512];

static int keep_libbpf_message(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_DEBUG)
		return 0;
	char line[512];
	vsnprintf(line, sizeof(line), fmt, ap);
	if (getenv("PROCTRACE_LIBBPF_LOG"))
		fputs(line, stderr);
	size_t n = strlen(line);
	while (n && (line[n - 1] == '\n'))
		line[--n] = 0;
	if (n)
		memcpy(libbpf_said, line, n + 1);
	return 0;
}

/* Writes `size` bytes of `value` into .rodata variable `name`. */
static int set_rodata(struct bpf_object *obj, const char *name, const void *value, size_t size, char *err,
		      uint64_t errsz)
{
	struct bpf_map *rodata = NULL, *m;
	bpf_object__for_each_map(m, obj)
	{
		const char *n = bpf_map__name(m);
		size_t len = strlen(n);
		if (len >= 7 && !strcmp(n + len - 7, ".rodata"))
			rodata = m;
	}
	struct btf *btf = bpf_object__btf(obj);
	int sec = btf ? btf__find_by_name_kind(btf, ".rodata", BTF_KIND_DATASEC) : -1;
	if (!rodata || sec < 0) {
		set_error(err, errsz, "the object has no .rodata with BTF (setting '%s')", name);
		return -1;
	}
	const struct btf_type *t = btf__type_by_id(btf, sec);
	const struct btf_var_secinfo *vs = btf_var_secinfos(t);
	for (int i = 0; i < btf_vlen(t); i++, vs++) {
		const char *var = btf__name_by_offset(btf, btf__type_by_id(btf, vs->type)->name_off);
		if (strcmp(var, name))
			continue;
		size_t data_size;
		const unsigned char *data = bpf_map__initial_value(rodata, &data_size);
		if (!data || vs->size != size || vs->offset + size > data_size) {
			set_error(err, errsz, ".rodata variable '%s' is %u bytes, expected %zu", name, vs->size, size);
			return -1;
		}
		unsigned char *copy = malloc(data_size);
		if (!copy) {
			set_error(err, errsz, "out of memory");
			return -1;
		}
		memcpy(copy, data, data_size);
		memcpy(copy + vs->offset, value, size);
		int rc = bpf_map__set_initial_value(rodata, copy, data_size);
		free(copy);
		if (rc)
			set_error(err, errsz, "setting .rodata variable '%s': %s", name, strerror(-rc));
		return rc ? -1 : 0;
	}
	set_error(err, errsz, "the object has no .rodata variable '%s'", name);
	return -1;
}

/* The tracefs root to use: the given one, else /sys/kernel/tracing, mounted if need be. */
static const char *tracefs_root(const char *given, char *err, uint64_t errsz)
{
	static const char *dflt = "/sys/kernel/tracing";
	const char *root = given ? given : dflt;
	char probe[512];
	snprintf(probe, sizeof(probe), "%s/events", root);
	if (access(probe, F_OK) == 0)
		return root;
	if (errno == EACCES) {
		set_error(err, errsz, "tracefs at %s: %s: run as root or use --userspace", root, strerror(errno));
		return NULL;
	}
	if (!given && mount("nodev", dflt, "tracefs", 0, NULL) == 0 && access(probe, F_OK) == 0)
		return root;
	set_error(err, errsz,
		  "tracefs not found at %s (no %s): mount it with 'mount -t tracefs nodev /sys/kernel/tracing'", root,
		  probe);
	return NULL;
}

/* perf_event_open on tracepoint category/name, its id read from tracefs. */
static int open_tracepoint(const char *root, const char *category, const char *name, char *err, uint64_t errsz)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/events/%s/%s/id", root, category, name);
	FILE *f = fopen(path, "r");
	long id = -1;
	if (!f || fscanf(f, "%ld", &id) != 1) {
		set_error(err, errsz, "tracepoint %s:%s: cannot read its id from %s: %s", category, name, path,
			  strerror(f ? EINVAL : errno));
		if (f)
			fclose(f);
		return -1;
	}
	fclose(f);
	struct perf_event_attr attr = {
		.type = PERF_TYPE_TRACEPOINT,
		.size = sizeof(attr),
		.config = (uint64_t)id,
		.sample_period = 1,
		.wakeup_events = 1,
	};
	int fd = syscall(SYS_perf_event_open, &attr, -1 /* every process */, 0 /* cpu 0 carries all */, -1,
			 PERF_FLAG_FD_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		set_error(err, errsz, "perf_event_open(tracepoint %s:%s): %s%s", category, name, strerror(e),
			  e == EACCES || e == EPERM ? ": run as root or use --userspace" : "");
		return -1;
	}
	return fd;
}

int load_and_attach(struct proctrace *t, const struct proctrace_options *opts, char *err, uint64_t errsz)
{
	const char *btf_path = opts->btf_path ? opts->btf_path : "/sys/kernel/btf/vmlinux";
	if (access(btf_path, R_OK) != 0) {
		set_error(err, errsz,
			  "kernel BTF not found at %s (%s): CO-RE needs a kernel built with CONFIG_DEBUG_INFO_BTF",
			  btf_path, strerror(errno));
		return -1;
	}
	libbpf_set_print(keep_libbpf_message);
	libbpf_said[0] = 0;

	LIBBPF_OPTS(bpf_object_open_opts, oo, .btf_custom_path = opts->btf_path);
	t->obj = bpf_object__open_file(opts->object_path, &oo);
	if (!t->obj) {
		set_error(err, errsz, "cannot open %s: %s", opts->object_path, strerror(errno));
		return -1;
	}
	if (set_rodata(t->obj, "min_duration_ns", &opts->min_duration_ns, 8, err, errsz) ||
	    set_rodata(t->obj, "target_pid", &opts->target_pid, 4, err, errsz) ||
	    set_rodata(t->obj, "target_comm", opts->target_comm, 16, err, errsz))
		return -1;

	struct bpf_map *pages = bpf_object__find_map_by_name(t->obj, "data_pages");
	int cpus = libbpf_num_possible_cpus();
	if (!pages || cpus <= 0 ||
	    bpf_map__set_max_entries(pages, (uint32_t)cpus * PROCTRACE_PAGES_PER_CPU) != 0) {
		set_error(err, errsz, "%s: no data_pages map to size for %d CPUs", opts->object_path, cpus);
		return -1;
	}
	if (bpf_object__load(t->obj) != 0) {
		int e = errno;
		if (e == EPERM || e == EACCES)
			set_error(err, errsz,
				  "loading %s into the kernel: %s: kernel mode needs CAP_BPF and CAP_PERFMON: run as root "
				  "or use --userspace",
				  opts->object_path, strerror(e));
		else
			set_error(err, errsz, "loading %s into the kernel: %s (libbpf: %s)", opts->object_path,
				  strerror(e), libbpf_said);
		return -1;
	}

	const char *root = tracefs_root(opts->tracefs, err, errsz);
	if (!root)
		return -1;
	static const char *const progs[2][3] = {
		{"handle_exec", "sched", "sched_process_exec"},
		{"handle_exit", "sched", "sched_process_exit"},
	};
	for (int i = 0; i < 2; i++) {
		struct bpf_program *p = bpf_object__find_program_by_name(t->obj, progs[i][0]);
		if (!p) {
			set_error(err, errsz, "%s has no program %s", opts->object_path, progs[i][0]);
			return -1;
		}
		int pfd = open_tracepoint(root, progs[i][1], progs[i][2], err, errsz);
		if (pfd < 0)
			return -1;
		t->links[i] = bpf_program__attach_perf_event(p, pfd);
		if (!t->links[i]) {
			set_error(err, errsz, "attaching %s to %s:%s: %s (libbpf: %s)", progs[i][0], progs[i][1],
				  progs[i][2], strerror(errno), libbpf_said);
			close(pfd);
			return -1;
		}
	}

	t->pool.pages = bpf_map__max_entries(pages);
	t->pool_map_bytes = (size_t)t->pool.pages * PROCTRACE_PAGE_SIZE;
	void *base = mmap(NULL, t->pool_map_bytes, PROT_READ, MAP_SHARED, bpf_map__fd(pages), 0);
	if (base == MAP_FAILED) {
		set_error(err, errsz, "mmap of the data_pages map: %s", strerror(errno));
		return -1;
	}
	t->pool.base = base;
	struct bpf_map *dropped = bpf_object__find_map_by_name(t->obj, "dropped");
	t->dropped_fd = dropped ? bpf_map__fd(dropped) : -1;
	return 0;
}

int open_ring(struct proctrace *t, int (*on_record)(void *, void *, size_t), char *err, uint64_t errsz)
{
	struct bpf_map *events = bpf_object__find_map_by_name(t->obj, "events");
	t->rb = events ? ring_buffer__new(bpf_map__fd(events), on_record, t, NULL) : NULL;
	if (!t->rb) {
		set_error(err, errsz, "ring buffer 'events': %s", strerror(errno));
		return -1;
	}
	return 0;
}

uint64_t read_dropped(struct proctrace *t)
{
	uint32_t zero = 0;
	uint64_t n = 0;
	if (t->dropped_fd >= 0)
		bpf_map_lookup_elem(t->dropped_fd, &zero, &n);
	return n;
}

void unload(struct proctrace *t)
{
	if (t->rb)
		ring_buffer__free(t->rb);
	t->rb = NULL;
	for (int i = 0; i < 2; i++) {
		if (t->links[i])
			bpf_link__destroy(t->links[i]); /* closes the perf event too */
		t->links[i] = NULL;
	}
	if (t->pool.base)
		munmap((void *)t->pool.base, t->pool_map_bytes);
	t->pool.base = NULL;
	if (t->obj)
		bpf_object__close(t->obj);
	t->obj = NULL;
}
