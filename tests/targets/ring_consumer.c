/*
 * An ordinary libbpf application for the ring buffer tests and bench: loads
 * ring_events.bpf.o (or perf_events.bpf.o), attaches its uprobe to add() in
 * BINARY, and consumes records with ring_buffer__poll (or, when the map
 * "events" is a perf event array, perf_buffer__poll with PAGES pages per CPU, 16 by default),
 * both in epoll, until EXPECTED arrived (or were reported lost) or TIMEOUT
 * seconds passed. Prints "ready" once attached, then one JSON line: records
 * per thread, the ring's sequence check, and the consumer's CPU time while it
 * waited idle for the first record.
 *
 *   ring_consumer OBJECT BINARY EXPECTED [TIMEOUT_S [PAGES]]
 */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

struct event {
	unsigned int pid, tid;
	long long a, b;
};

#define MAX_TIDS 64
static struct {
	unsigned int tid;
	long long count, next_a, out_of_order;
} tids[MAX_TIDS];
static long long total, lost, first_ns, last_ns;

static long long now_ns(int clock)
{
	struct timespec ts;
	clock_gettime(clock, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int on_event(void *ctx, void *data, size_t size)
{
	(void)ctx;
	const struct event *e = data;
	if (size < sizeof(*e))
		return 0;
	if (!total)
		first_ns = now_ns(CLOCK_MONOTONIC);
	last_ns = now_ns(CLOCK_MONOTONIC);
	total++;
	for (int i = 0; i < MAX_TIDS; i++) {
		if (tids[i].tid && tids[i].tid != e->tid)
			continue;
		tids[i].tid = e->tid;
		/* Each thread calls add(0), add(1), ...: its records arrive in that order. */
		if (e->a != tids[i].next_a)
			tids[i].out_of_order++;
		tids[i].next_a = e->a + 1;
		tids[i].count++;
		break;
	}
	return 0;
}

static void on_sample(void *ctx, int cpu, void *data, __u32 size)
{
	(void)cpu;
	on_event(ctx, data, size);
}

static void on_lost(void *ctx, int cpu, __u64 count)
{
	(void)ctx, (void)cpu;
	lost += (long long)count;
}

static int quiet(enum libbpf_print_level level, const char *fmt, va_list args)
{
	return level == LIBBPF_DEBUG ? 0 : vfprintf(stderr, fmt, args);
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: %s OBJECT BINARY EXPECTED [TIMEOUT_S [PAGES]]\n", argv[0]);
		return 2;
	}
	long long expected = atoll(argv[3]);
	double timeout = argc > 4 ? atof(argv[4]) : 60;
	size_t pages = argc > 5 ? (size_t)atol(argv[5]) : 16;
	libbpf_set_print(quiet);
	struct bpf_object *obj = bpf_object__open_file(argv[1], NULL);
	if (!obj || bpf_object__load(obj)) {
		fprintf(stderr, "ring_consumer: cannot load %s\n", argv[1]);
		return 1;
	}
	struct bpf_program *prog = bpf_object__find_program_by_name(obj, "on_add");
	LIBBPF_OPTS(bpf_uprobe_opts, opts, .func_name = "add");
	struct bpf_link *link = bpf_program__attach_uprobe_opts(prog, -1, argv[2], 0, &opts);
	if (!link) {
		fprintf(stderr, "ring_consumer: cannot attach to add() in %s\n", argv[2]);
		return 1;
	}
	struct bpf_map *map = bpf_object__find_map_by_name(obj, "events");
	int map_fd = bpf_map__fd(map);
	bool perf = bpf_map__type(map) == BPF_MAP_TYPE_PERF_EVENT_ARRAY;
	struct ring_buffer *rb = perf ? NULL : ring_buffer__new(map_fd, on_event, NULL, NULL);
	struct perf_buffer *pb = perf ? perf_buffer__new(map_fd, pages, on_sample, on_lost, NULL, NULL) : NULL;
	if (!rb && !pb) {
		fprintf(stderr, "ring_consumer: cannot open the %s\n", perf ? "perf buffer" : "ring buffer");
		return 1;
	}
	printf("ready\n");
	fflush(stdout);
	long long start = now_ns(CLOCK_MONOTONIC), cpu0 = now_ns(CLOCK_PROCESS_CPUTIME_ID);
	long long idle_ns = -1, idle_cpu_ns = -1, polls = 0;
	while (total + lost < expected && now_ns(CLOCK_MONOTONIC) - start < timeout * 1e9) {
		int n = perf ? perf_buffer__poll(pb, 200) : ring_buffer__poll(rb, 200);
		polls++;
		if (n < 0) {
			fprintf(stderr, "ring_consumer: ring_buffer__poll: %d\n", n);
			break;
		}
		if (total && idle_ns < 0) {
			idle_ns = first_ns - start;
			idle_cpu_ns = now_ns(CLOCK_PROCESS_CPUTIME_ID) - cpu0;
		}
	}
	double secs = (last_ns - first_ns) / 1e9;
	printf("{\"events\":%lld,\"lost\":%lld,\"idle_ms\":%.1f,\"idle_cpu_ms\":%.2f,\"polls\":%lld,"
	       "\"events_per_s\":%.0f,\"threads\":{",
	       total, lost, idle_ns / 1e6, idle_cpu_ns / 1e6, polls, secs > 0 ? total / secs : 0.0);
	for (int i = 0, first = 1; i < MAX_TIDS && tids[i].tid; i++, first = 0)
		printf("%s\"%u\":{\"count\":%lld,\"out_of_order\":%lld}", first ? "" : ",", tids[i].tid,
		       tids[i].count, tids[i].out_of_order);
	printf("}}\n");
	ring_buffer__free(rb);
	perf_buffer__free(pb);
	bpf_link__destroy(link);
	bpf_object__close(obj);
	return 0;
}
