/*
 * The synthetic `struct task_struct` bpf_get_current_task(_btf) points at in
 * userspace: per thread, laid out by the running kernel's BTF, holding what
 * tracers read (pid, tgid, comm, real_parent/parent, group_leader, start times,
 * cred/real_cred, exit_code, exit_signal, flags, mm's arg/env bounds, nsproxy's
 * pid namespace). Each thread's objects (its task, its leader's, its parent's,
 * cred, mm_struct, nsproxy, pid_namespace) live in one mapping of their own,
 * built at the thread's first use and refreshed as they change; reads of them
 * through bpf_probe_read_kernel succeed, and a program that got the pointer from
 * bpf_get_current_task_btf may load from them directly.
 */
#ifndef BPFTIME_SYNTHETIC_TASK_H
#define BPFTIME_SYNTHETIC_TASK_H

#include "../base/base.h"

#include <stdbool.h>
#include <stdint.h>

/*
 * Reads the layout from the kernel's BTF, once per process (a program that
 * calls the helpers is being made: runtime/program_vm.c). 0, or -1 with the
 * error set: then bpf_get_current_task returns 0 (NULL), as for no task.
 */
HIDDEN int synthetic_task_prepare(void);
/* This thread's task (built or refreshed first), or NULL when there is no layout. */
HIDDEN void *synthetic_task_current(void);
/* Whether [addr, addr+size) lies within this thread's synthetic objects. NO_VECTORS, no libc. */
HIDDEN NO_VECTORS bool synthetic_task_holds(uint64_t addr, uint64_t size);
/* Re-reads now what may change (comm after exec/prctl, ppid, ids), as the sched tracepoints do. */
HIDDEN void synthetic_task_refresh(void);
/*
 * Sets exit_code (as the kernel keeps it: (status & 0xff) << 8, or the
 * signal) and PF_EXITING in this thread's task (and in its leader's when the
 * whole process exits), as do_exit does before sched_process_exit fires.
 */
HIDDEN void synthetic_task_exiting(int exit_code, bool group);
/*
 * While on (nests), this thread's helpers answer as the process's leader:
 * bpf_get_current_pid_tgid gives tgid:tgid, bpf_get_current_comm the leader's
 * comm, bpf_get_current_task its task. For the process's exit raised from
 * another thread (exit_group), which the kernel reports from the leader too.
 */
HIDDEN void synthetic_task_as_leader(bool on);
extern __thread int synthetic_task_leader_mode __attribute__((tls_model("initial-exec")));
/* The process's leader's comm (for the leader mode above), into comm[16]. */
HIDDEN void synthetic_task_leader_comm(char comm[16]);

#endif
