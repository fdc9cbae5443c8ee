// SPDX-License-Identifier: MIT
/*
 * A libbpf application with a syscall tracepoint program
 * (SEC("tp/syscalls/sys_enter_openat"), a bpftool skeleton): counts openat
 * calls on /tmp/bpftime_tp_srv* files per process and prints them every
 * 100 ms ("pid=N opens=M" lines after a "tick" line) until SIGTERM. The same
 * binary runs on the kernel (root) and under `bpftime load`.
 */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
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

int main(void)
{
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
