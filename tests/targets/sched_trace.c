/*
 * An ordinary libbpf application for tests/sched_tracepoint_test.ts: loads
 * sched_proc.bpf.o, attaches its sched_process_exec/exit/fork programs, and
 * prints each event as a JSON line until SIGINT or SIGTERM (then drains the
 * ring). Prints "ready" once attached. The same binary runs on the kernel
 * (root) and under `bpftime load`.
 *
 *   sched_trace OBJECT
 */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "sched_proc.h"

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

/* A C string as JSON (the test's strings are paths and names: quotes, backslashes, controls escaped). */
static void json_str(const char *s, size_t max)
{
	putchar('"');
	for (size_t i = 0; i < max && s[i]; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

static int on_event(void *ctx, void *data, size_t size)
{
	(void)ctx;
	const struct sched_event *e = data;
	if (size < sizeof(*e))
		return 0;
	static const char *const kinds[] = {"?", "exec", "exit", "fork"};
	printf("{\"kind\":\"%s\",\"pid\":%u,\"tid\":%u,\"ppid\":%u,\"ppid_btf\":%u,\"ctx_pid\":%u,"
	       "\"other_pid\":%u,\"uid\":%u,\"leader_pid\":%u,\"exit_code\":%d,\"exit_signal\":%d,"
	       "\"start_boottime\":%llu,\"comm\":",
	       kinds[e->kind < 4 ? e->kind : 0], e->pid, e->tid, e->ppid, e->ppid_btf, e->ctx_pid, e->other_pid,
	       e->uid, e->leader_pid, e->exit_code, e->exit_signal_bits, e->start_boottime);
	json_str(e->comm, sizeof(e->comm));
	printf(",\"ctx_comm\":");
	json_str(e->ctx_comm, sizeof(e->ctx_comm));
	printf(",\"filename\":");
	json_str(e->filename, sizeof(e->filename));
	printf(",\"argv0\":");
	json_str(e->argv0, sizeof(e->argv0));
	printf(",\"argv1\":");
	json_str(e->argv1, sizeof(e->argv1));
	printf("}\n");
	fflush(stdout);
	return 0;
}

static int quiet(enum libbpf_print_level level, const char *fmt, va_list args)
{
	return level == LIBBPF_DEBUG ? 0 : vfprintf(stderr, fmt, args);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: sched_trace OBJECT\n");
		return 2;
	}
	libbpf_set_print(quiet);
	struct bpf_object *obj = bpf_object__open_file(argv[1], NULL);
	if (!obj || bpf_object__load(obj)) {
		fprintf(stderr, "sched_trace: cannot load %s\n", argv[1]);
		return 1;
	}
	struct bpf_program *prog;
	bpf_object__for_each_program(prog, obj)
	{
		if (!bpf_program__attach(prog)) {
			fprintf(stderr, "sched_trace: cannot attach %s\n", bpf_program__name(prog));
			return 1;
		}
	}
	struct ring_buffer *rb =
		ring_buffer__new(bpf_map__fd(bpf_object__find_map_by_name(obj, "events")), on_event, NULL, NULL);
	if (!rb) {
		fprintf(stderr, "sched_trace: no ring buffer\n");
		return 1;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	printf("ready\n");
	fflush(stdout);
	while (!stop)
		ring_buffer__poll(rb, 100);
	ring_buffer__consume(rb);
	ring_buffer__free(rb);
	bpf_object__close(obj);
	return 0;
}
