// SPDX-License-Identifier: MIT
/*
 * Counts system calls (bcc's syscount as a libbpf application with a bpftool
 * skeleton of bpf/syscount.bpf.o, on the raw_syscalls/sys_enter tracepoint):
 * per syscall, or per process with -P, printed every interval and at Ctrl-C
 * or SIGTERM, each interval's counts starting from zero. As root it uses the
 * kernel; under `bpftime load` the same binary counts the calls of the
 * processes started with `bpftime start`.
 *
 *   syscount [-p PID] [-P] [-L] [-i SECONDS] [-T TOP] [-d SECONDS]
 *     -p PID      only this process (filtered in the program: set before load)
 *     -P          count per process, not per syscall
 *     -L          also the time spent in the calls (raw_syscalls/sys_exit too), in microseconds
 *     -i SECONDS  print every SECONDS (default: only at the end)
 *     -T TOP      print the TOP largest counts (default 10; 0: all)
 *     -d SECONDS  stop after SECONDS
 */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "syscall_names.h"
#include "syscount.h"
#include "syscount.skel.h"

#define MAX_ROWS 10240

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

struct row {
	__u32 key;
	struct syscount_value value;
};

static int by_count(const void *a, const void *b)
{
	const struct row *x = a, *y = b;
	if (x->value.count != y->value.count)
		return x->value.count < y->value.count ? 1 : -1;
	return x->key < y->key ? -1 : x->key > y->key;
}

static struct row rows[MAX_ROWS];

/* Takes every count out of the map (so the next interval starts from zero) and prints the top ones. */
static void print_counts(int map_fd, int by_process, int latency, int top)
{
	__u32 keys[MAX_ROWS], key, next;
	int nkeys = 0, have = 0, n = 0;
	while (nkeys < MAX_ROWS && bpf_map_get_next_key(map_fd, have ? &key : NULL, &next) == 0) {
		keys[nkeys++] = next;
		key = next;
		have = 1;
	}
	for (int i = 0; i < nkeys; i++) {
		rows[n].key = keys[i];
		if (bpf_map_lookup_and_delete_elem(map_fd, &keys[i], &rows[n].value) == 0) {
			n++;
		} else if (bpf_map_lookup_elem(map_fd, &keys[i], &rows[n].value) == 0) {
			bpf_map_delete_elem(map_fd, &keys[i]);
			n++;
		}
	}
	qsort(rows, n, sizeof(rows[0]), by_count);
	char when[16];
	time_t now = time(NULL);
	strftime(when, sizeof(when), "%H:%M:%S", localtime(&now));
	printf("[%s]\n", when);
	if (by_process)
		printf("%-7s %-16s %10s", "PID", "COMM", "COUNT");
	else
		printf("%-24s %10s", "SYSCALL", "COUNT");
	printf(latency ? " %14s\n" : "\n", "TIME (us)");
	for (int i = 0; i < n && (!top || i < top); i++) {
		if (by_process) {
			printf("%-7u %-16.16s %10llu", rows[i].key, rows[i].value.comm, rows[i].value.count);
		} else {
			__u32 nr = rows[i].key;
			const char *name =
				nr < sizeof(syscall_names) / sizeof(syscall_names[0]) ? syscall_names[nr] : NULL;
			if (name)
				printf("%-24s %10llu", name, rows[i].value.count);
			else
				printf("%-24u %10llu", nr, rows[i].value.count);
		}
		if (latency)
			printf(" %14.3f", (double)rows[i].value.total_ns / 1e3);
		printf("\n");
	}
	printf("\n");
	fflush(stdout);
}

static int usage(const char *argv0)
{
	fprintf(stderr, "usage: %s [-p PID] [-P] [-L] [-i SECONDS] [-T TOP] [-d SECONDS]\n", argv0);
	return 2;
}

int main(int argc, char **argv)
{
	int by_process = 0, latency = 0, interval = 0, top = 10, seconds = 0, opt;
	long pid = 0;
	while ((opt = getopt(argc, argv, "p:PLi:T:d:")) != -1) {
		char *end;
		switch (opt) {
		case 'p':
			pid = strtol(optarg, &end, 10);
			if (*end || pid <= 0)
				return usage(argv[0]);
			break;
		case 'P':
			by_process = 1;
			break;
		case 'L':
			latency = 1;
			break;
		case 'i':
			interval = atoi(optarg);
			if (interval <= 0)
				return usage(argv[0]);
			break;
		case 'T':
			top = atoi(optarg);
			if (top < 0)
				return usage(argv[0]);
			break;
		case 'd':
			seconds = atoi(optarg);
			break;
		default:
			return usage(argv[0]);
		}
	}
	if (optind != argc)
		return usage(argv[0]);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);

	struct syscount_bpf *skel = syscount_bpf__open();
	if (!skel) {
		fprintf(stderr, "syscount: failed to open the BPF skeleton\n");
		return 1;
	}
	skel->rodata->target_pid = (__u32)pid;
	skel->rodata->by_process = by_process;
	skel->rodata->measure_latency = latency;
	if (!latency) /* raw_syscalls/sys_exit only when asked for */
		bpf_program__set_autoload(skel->progs.latency_exit, false);
	int err = syscount_bpf__load(skel);
	if (err)
		fprintf(stderr, "syscount: failed to load the BPF program: %d\n", err);
	if (!err) {
		err = syscount_bpf__attach(skel);
		if (err)
			fprintf(stderr, "syscount: failed to attach: %d\n", err);
	}
	if (err) {
		syscount_bpf__destroy(skel);
		return 1;
	}
	int map_fd = bpf_map__fd(skel->maps.counts);
	if (top)
		printf("Tracing syscalls, printing top %d... Ctrl-C to quit.\n", top);
	else
		printf("Tracing syscalls, printing all... Ctrl-C to quit.\n");
	fflush(stdout);
	struct timespec start, now;
	clock_gettime(CLOCK_MONOTONIC, &start);
	long next_print = interval;
	while (!stop) {
		usleep(100 * 1000);
		clock_gettime(CLOCK_MONOTONIC, &now);
		long elapsed_ms = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
		if (seconds && elapsed_ms >= seconds * 1000L)
			break;
		if (interval && elapsed_ms >= next_print * 1000) {
			print_counts(map_fd, by_process, latency, top);
			next_print += interval;
		}
	}
	print_counts(map_fd, by_process, latency, top);
	syscount_bpf__destroy(skel);
	return 0;
}
