// SPDX-License-Identifier: MIT
/*
 * The seeds' malloc example as a libbpf application: a bpftool skeleton of
 * bpf/malloc.bpf.o (a uprobe on libc's malloc counting calls per process)
 * and a loop printing the counts every second. Run as root it uses the
 * kernel; under `bpftime load` the same binary runs in userspace.
 *
 *   malloc [-v] [-d SECONDS]    -v: libbpf's debug log; -d: stop after SECONDS
 */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "malloc.skel.h"

static volatile sig_atomic_t stop;
static int verbose;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static int print_libbpf(enum libbpf_print_level level, const char *fmt, va_list args)
{
	if (level == LIBBPF_DEBUG && !verbose)
		return 0;
	return vfprintf(stderr, fmt, args);
}

static void print_counts(int map_fd)
{
	char when[32];
	time_t now = time(NULL);
	strftime(when, sizeof(when), "%H:%M:%S", localtime(&now));
	printf("%s \n", when);
	__u32 key, next;
	__u64 count;
	int have = 0;
	while (bpf_map_get_next_key(map_fd, have ? &key : NULL, &next) == 0) {
		if (bpf_map_lookup_elem(map_fd, &next, &count) == 0)
			printf("\tpid=%u\tmalloc calls: %llu\n", next, (unsigned long long)count);
		key = next;
		have = 1;
	}
	fflush(stdout);
}

int main(int argc, char **argv)
{
	int seconds = 0, opt;
	while ((opt = getopt(argc, argv, "vd:")) != -1) {
		if (opt == 'v')
			verbose = 1;
		else if (opt == 'd')
			seconds = atoi(optarg);
		else {
			fprintf(stderr, "usage: %s [-v] [-d SECONDS]\n", argv[0]);
			return 2;
		}
	}
	libbpf_set_print(print_libbpf);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);

	struct malloc_bpf *skel = malloc_bpf__open_and_load();
	if (!skel) {
		fprintf(stderr, "malloc: failed to open and load the BPF skeleton\n");
		return 1;
	}
	int err = malloc_bpf__attach(skel);
	if (err) {
		fprintf(stderr, "malloc: failed to attach: %d\n", err);
		malloc_bpf__destroy(skel);
		return 1;
	}
	int map_fd = bpf_map__fd(skel->maps.libc_malloc_calls_total);
	for (int t = 0; !stop && (!seconds || t < seconds); t++) {
		sleep(1);
		print_counts(map_fd);
	}
	malloc_bpf__destroy(skel);
	return 0;
}
