// SPDX-License-Identifier: MIT
/*
 * Prints every openat: pid, command, flags, fd or errno, and path (bcc's
 * opensnoop as a libbpf application with a bpftool skeleton of
 * bpf/opensnoop.bpf.o, on the syscalls/sys_{enter,exit}_openat tracepoints).
 * As root it uses the kernel; under `bpftime load` the same binary traces
 * the processes started with `bpftime start`.
 *
 *   opensnoop [-p PID] [-x] [-d SECONDS]
 *     -p PID      only this process (filtered in the program: set before load)
 *     -x          only the opens that failed
 *     -d SECONDS  stop after SECONDS (default: at Ctrl-C or SIGTERM)
 */
#include <bpf/libbpf.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "opensnoop.h"
#include "opensnoop.skel.h"

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static int print_event(void *ctx, void *data, size_t size)
{
	(void)ctx;
	const struct open_event *e = data;
	if (size < sizeof(*e))
		return 0;
	int fd = e->ret >= 0 ? e->ret : -1;
	int err = e->ret >= 0 ? 0 : -e->ret;
	printf("%-7u %-16.16s %08o %4d %4d %.*s\n", e->pid, e->comm, (unsigned)e->flags, fd, err,
	       OPENSNOOP_PATH_MAX, e->path);
	fflush(stdout);
	return 0;
}

static int usage(const char *argv0)
{
	fprintf(stderr, "usage: %s [-p PID] [-x] [-d SECONDS]\n", argv0);
	return 2;
}

int main(int argc, char **argv)
{
	int seconds = 0, failed_only = 0, opt;
	long pid = 0;
	while ((opt = getopt(argc, argv, "p:xd:")) != -1) {
		char *end;
		switch (opt) {
		case 'p':
			pid = strtol(optarg, &end, 10);
			if (*end || pid <= 0)
				return usage(argv[0]);
			break;
		case 'x':
			failed_only = 1;
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

	struct opensnoop_bpf *skel = opensnoop_bpf__open();
	if (!skel) {
		fprintf(stderr, "opensnoop: failed to open the BPF skeleton\n");
		return 1;
	}
	skel->rodata->target_pid = (__u32)pid;
	skel->rodata->failed_only = failed_only;
	struct ring_buffer *rb = NULL;
	int err = opensnoop_bpf__load(skel);
	if (err)
		fprintf(stderr, "opensnoop: failed to load the BPF programs: %d\n", err);
	if (!err) {
		err = opensnoop_bpf__attach(skel);
		if (err)
			fprintf(stderr, "opensnoop: failed to attach: %d\n", err);
	}
	if (!err) {
		rb = ring_buffer__new(bpf_map__fd(skel->maps.events), print_event, NULL, NULL);
		if (!rb) {
			err = -errno;
			fprintf(stderr, "opensnoop: failed to open the ring buffer: %d\n", err);
		}
	}
	if (err) {
		opensnoop_bpf__destroy(skel);
		return 1;
	}
	printf("%-7s %-16s %-8s %4s %4s %s\n", "PID", "COMM", "FLAGS", "FD", "ERR", "PATH");
	fflush(stdout);
	time_t end = time(NULL) + seconds;
	while (!stop && (!seconds || time(NULL) < end)) {
		err = ring_buffer__poll(rb, 200);
		if (err < 0 && err != -EINTR) {
			fprintf(stderr, "opensnoop: ring_buffer__poll: %d\n", err);
			break;
		}
	}
	ring_buffer__consume(rb); /* what arrived before the signal */
	ring_buffer__free(rb);
	opensnoop_bpf__destroy(skel);
	return err < 0 && err != -EINTR ? 1 : 0;
}
