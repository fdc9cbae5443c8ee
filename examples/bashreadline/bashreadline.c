// SPDX-License-Identifier: MIT
/*
 * Prints every line bash reads, from a uretprobe on readline through a ring
 * buffer (bcc's bashreadline as a libbpf application with a bpftool
 * skeleton). As root it uses the kernel; under `bpftime load` the same
 * binary traces bashes started with `bpftime start /bin/bash`.
 *
 *   bashreadline [-d SECONDS]
 */
#include <bpf/libbpf.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "bashreadline.h"
#include "bashreadline.skel.h"

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static int print_line(void *ctx, void *data, size_t size)
{
	(void)ctx;
	const struct readline_event *e = data;
	if (size < sizeof(*e))
		return 0;
	char when[16];
	time_t now = time(NULL);
	strftime(when, sizeof(when), "%H:%M:%S", localtime(&now));
	printf("%-9s %-7u %s\n", when, e->pid, e->line);
	fflush(stdout);
	return 0;
}

int main(int argc, char **argv)
{
	int seconds = 0, opt;
	while ((opt = getopt(argc, argv, "d:")) != -1) {
		if (opt != 'd') {
			fprintf(stderr, "usage: %s [-d SECONDS]\n", argv[0]);
			return 2;
		}
		seconds = atoi(optarg);
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	struct bashreadline_bpf *skel = bashreadline_bpf__open_and_load();
	if (!skel) {
		fprintf(stderr, "bashreadline: failed to open and load the BPF skeleton\n");
		return 1;
	}
	struct ring_buffer *rb = NULL;
	int err = bashreadline_bpf__attach(skel);
	if (!err) {
		rb = ring_buffer__new(bpf_map__fd(skel->maps.events), print_line, NULL, NULL);
		err = rb ? 0 : -1;
	}
	if (err) {
		fprintf(stderr, "bashreadline: failed to attach or to open the ring buffer\n");
		bashreadline_bpf__destroy(skel);
		return 1;
	}
	printf("%-9s %-7s %s\n", "TIME", "PID", "COMMAND");
	fflush(stdout);
	time_t end = time(NULL) + seconds;
	while (!stop && (!seconds || time(NULL) < end)) {
		err = ring_buffer__poll(rb, 200);
		if (err < 0 && err != -EINTR) {
			fprintf(stderr, "bashreadline: ring_buffer__poll: %d\n", err);
			break;
		}
	}
	ring_buffer__free(rb);
	bashreadline_bpf__destroy(skel);
	return 0;
}
