/* The record opensnoop.bpf.c sends and examples/opensnoop/opensnoop.c prints. */
#ifndef OPENSNOOP_H
#define OPENSNOOP_H

#define OPENSNOOP_PATH_MAX 256

struct open_event {
	unsigned int pid;
	unsigned int tid;
	int flags;
	int ret; /* the fd, or -errno */
	char comm[16];
	char path[OPENSNOOP_PATH_MAX];
};

#endif
