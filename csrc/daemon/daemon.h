/*
 * `bpftime daemon`: runs the uprobe programs that kernel eBPF tools load in userspace.
 * daemon.c: options, the single-instance socket, the kernel tracer, the event loop, cleanup;
 * redirect.c: what each watched process's fds are, and the segment objects made from them;
 * fd_server.c: hands fds of fronted kernel maps to traced processes (SCM_RIGHTS).
 */
#ifndef BPFTIME_DAEMON_H
#define BPFTIME_DAEMON_H

#include <linux/types.h>
#include <stdbool.h>
#include <stdint.h>

#include "../include/bpftime.h"
#include "daemon_tracer.h"

extern int daemon_verbose;
#define dlog(...) fprintf(stderr, "bpftime daemon: " __VA_ARGS__)
#define dverbose(...)                                                                              \
	do {                                                                                       \
		if (daemon_verbose)                                                                \
			dlog(__VA_ARGS__);                                                         \
	} while (0)

/* redirect.c */
void redirect_init(struct bpftime_shm *shm);
void redirect_event(const struct daemon_event *e, uint64_t size);
/* Deletes every segment object the daemon made and closes the fds it holds. */
void redirect_cleanup(void);
/* The daemon's own fd for kernel map `id` if it fronts that map, else -1. */
int redirect_fronted_fd(uint32_t kernel_map_id);
/* The output program (maps/kernel_ring.c) of a ring buffer or perf event array it fronts, or -1. */
int redirect_output_prog(uint32_t kernel_map_id);

/* fd_server.c */
/* Binds the abstract socket; -1 (said on stderr) when another daemon holds it. */
int fd_server_open(void);
/* Answers one connection on the listening socket. */
void fd_server_accept(int listen_fd);

#endif
