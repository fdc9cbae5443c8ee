/* The counts syscount.bpf.c keeps and examples/syscount/syscount.c prints. */
#ifndef SYSCOUNT_H
#define SYSCOUNT_H

/* Keyed by syscall number, or by process id with -P (then comm names the process). */
struct syscount_value {
	unsigned long long count;
	unsigned long long total_ns; /* with latency: time from sys_enter to sys_exit, summed */
	char comm[16];
};

#endif
