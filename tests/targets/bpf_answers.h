/*
 * What the bpf(2) differential targets share (bpf_bad_calls, bpf_pins_links, bpf_spin_locks):
 * the raw system call, and report(), which prints one call's answer as a JSON field ("ok" or
 * the errno's name), so the kernel's and the syscall server's outputs can be compared whole.
 */
#ifndef BPF_ANSWERS_H
#define BPF_ANSWERS_H

#include <errno.h>
#include <linux/bpf.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static int first = 1;

/* bpf(2) with an attribute size of the caller's choosing (bad sizes are part of the tests). */
static inline long sys_bpf_size(int cmd, union bpf_attr *attr, unsigned int size)
{
	return syscall(__NR_bpf, cmd, attr, size);
}

static inline long sys_bpf(int cmd, union bpf_attr *attr)
{
	return sys_bpf_size(cmd, attr, sizeof(*attr));
}

/* Prints `"what":"ok"` or `"what":"EINVAL"` (524, the kernel's ENOTSUPP, by that name). */
static inline void report(const char *what, long rc)
{
	char err[32];
	if (rc >= 0)
		snprintf(err, sizeof(err), "ok");
	else if (errno == 524)
		snprintf(err, sizeof(err), "ENOTSUPP");
	else
		snprintf(err, sizeof(err), "%s", strerrorname_np(errno));
	printf("%s\"%s\":\"%s\"", first ? "{" : ",", what, err);
	first = 0;
}

#endif
