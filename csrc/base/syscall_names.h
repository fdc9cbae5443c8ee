/*
 * Syscall numbers by name, and the names of the syscall tracepoints we can
 * run in userspace. The table is generated at build time from the kernel
 * headers' asm/unistd_64.h (`__NR_*`, the Makefile's build/gen/syscall_nrs.h),
 * never written by hand.
 */
#ifndef BPFTIME_SYSCALL_NAMES_H
#define BPFTIME_SYSCALL_NAMES_H

#include "base.h"

#include <stdint.h>

/*
 * The number of syscall `name` as a tracepoint names it (sys_enter_NAME):
 * the __NR_ name, or the kernel's SYSCALL_DEFINE name where the two differ
 * ("newuname" for uname, "sendfile64", "umount"). -1 when unknown.
 */
HIDDEN int syscall_nr_by_name(const char *name);
/* The __NR_ name of syscall `nr`, or NULL. */
HIDDEN const char *syscall_name_by_nr(int nr);

enum syscall_tp_kind {
	SYSCALL_TP_ENTER,
	SYSCALL_TP_EXIT,
	SYSCALL_TP_RAW_ENTER,
	SYSCALL_TP_RAW_EXIT,
	/* Not syscalls: process events the agent raises itself (agent/sched_probes.c). */
	SCHED_TP_EXEC,
	SCHED_TP_EXIT,
	SCHED_TP_FORK,
};

struct syscall_tp {
	enum syscall_tp_kind kind;
	int nr; /* syscalls/: the syscall; raw_syscalls/ and sched/: -1 */
};

/*
 * Parses a tracepoint link target: "syscalls/sys_enter_NAME",
 * "syscalls/sys_exit_NAME", "raw_syscalls/sys_enter", "raw_syscalls/sys_exit",
 * and the process events a process can report of itself:
 * "sched/sched_process_exec", "sched/sched_process_exit",
 * "sched/sched_process_fork". 0; -EINVAL for another category or sched event
 * (irq/..., sched/sched_switch: kernel events a process cannot see) or a
 * malformed target; -ENOENT for a syscall name not in the table. `why` says
 * which, naming the target.
 */
HIDDEN int syscall_tp_parse(const char *target, struct syscall_tp *out, char *why, uint64_t whylen);

#endif
