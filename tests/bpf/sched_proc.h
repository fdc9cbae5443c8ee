/* The event of tests/bpf/sched_proc.bpf.c, read by tests/targets/sched_trace.c. */
#ifndef SCHED_PROC_H
#define SCHED_PROC_H

enum { EV_EXEC = 1, EV_EXIT = 2, EV_FORK = 3 };

struct sched_event {
	unsigned int kind;
	unsigned int pid, tid;   /* bpf_get_current_pid_tgid */
	unsigned int ppid;       /* BPF_CORE_READ(task, real_parent, tgid) */
	unsigned int ppid_btf;   /* exit: task->real_parent->tgid through the BTF pointer */
	unsigned int ctx_pid;    /* the record's pid (fork: parent_pid) */
	unsigned int other_pid;  /* exec: old_pid; fork: child_pid */
	unsigned int uid;        /* task->cred->uid */
	unsigned int leader_pid; /* task->group_leader->pid */
	int exit_code;           /* exit: (task->exit_code >> 8) & 0xff; -1 otherwise */
	int exit_signal_bits;    /* exit: task->exit_code & 0x7f */
	unsigned int pad;
	unsigned long long start_boottime;
	char comm[16];           /* bpf_get_current_comm */
	char ctx_comm[16];       /* exit: the record's comm */
	char filename[128];      /* exec: the record's __data_loc filename */
	char argv0[128];         /* exec: from mm->arg_start, user memory */
	char argv1[64];
};

#endif
