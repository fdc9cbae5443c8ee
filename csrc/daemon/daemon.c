/*
 * `bpftime daemon` (build/bpftime-daemon; the CLI runs it): loads the kernel tracer
 * (bpf/daemon_tracer.bpf.c), then turns the events of watched processes into segment objects
 * (redirect.c) until SIGINT or SIGTERM, and then deletes what it made.
 *
 *   bpftime-daemon [-p PID] [-u UID] [-w OFFSET]... [-v]
 *
 * The segment is $BPFTIME_GLOBAL_SHM_NAME (default bpftime_maps_shm), created when missing
 * ($BPFTIME_SHM_MEMORY_MB MiB, default 32; shared with group $BPFTIME_SHM_GROUP when set).
 */
#define _GNU_SOURCE
#include "daemon.h"

#include <bpf/libbpf.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon_tracer.skel.h"

int daemon_verbose;
static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static int print_libbpf(enum libbpf_print_level level, const char *fmt, va_list args)
{
	if (level == LIBBPF_DEBUG && daemon_verbose < 2)
		return 0;
	return vfprintf(stderr, fmt, args);
}

static int on_event(void *ctx, void *data, size_t size)
{
	(void)ctx;
	if (size >= sizeof(struct daemon_event))
		redirect_event(data, size);
	return 0;
}

static int usage(const char *argv0)
{
	fprintf(stderr, "usage: %s [-p PID] [-u UID] [-w OFFSET]... [-v]\n"
			"  -p PID     watch only this process\n"
			"  -u UID     watch only this user's processes\n"
			"  -w OFFSET  redirect only uprobes at these file offsets (repeatable)\n"
			"  -v         log every event (-vv: and libbpf's debug log)\n",
		argv0);
	return 2;
}

static long parse_number(const char *what, const char *s, long min)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 0);
	if (errno || *end || !*s || v < min) {
		fprintf(stderr, "bpftime daemon: bad %s '%s'\n", what, s);
		exit(2);
	}
	return v;
}

static int uprobe_pmu_type(void)
{
	FILE *f = fopen("/sys/bus/event_source/devices/uprobe/type", "r");
	int type = -1;
	if (f) {
		if (fscanf(f, "%d", &type) != 1)
			type = -1;
		fclose(f);
	}
	return type;
}

int main(int argc, char **argv)
{
	long pid = -1, uid = -1;
	uint64_t whitelist[256];
	int nwhite = 0, opt;
	while ((opt = getopt(argc, argv, "p:u:w:v")) != -1) {
		switch (opt) {
		case 'p': pid = parse_number("pid", optarg, 1); break;
		case 'u': uid = parse_number("uid", optarg, 0); break;
		case 'w':
			if (nwhite == 256) {
				fprintf(stderr, "bpftime daemon: at most 256 -w offsets\n");
				return 2;
			}
			whitelist[nwhite++] = (uint64_t)parse_number("offset", optarg, 0);
			break;
		case 'v': daemon_verbose++; break;
		default: return usage(argv[0]);
		}
	}
	if (optind != argc)
		return usage(argv[0]);
	if (geteuid() != 0) {
		fprintf(stderr, "bpftime daemon: must run as root (it loads kernel eBPF programs)\n");
		return 1;
	}
	setvbuf(stderr, NULL, _IOLBF, 0);
	int listen_fd = fd_server_open();
	if (listen_fd < 0)
		return 1;
	int type = uprobe_pmu_type();
	if (type < 0) {
		dlog("no uprobe PMU (/sys/bus/event_source/devices/uprobe/type)\n");
		return 1;
	}
	const char *name = getenv("BPFTIME_GLOBAL_SHM_NAME");
	if (!name || !*name)
		name = "bpftime_maps_shm";
	/* A segment the daemon creates it removes at exit, when nobody else has put objects in it. */
	char path[300];
	snprintf(path, sizeof(path), "/dev/shm/%s", name);
	bool created = access(path, F_OK) != 0;
	const char *mb = getenv("BPFTIME_SHM_MEMORY_MB");
	/* Shared with $BPFTIME_SHM_GROUP when set, so unprivileged traced processes can follow it. */
	struct bpftime_shm *shm = bpftime_shm_open_as(name, mb && *mb ? strtoull(mb, NULL, 10) : 32,
						      BPFTIME_SHM_CREATE | 0600, getenv("BPFTIME_SHM_GROUP"), -1);
	if (!shm) {
		dlog("segment '%s': %s\n", name, bpftime_last_error());
		return 1;
	}
	redirect_init(shm);

	libbpf_set_print(print_libbpf);
	struct daemon_tracer_bpf *skel = daemon_tracer_bpf__open();
	if (!skel) {
		dlog("cannot open the tracer\n");
		return 1;
	}
	skel->rodata->daemon_pid = (uint32_t)getpid();
	skel->rodata->target_pid = (int32_t)pid;
	skel->rodata->target_uid = uid;
	skel->rodata->uprobe_type = (uint32_t)type;
	skel->rodata->whitelist_on = nwhite > 0;
	int err = daemon_tracer_bpf__load(skel);
	if (!err) {
		for (int i = 0; i < nwhite && !err; i++) {
			uint8_t one = 1;
			err = bpf_map__update_elem(skel->maps.whitelist, &whitelist[i], 8, &one, 1, BPF_ANY);
		}
	}
	if (!err)
		err = daemon_tracer_bpf__attach(skel);
	if (err) {
		dlog("cannot load the tracer: %s\n", strerror(-err));
		daemon_tracer_bpf__destroy(skel);
		return 1;
	}
	struct ring_buffer *rb = ring_buffer__new(bpf_map__fd(skel->maps.events), on_event, NULL, NULL);
	if (!rb) {
		dlog("cannot read the tracer's ring buffer\n");
		daemon_tracer_bpf__destroy(skel);
		return 1;
	}
	struct sigaction sa = {.sa_handler = on_signal};
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	dlog("running (pid %d, segment '%s'%s%s)\n", getpid(), name,
	     pid >= 0 ? ", one process" : "", uid >= 0 ? ", one user" : "");

	struct pollfd fds[2] = {{ring_buffer__epoll_fd(rb), POLLIN, 0}, {listen_fd, POLLIN, 0}};
	while (!stop) {
		int n = poll(fds, 2, 500);
		if (n < 0 && errno != EINTR) {
			dlog("poll: %s\n", strerror(errno));
			break;
		}
		if (n > 0 && (fds[0].revents & POLLIN))
			ring_buffer__consume(rb);
		if (n > 0 && (fds[1].revents & POLLIN))
			fd_server_accept(listen_fd);
	}
	/* The tracer first, so nothing new comes in; then what was made from its events. */
	ring_buffer__free(rb);
	daemon_tracer_bpf__destroy(skel);
	redirect_cleanup();
	bool empty = true;
	struct bpftime_object_info info;
	for (uint32_t i = 0; empty; i++) {
		int rc = bpftime_object_at(shm, i, &info);
		if (rc < 0)
			break;
		empty = rc == 0;
	}
	bpftime_shm_close(shm);
	if (created && empty && bpftime_shm_remove(name) == 0)
		dverbose("segment '%s' removed\n", name);
	else if (created)
		dlog("segment '%s' is kept: others put objects in it\n", name);
	close(listen_fd);
	dlog("stopped; its userspace programs, links and maps are gone\n");
	return 0;
}
