/* The record bashreadline.bpf.c sends and examples/bashreadline/bashreadline.c prints. */
#ifndef BASHREADLINE_H
#define BASHREADLINE_H

#define READLINE_MAX 80

struct readline_event {
	unsigned int pid;
	char comm[16];
	char line[READLINE_MAX];
};

#endif
