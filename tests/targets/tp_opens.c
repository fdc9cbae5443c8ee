// SPDX-License-Identifier: MIT
/*
 * A libbpf application with a syscall tracepoint program
 * (SEC("tp/syscalls/sys_enter_openat"), a bpftool skeleton): counts openat
 * calls on /tmp/bpftime_tp_srv* files per process and prints them every
 * 100 ms ("pid=N opens=M" lines after a "tick" line) until SIGTERM. The same
 * binary runs on the kernel (root) and under `bpftime load`.
 *
 *   tp_opens perf ID...   perf_event_open of each tracepoint id; prints "ID ok" or "ID errno N"
 */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <linux/perf_event.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "tp_opens.skel.h"

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static int print_libbpf(enum libbpf_print_level level, const char *fmt, va_list args)
{
	return level == LIBBPF_DEBUG ? 0 : vfprintf(stderr, fmt, args);
}

static int perf_opens(int n, char **ids)
{
	for (int i = 0; i < n; i++) {
		struct perf_event_attr attr;
		memset(&attr, 0, sizeof(attr));
		attr.type = PERF_TYPE_TRACEPOINT;
		attr.size = sizeof(attr);
		attr.config = strtoull(ids[i], NULL, 10);
		long fd = syscall(__NR_perf_event_open, &attr, -1, 0, -1, PERF_FLAG_FD_CLOEXEC);
		if (fd >= 0) {
			printf("%s ok\n", ids[i]);
			close((int)fd);
		} else {
			printf("%s errno %d\n", ids[i], errno);
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "perf") == 0)
		return perf_opens(argc - 2, argv + 2);
	libbpf_set_print(print_libbpf);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	struct tp_opens_bpf *skel = tp_opens_bpf__open_and_load();
	if (!skel) {
		fprintf(stderr, "tp_opens: failed to open and load the BPF skeleton\n");
		return 1;
	}
	int err = tp_opens_bpf__attach(skel);
	if (err) {
		fprintf(stderr, "tp_opens: failed to attach: %d\n", err);
		tp_opens_bpf__destroy(skel);
		return 1;
	}
	int fd = bpf_map__fd(skel->maps.opens);
	while (!stop) {
		printf("tick\n");
		__u32 key, next;
		__u64 count;
		int have = 0;
		while (bpf_map_get_next_key(fd, have ? &key : NULL, &next) == 0) {
			if (bpf_map_lookup_elem(fd, &next, &count) == 0)
				printf("pid=%u opens=%llu\n", next, (unsigned long long)count);
			key = next;
			have = 1;
		}
		fflush(stdout);
		usleep(100000);
	}
	tp_opens_bpf__destroy(skel);
	return 0;
}
