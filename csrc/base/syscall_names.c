/* Syscall numbers by name (syscall_names.h): the generated table and the tracepoint names. */
#include "syscall_names.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static const struct {
	const char *name;
	int nr;
} table[] = {
#define SYSCALL_NR(name, nr) {#name, nr},
#include <syscall_nrs.h> /* generated: build/gen/syscall_nrs.h */
#undef SYSCALL_NR
};

static int lookup(const char *name)
{
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
		if (strcmp(table[i].name, name) == 0)
			return table[i].nr;
	return -1;
}

int syscall_nr_by_name(const char *name)
{
	int nr = lookup(name);
	if (nr >= 0)
		return nr;
	/* The kernel's SYSCALL_DEFINE names where they differ from __NR_ (its tracepoints use them). */
	if (strncmp(name, "new", 3) == 0) /* newuname, newstat, newfstat, newlstat */
		return lookup(name + 3);
	if (strcmp(name, "sendfile64") == 0)
		return lookup("sendfile");
	if (strcmp(name, "umount") == 0)
		return lookup("umount2");
	return -1;
}

const char *syscall_name_by_nr(int nr)
{
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
		if (table[i].nr == nr)
			return table[i].name;
	return NULL;
}

int syscall_tp_parse(const char *target, struct syscall_tp *out, char *why, uint64_t whylen)
{
	const char *slash = strchr(target, '/');
	if (!slash || slash == target || !slash[1]) {
		snprintf(why, whylen, "tracepoint '%s': expected CATEGORY/NAME", target);
		return -EINVAL;
	}
	const char *name = slash + 1;
	size_t catlen = (size_t)(slash - target);
	if (catlen == 12 && strncmp(target, "raw_syscalls", 12) == 0) {
		if (strcmp(name, "sys_enter") == 0 || strcmp(name, "sys_exit") == 0) {
			out->kind = name[4] == 'e' && name[5] == 'n' ? SYSCALL_TP_RAW_ENTER : SYSCALL_TP_RAW_EXIT;
			out->nr = -1;
			return 0;
		}
		snprintf(why, whylen, "unknown tracepoint '%s' (raw_syscalls has sys_enter and sys_exit)", target);
		return -ENOENT;
	}
	if (catlen == 5 && strncmp(target, "sched", 5) == 0) {
		static const char *const events[] = {"sched_process_exec", "sched_process_exit", "sched_process_fork"};
		for (int i = 0; i < 3; i++)
			if (strcmp(name, events[i]) == 0) {
				out->kind = (enum syscall_tp_kind)(SCHED_TP_EXEC + i);
				out->nr = -1;
				return 0;
			}
		snprintf(why, whylen,
			 "tracepoint '%s': category 'sched' cannot run in userspace but for its process events "
			 "(sched_process_exec, sched_process_exit, sched_process_fork)",
			 target);
		return -EINVAL;
	}
	if (catlen != 8 || strncmp(target, "syscalls", 8) != 0) {
		snprintf(why, whylen,
			 "tracepoint '%s': category '%.*s' cannot run in userspace (only syscalls/, raw_syscalls/ and "
			 "sched/sched_process_{exec,exit,fork})",
			 target, (int)catlen, target);
		return -EINVAL;
	}
	bool enter = strncmp(name, "sys_enter_", 10) == 0;
	if (!enter && strncmp(name, "sys_exit_", 9) != 0) {
		snprintf(why, whylen, "unknown tracepoint '%s' (expected syscalls/sys_enter_NAME or sys_exit_NAME)",
			 target);
		return -ENOENT;
	}
	int nr = syscall_nr_by_name(name + (enter ? 10 : 9));
	if (nr < 0) {
		snprintf(why, whylen, "unknown tracepoint '%s': no syscall '%s' in this build's table (asm/unistd_64.h)",
			 target, name + (enter ? 10 : 9));
		return -ENOENT;
	}
	out->kind = enter ? SYSCALL_TP_ENTER : SYSCALL_TP_EXIT;
	out->nr = nr;
	return 0;
}
