// SPDX-License-Identifier: MIT
/*
 * Makes malloc fail in one process: a libbpf application (bpftool skeleton of
 * bpf/errinject.bpf.o) that puts a uprobe on libc's malloc, whose program
 * makes PERCENT of the target's calls return NULL at once with
 * bpf_override_return. The kernel refuses bpf_override_return in uprobes; run
 * it under `bpftime load`, with the target under `bpftime start`:
 *
 *   bpftime start ./victim &
 *   bpftime load errinject -p $(pidof victim) -r 50
 *
 *   errinject -p PID [-r PERCENT]   prints "injecting" once attached; at
 *   SIGINT/SIGTERM, "calls=N failed=M" (the target's malloc calls, those failed)
 */
#include <bpf/libbpf.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "errinject.h"
#include "errinject.skel.h"

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

int main(int argc, char **argv)
{
	long pid = 0, percent = 100;
	int opt;
	while ((opt = getopt(argc, argv, "p:r:")) != -1) {
		if (opt == 'p')
			pid = strtol(optarg, NULL, 10);
		else if (opt == 'r')
			percent = strtol(optarg, NULL, 10);
		else
			return fprintf(stderr, "usage: %s -p PID [-r PERCENT]\n", argv[0]), 2;
	}
	if (pid <= 0 || percent < 0 || percent > 100) {
		fprintf(stderr, "usage: %s -p PID [-r PERCENT (0-100)]\n", argv[0]);
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	struct errinject_bpf *skel = errinject_bpf__open();
	if (!skel) {
		fprintf(stderr, "errinject: cannot open the BPF object\n");
		return 1;
	}
	skel->rodata->target_pid = (unsigned)pid;
	skel->rodata->percent = (unsigned)percent;
	int rc = 1;
	if (errinject_bpf__load(skel)) {
		fprintf(stderr, "errinject: cannot load the BPF object\n");
		goto out;
	}
	LIBBPF_OPTS(bpf_uprobe_opts, uopts, .func_name = "malloc");
	struct bpf_link *link = bpf_program__attach_uprobe_opts(skel->progs.fail_malloc, (pid_t)pid, "libc.so.6", 0, &uopts);
	if (!link) {
		fprintf(stderr, "errinject: cannot attach to malloc in libc.so.6 of process %ld\n", pid);
		goto out;
	}
	printf("injecting\n");
	while (!stop)
		pause();
	bpf_link__destroy(link);
	struct errinject_stats s = {0, 0};
	unsigned zero = 0;
	bpf_map__lookup_elem(skel->maps.stats, &zero, sizeof(zero), &s, sizeof(s), 0);
	printf("calls=%llu failed=%llu\n", s.calls, s.failed);
	rc = 0;
out:
	errinject_bpf__destroy(skel);
	return rc;
}
