// SPDX-License-Identifier: MIT
/*
 * A libbpf application for USDT (tests/bpf/usdt_args.bpf.c, a bpftool
 * skeleton): attaches the program to usdt_target's probes with libbpf's
 * bpf_program__attach_usdt (cookies 1..4), prints "ready", then one line per
 * hit: "COOKIE cnt=N args=A,B,... rc=R,R,... str=S". Runs until SIGTERM; the
 * same binary runs on the kernel (root) and under `bpftime load`.
 *
 *   usdt_events TARGET_PATH [PID]
 */
#include <bpf/libbpf.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "usdt_args.skel.h"
#include "usdt_event.h"

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

static int on_event(void *ctx, void *data, size_t len)
{
	(void)ctx;
	const struct usdt_event *e = data;
	if (len < sizeof(*e))
		return 0;
	printf("%llu cnt=%d args=", e->cookie, e->arg_cnt);
	for (int i = 0; i < USDT_EVENT_ARGS; i++)
		printf(i ? ",%lld" : "%lld", e->args[i]);
	printf(" rc=");
	for (int i = 0; i < USDT_EVENT_ARGS; i++)
		printf(i ? ",%d" : "%d", e->arg_rc[i]);
	printf(" str=%.16s\n", e->str);
	return 0;
}

static const char *const probes[] = {"plain", "consts", "frame", "guarded"};

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: usdt_events TARGET_PATH [PID]\n");
		return 2;
	}
	pid_t pid = argc > 2 ? atoi(argv[2]) : -1;
	setvbuf(stdout, NULL, _IOLBF, 0);
	libbpf_set_print(print_libbpf);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	struct usdt_args_bpf *skel = usdt_args_bpf__open_and_load();
	if (!skel) {
		fprintf(stderr, "usdt_events: failed to open and load the BPF skeleton\n");
		return 1;
	}
	struct bpf_link *links[4] = {0};
	int rc = 0;
	for (int i = 0; i < 4 && !rc; i++) {
		LIBBPF_OPTS(bpf_usdt_opts, opts, .usdt_cookie = (unsigned long long)i + 1);
		links[i] = bpf_program__attach_usdt(skel->progs.on_usdt, pid, argv[1], "bpftime_usdt", probes[i], &opts);
		if (!links[i]) {
			fprintf(stderr, "usdt_events: cannot attach to %s:bpftime_usdt:%s\n", argv[1], probes[i]);
			rc = 1;
		}
	}
	struct ring_buffer *rb = rc ? NULL : ring_buffer__new(bpf_map__fd(skel->maps.events), on_event, NULL, NULL);
	if (!rc && !rb)
		rc = 1;
	if (!rc)
		printf("ready\n");
	while (!rc && !stop) {
		int n = ring_buffer__poll(rb, 50);
		if (n < 0 && !stop) {
			fprintf(stderr, "usdt_events: ring_buffer__poll: %d\n", n);
			rc = 1;
		}
	}
	ring_buffer__free(rb);
	for (int i = 0; i < 4; i++)
		bpf_link__destroy(links[i]);
	usdt_args_bpf__destroy(skel);
	return rc;
}
