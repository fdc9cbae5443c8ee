/*
 * A plain libbpf tool for tests/daemon_test.ts: attaches daemon_events.bpf.o's three uprobe
 * programs to function FUNC of BINARY, says "attached", reads their events through
 * ring_buffer__poll and perf_buffer__poll, and after a line "q" on stdin (or EOF) drains both
 * and prints, per kind, the number of events and the sums of their a and b of the first process
 * that sent any (or of process PID after a line "q PID"), the events of other processes, the perf
 * records lost, and the programs' run_cnt (kernel.bpf_stats_enabled=1).
 *
 *   daemon_events OBJ BINARY FUNC [PROGRAM]   (PROGRAM: attach only that one; run_cnt is its)
 *   daemon_events --maps     creates the two maps only (no programs) and says "maps RING PERF"
 *                            (their kernel ids) instead of "attached", for another loader's programs
 */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct event {
	__u64 a, b;
	__u32 pid, kind;
};

/* Per process (the first MAX_PIDS seen), per kind. */
#define MAX_PIDS 16
static struct by_pid {
	__u32 pid;
	struct {
		unsigned long long n, a, b;
	} kinds[4];
} pids[MAX_PIDS];
static unsigned npids;
static unsigned long long bad, lost, other_pid;

static void count(const void *data, size_t size)
{
	const struct event *e = data;
	if (size < sizeof(*e) || e->kind < 1 || e->kind > 3) {
		bad++;
		return;
	}
	unsigned i = 0;
	while (i < npids && pids[i].pid != e->pid)
		i++;
	if (i == npids && npids < MAX_PIDS)
		pids[npids++].pid = e->pid;
	if (i == MAX_PIDS)
		return;
	if (i > 0)
		other_pid++;
	pids[i].kinds[e->kind].n++;
	pids[i].kinds[e->kind].a += e->a;
	pids[i].kinds[e->kind].b += e->b;
}

static int on_ring(void *ctx, void *data, size_t size)
{
	(void)ctx;
	count(data, size);
	return 0;
}

static void on_perf(void *ctx, int cpu, void *data, __u32 size)
{
	(void)ctx, (void)cpu;
	count(data, size);
}

static void on_lost(void *ctx, int cpu, __u64 n)
{
	(void)ctx, (void)cpu;
	lost += n;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	const char *names[] = {"ring_output", "ring_reserve", "perf_output"};
	struct bpf_program *progs[3];
	struct bpf_object *obj = NULL;
	int nprogs = 0, ring_fd, perf_fd;
	if (argc == 2 && !strcmp(argv[1], "--maps")) {
		ring_fd = bpf_map_create(BPF_MAP_TYPE_RINGBUF, "events", 0, 0, 1024 * 1024, NULL);
		perf_fd = bpf_map_create(BPF_MAP_TYPE_PERF_EVENT_ARRAY, "perf_events", 4, 4,
					 (__u32)libbpf_num_possible_cpus(), NULL);
	} else if (argc == 4 || argc == 5) {
		obj = bpf_object__open_file(argv[1], NULL);
		if (!obj || bpf_object__load(obj)) {
			fprintf(stderr, "daemon_events: cannot load %s\n", argv[1]);
			return 1;
		}
		nprogs = 3;
		if (argc == 5) {
			names[0] = argv[4];
			nprogs = 1;
		}
		for (int i = 0; i < nprogs; i++) {
			progs[i] = bpf_object__find_program_by_name(obj, names[i]);
			LIBBPF_OPTS(bpf_uprobe_opts, opts, .func_name = argv[3]);
			if (!progs[i] || !bpf_program__attach_uprobe_opts(progs[i], -1, argv[2], 0, &opts)) {
				fprintf(stderr, "daemon_events: cannot attach %s to %s:%s\n", names[i], argv[2],
					argv[3]);
				return 1;
			}
		}
		ring_fd = bpf_object__find_map_fd_by_name(obj, "events");
		perf_fd = bpf_object__find_map_fd_by_name(obj, "perf_events");
	} else {
		fprintf(stderr, "usage: %s OBJ BINARY FUNC [PROGRAM] | --maps\n", argv[0]);
		return 2;
	}
	struct ring_buffer *rb = ring_buffer__new(ring_fd, on_ring, NULL, NULL);
	struct perf_buffer *pb = perf_buffer__new(perf_fd, 256, on_perf, on_lost, NULL, NULL);
	if (!rb || !pb) {
		fprintf(stderr, "daemon_events: cannot open the ring or perf buffer\n");
		return 1;
	}
	if (!obj) {
		struct bpf_map_info ri, pi;
		__u32 len = sizeof(ri);
		memset(&ri, 0, sizeof(ri));
		memset(&pi, 0, sizeof(pi));
		bpf_obj_get_info_by_fd(ring_fd, &ri, &len);
		len = sizeof(pi);
		bpf_obj_get_info_by_fd(perf_fd, &pi, &len);
		printf("maps %u %u\n", ri.id, pi.id);
	} else
		printf("attached\n");
	__u32 report = 0;
	for (;;) {
		ring_buffer__poll(rb, 20);
		perf_buffer__poll(pb, 20);
		struct pollfd p = {0, POLLIN, 0};
		if (poll(&p, 1, 0) == 1) {
			char line[32];
			if (!fgets(line, sizeof(line), stdin))
				break;
			if (line[0] == 'q') {
				report = (__u32)strtoul(line + 1, NULL, 10);
				break;
			}
		}
	}
	ring_buffer__consume(rb);
	perf_buffer__consume(pb);
	struct by_pid none = {0}, *r = npids ? &pids[0] : &none;
	for (unsigned i = 0; report && i < npids; i++)
		if (pids[i].pid == report)
			r = &pids[i];
	if (report && r->pid != report)
		r = &none;
	printf("ring=%llu/%llu/%llu reserve=%llu/%llu/%llu perf=%llu/%llu/%llu other_pid=%llu bad=%llu lost=%llu",
	       r->kinds[1].n, r->kinds[1].a, r->kinds[1].b, r->kinds[2].n, r->kinds[2].a, r->kinds[2].b,
	       r->kinds[3].n, r->kinds[3].a, r->kinds[3].b, other_pid, bad, lost);
	printf(" run_cnt=");
	for (int i = 0; i < nprogs; i++) {
		struct bpf_prog_info info;
		__u32 len = sizeof(info);
		memset(&info, 0, sizeof(info));
		bpf_obj_get_info_by_fd(bpf_program__fd(progs[i]), &info, &len);
		printf("%s%llu", i ? "," : "", (unsigned long long)info.run_cnt);
	}
	printf("\n");
	ring_buffer__free(rb);
	perf_buffer__free(pb);
	if (obj)
		bpf_object__close(obj);
	return 0;
}
