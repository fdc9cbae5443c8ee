/*
 * bpf_trace_printk, bpf_trace_vprintk and bpf_snprintf. Output lines follow
 * trace_pipe's format and go where BPFTIME_LOG_OUTPUT says: unset, "console"
 * or "stderr" for the process's stderr, "stdout", or a file to append to.
 */
#define _GNU_SOURCE
#include "helpers.h"
#include "../maps/ringbuf.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#define MAX_ARGS 12

/* One conversion of the kernel's set: %[-+ 0][width](c|d|i|u|x|X|ld|...|llx|p|px|pK|s|%). */
int bpf_format(char *out, size_t size, const char *fmt, uint32_t fmt_size, const uint64_t *args,
	       uint32_t nargs)
{
	size_t o = 0;
	uint32_t used = 0;
	if (size)
		out[0] = 0;
	for (uint32_t i = 0; i < fmt_size && fmt[i]; i++) {
		char piece[512];
		int n;
		if (fmt[i] != '%') {
			piece[0] = fmt[i];
			piece[1] = 0;
			n = 1;
		} else if (i + 1 < fmt_size && fmt[i + 1] == '%') {
			piece[0] = '%';
			piece[1] = 0;
			n = 1;
			i++;
		} else {
			char spec[32] = "%";
			size_t sl = 1;
			i++;
			while (i < fmt_size && strchr("-+ 0", fmt[i]) && sl < 8)
				spec[sl++] = fmt[i++];
			while (i < fmt_size && fmt[i] >= '0' && fmt[i] <= '9' && sl < 12)
				spec[sl++] = fmt[i++];
			int longs = 0;
			while (i < fmt_size && fmt[i] == 'l' && longs < 2) {
				longs++;
				i++;
			}
			if (i >= fmt_size || used >= nargs)
				return -EINVAL;
			char conv = fmt[i];
			uint64_t a = args[used++];
			switch (conv) {
			case 'd': case 'i': case 'u': case 'x': case 'X': {
				spec[sl++] = 'l';
				spec[sl++] = 'l';
				spec[sl++] = conv;
				spec[sl] = 0;
				long long v = longs == 2 || longs == 1 ? (long long)a
					      : conv == 'd' || conv == 'i' ? (long long)(int32_t)a
									   : (long long)(uint32_t)a;
				n = snprintf(piece, sizeof(piece), spec, v);
				break;
			}
			case 'c':
				n = snprintf(piece, sizeof(piece), "%c", (char)a);
				break;
			case 'p':
				if (i + 1 < fmt_size && (fmt[i + 1] == 'x' || fmt[i + 1] == 'K'))
					i++;
				n = snprintf(piece, sizeof(piece), "0x%llx", (unsigned long long)a);
				break;
			case 's': {
				char str[256];
				long len = safe_read_str(str, a, sizeof(str));
				if (len < 0)
					snprintf(str, sizeof(str), "(efault)");
				spec[sl++] = 's';
				spec[sl] = 0;
				n = snprintf(piece, sizeof(piece), spec, str);
				break;
			}
			default:
				return -EINVAL;
			}
		}
		if (n < 0)
			return -EINVAL;
		if (size && o < size - 1) {
			size_t room = size - 1 - o;
			size_t take = (size_t)n < room ? (size_t)n : room;
			memcpy(out + o, piece, take);
			out[o + take] = 0;
		}
		o += (size_t)n;
	}
	return (int)o;
}

static pthread_once_t output_once = PTHREAD_ONCE_INIT;
static int output_fd = 2;

static void open_output(void)
{
	const char *where = getenv("BPFTIME_LOG_OUTPUT");
	if (!where || !*where || !strcmp(where, "console") || !strcmp(where, "stderr"))
		return;
	if (!strcmp(where, "stdout")) {
		output_fd = 1;
		return;
	}
	int fd = open(where, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd >= 0)
		output_fd = fd;
}

/*
 * `bpftime run` collects trace_printk lines from every traced process
 * through a ring buffer named "trace_printk" in the segment. Looked up on
 * every line (printing is slow anyway), so one deleted or added is seen.
 */
static struct shm_map *trace_ring(struct bpftime_shm *shm)
{
	for (int i = 0; shm && i < SHM_MAX_OBJECTS; i++) {
		const struct shm_object *o = &shm->hdr->objects[i];
		if (__atomic_load_n(&o->id, __ATOMIC_ACQUIRE) && o->kind == SHM_MAP &&
		    !strncmp(o->name, TRACE_RING_NAME, SHM_NAME_LEN)) {
			struct shm_map *m = shm_ptr(shm, o->offset);
			return m->type == MAP_RINGBUF ? m : NULL;
		}
	}
	return NULL;
}

/* "<comm>-<pid> [<cpu>] .... <seconds>.<usec>: bpf_trace_printk: <msg>" */
void trace_output(const char *msg)
{
	pthread_once(&output_once, open_output);
	char comm[17] = "";
	prctl(PR_GET_NAME, comm);
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	char line[1024];
	size_t len = strlen(msg);
	while (len && msg[len - 1] == '\n')
		len--;
	int n = snprintf(line, sizeof(line), "%16s-%-7d [%03d] d..31 %5lld.%06ld: bpf_trace_printk: %.*s\n",
			 comm, (int)gettid(), current_cpu(), (long long)ts.tv_sec, ts.tv_nsec / 1000,
			 (int)len, msg);
	if (n <= 0)
		return;
	size_t size = (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1;
	struct bpftime_shm *shm = current_run && current_run->vm ? vm_user(current_run->vm) : NULL;
	struct shm_map *ring = output_fd == 2 ? trace_ring(shm) : NULL; /* BPFTIME_LOG_OUTPUT wins */
	if (ring && rb_output(shm, ring, line, size, 0) == 0)
		return;
	ssize_t w = write(output_fd, line, size);
	(void)w;
}

static uint64_t trace_printk(uint64_t fmt, uint64_t fmt_size, uint64_t a1, uint64_t a2, uint64_t a3)
{
	if (fmt_size == 0 || fmt_size > 1024 || !run_access_ok(fmt, fmt_size))
		return (uint64_t)-EINVAL;
	uint64_t args[3] = {a1, a2, a3};
	char msg[512];
	int n = bpf_format(msg, sizeof(msg), (const char *)(uintptr_t)fmt, (uint32_t)fmt_size, args, 3);
	if (n < 0)
		return (uint64_t)(int64_t)n;
	trace_output(msg);
	return (uint64_t)n;
}

static int read_args(uint64_t data, uint64_t data_len, uint64_t *args)
{
	if (data_len % 8 || data_len > 8 * MAX_ARGS || (data_len && !run_access_ok(data, data_len)))
		return -EINVAL;
	memcpy(args, (const void *)(uintptr_t)data, data_len);
	return (int)(data_len / 8);
}

static uint64_t trace_vprintk(uint64_t fmt, uint64_t fmt_size, uint64_t data, uint64_t data_len,
			      uint64_t a5)
{
	(void)a5;
	uint64_t args[MAX_ARGS];
	int nargs = read_args(data, data_len, args);
	if (nargs < 0 || fmt_size == 0 || !run_access_ok(fmt, fmt_size))
		return (uint64_t)-EINVAL;
	char msg[512];
	int n = bpf_format(msg, sizeof(msg), (const char *)(uintptr_t)fmt, (uint32_t)fmt_size, args,
			   (uint32_t)nargs);
	if (n < 0)
		return (uint64_t)(int64_t)n;
	trace_output(msg);
	return (uint64_t)n;
}

/* Returns the length including the NUL, like the kernel. */
static uint64_t bpf_snprintf(uint64_t str, uint64_t str_size, uint64_t fmt, uint64_t data,
			     uint64_t data_len)
{
	uint64_t args[MAX_ARGS];
	int nargs = read_args(data, data_len, args);
	if (nargs < 0 || (str_size && !run_write_ok(str, str_size)) || !run_access_ok(fmt, 1))
		return (uint64_t)-EINVAL;
	char fmt_copy[512];
	long fl = safe_read_str(fmt_copy, fmt, sizeof(fmt_copy));
	if (fl < 0)
		return (uint64_t)-EINVAL;
	int n = bpf_format((char *)(uintptr_t)str, str_size, fmt_copy, (uint32_t)fl, args,
			   (uint32_t)nargs);
	return n < 0 ? (uint64_t)(int64_t)n : (uint64_t)n + 1;
}

const struct helper_def trace_helpers[] = {
	{6, "bpf_trace_printk", trace_printk},
	{165, "bpf_snprintf", bpf_snprintf},
	{177, "bpf_trace_vprintk", trace_vprintk},
	{0, NULL, NULL},
};
