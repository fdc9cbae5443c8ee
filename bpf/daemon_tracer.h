/* Events the daemon's kernel tracer (daemon_tracer.bpf.c) sends to the daemon (csrc/daemon/). */
#ifndef BPFTIME_DAEMON_TRACER_H
#define BPFTIME_DAEMON_TRACER_H

#define DAEMON_MAX_INSNS 4096 /* a power of 2; programs of fewer instructions are copied (others: not redirected) */
#define DAEMON_PATH_LEN 256

enum daemon_event_kind {
	DEV_BPF = 1,       /* bpf(2) returned: cmd and its attributes, ret */
	DEV_PERF_OPEN = 2, /* perf_event_open(2) of the uprobe PMU returned */
	DEV_IOCTL = 3,     /* ioctl(2) on a tracked fd returned */
	DEV_CLOSE = 4,     /* close(2) of a tracked fd */
	DEV_EXEC = 5,      /* the process exec'd: its CLOEXEC fds are gone */
	DEV_EXIT = 6,      /* the process exited */
};

struct daemon_event {
	__u32 kind;
	__u32 pid; /* tgid */
	__u32 tid;
	__u32 uid;
	__s64 ret;
	/* DEV_BPF */
	__u32 cmd;
	__u32 prog_type, expected_attach_type, insn_cnt; /* BPF_PROG_LOAD */
	__u32 map_type, key_size, value_size, max_entries, map_flags; /* BPF_MAP_CREATE */
	__u32 prog_fd, target_fd, attach_type; /* BPF_LINK_CREATE */
	__u64 cookie;
	char name[16];
	/* DEV_PERF_OPEN: the attributes as the tool gave them */
	__u32 perf_type, redirected; /* redirected: to run in userspace (all, or those on the -w list) */
	__u64 config, config1, config2;
	__s32 perf_pid, perf_cpu;
	char path[DAEMON_PATH_LEN];
	/* DEV_IOCTL, DEV_CLOSE */
	__u32 fd, ioctl_cmd;
	__u64 ioctl_arg;
	/* BPF_PROG_LOAD: insn_cnt instructions (at most DAEMON_MAX_INSNS) */
	__u64 insns[];
};

#endif
