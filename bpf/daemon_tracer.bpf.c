// SPDX-License-Identifier: MIT
/*
 * The kernel half of `bpftime daemon`: reports the eBPF life of watched processes (bpf(2),
 * perf_event_open(2) of uprobes, ioctl(2) and close(2) of their fds, exec and exit) through a
 * ring buffer. It changes nothing: this kernel has neither bpf_override_return nor (for these
 * programs) bpf_probe_write_user, so the tool's calls all succeed as they would without us; see
 * csrc/daemon/redirect.c for how the kernel probe is kept from firing in traced processes.
 */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "daemon_tracer.h"

#define BPF_MAP_CREATE_CMD 0
#define BPF_PROG_LOAD_CMD 5
#define BPF_LINK_CREATE_CMD 28
#define PERF_IOC_ENABLE 0x2400
#define PERF_IOC_DISABLE 0x2401
#define PERF_IOC_SET_BPF 0x40042408
#define EVENT_MAX (sizeof(struct daemon_event) + DAEMON_MAX_INSNS * 8)

const volatile __u32 daemon_pid = 0;  /* never traced */
const volatile __s32 target_pid = -1; /* -1: every process */
const volatile __s64 target_uid = -1; /* -1: every user */
const volatile __u32 uprobe_type = 0; /* /sys/bus/event_source/devices/uprobe/type */
const volatile __u32 whitelist_on = 0; /* 1: only offsets in `whitelist` are redirected */

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 << 20);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u64); /* file offset */
	__type(value, __u8);
} whitelist SEC(".maps");

/* fds of bpf objects and uprobe perf events per process: (tgid << 32) | fd */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, __u8);
} tracked_fds SEC(".maps");

/* A call in flight, from its entry to its exit, per thread. */
struct pending {
	__u64 attr;  /* user pointer to the attribute block */
	__u32 cmd;   /* bpf: the command; ioctl: the request */
	__u32 size;  /* bpf: the attribute block's size */
	__u64 arg;   /* ioctl: the argument */
	__u32 fd;    /* ioctl: the fd */
	__u32 redirected; /* perf_event_open: to run in userspace (-w) */
	__u64 config, config1, config2;
	__s32 perf_pid, perf_cpu;
	__u32 perf_type;
	char path[DAEMON_PATH_LEN];
};
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct pending);
} inflight SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pending);
} scratch SEC(".maps");

static __always_inline bool watched(void)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	if (tgid == daemon_pid)
		return false;
	if (target_pid >= 0 && tgid != (__u32)target_pid)
		return false;
	if (target_uid >= 0 && (__u32)bpf_get_current_uid_gid() != (__u32)target_uid)
		return false;
	return true;
}

static __always_inline struct pending *new_pending(void)
{
	__u32 zero = 0;
	struct pending *p = bpf_map_lookup_elem(&scratch, &zero);
	if (p)
		__builtin_memset(p, 0, sizeof(*p));
	return p;
}

/* Zeroes the event's fixed part and fills its header. */
static __always_inline void fill_header(struct daemon_event *e, __u32 kind, long ret)
{
	__builtin_memset(e, 0, sizeof(*e));
	__u64 id = bpf_get_current_pid_tgid();
	e->kind = kind;
	e->pid = id >> 32;
	e->tid = (__u32)id;
	e->uid = (__u32)bpf_get_current_uid_gid();
	e->ret = ret;
}

/* A fixed-size event of `kind` reserved in the ring, header filled; NULL when the ring is full. */
static __always_inline struct daemon_event *reserve_event(__u32 kind, long ret)
{
	struct daemon_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (e)
		fill_header(e, kind, ret);
	return e;
}

/* A syscall's entry leaves what its exit needs in `inflight`, under the calling thread's id. */
static __always_inline void hold_pending(struct pending *p)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	bpf_map_update_elem(&inflight, &tid, p, BPF_ANY);
}

static __always_inline struct pending *held_pending(void)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	return bpf_map_lookup_elem(&inflight, &tid);
}

static __always_inline void drop_pending(void)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	bpf_map_delete_elem(&inflight, &tid);
}

static __always_inline void track(__u32 fd)
{
	__u64 key = (bpf_get_current_pid_tgid() & 0xffffffff00000000ull) | fd;
	__u8 one = 1;
	bpf_map_update_elem(&tracked_fds, &key, &one, BPF_ANY);
}

static __always_inline bool is_tracked(__u32 fd)
{
	__u64 key = (bpf_get_current_pid_tgid() & 0xffffffff00000000ull) | fd;
	return bpf_map_lookup_elem(&tracked_fds, &key) != NULL;
}

SEC("tracepoint/syscalls/sys_enter_bpf")
int enter_bpf(struct trace_event_raw_sys_enter *ctx)
{
	__u32 cmd = (__u32)ctx->args[0];
	if (!watched() || (cmd != BPF_MAP_CREATE_CMD && cmd != BPF_PROG_LOAD_CMD && cmd != BPF_LINK_CREATE_CMD))
		return 0;
	struct pending *p = new_pending();
	if (!p)
		return 0;
	p->cmd = cmd;
	p->attr = ctx->args[1];
	p->size = (__u32)ctx->args[2];
	hold_pending(p);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_bpf")
int exit_bpf(struct trace_event_raw_sys_exit *ctx)
{
	struct pending *p = held_pending();
	if (!p)
		return 0;
	long ret = ctx->ret;
	struct daemon_event *e = bpf_ringbuf_reserve(&events, EVENT_MAX, 0);
	if (!e) {
		drop_pending();
		return 0;
	}
	fill_header(e, DEV_BPF, ret);
	e->cmd = p->cmd;
	/* The attribute block is still the tool's, unchanged, until the call returns. */
	union bpf_attr attr;
	__builtin_memset(&attr, 0, sizeof(attr));
	__u32 size = p->size;
	if (size > sizeof(attr))
		size = sizeof(attr);
	bpf_probe_read_user(&attr, size & 0xff, (void *)p->attr);
	if (p->cmd == BPF_PROG_LOAD_CMD) {
		e->prog_type = attr.prog_type;
		e->expected_attach_type = attr.expected_attach_type;
		e->insn_cnt = attr.insn_cnt;
		__builtin_memcpy(e->name, attr.prog_name, 16);
		__u32 n = attr.insn_cnt;
		if (n >= DAEMON_MAX_INSNS)
			n = 0; /* too long: the daemon sees insn_cnt and leaves it to the kernel */
		if (n)
			bpf_probe_read_user(e->insns, (n * 8) & (DAEMON_MAX_INSNS * 8 - 1),
					    (void *)attr.insns);
	} else if (p->cmd == BPF_MAP_CREATE_CMD) {
		e->map_type = attr.map_type;
		e->key_size = attr.key_size;
		e->value_size = attr.value_size;
		e->max_entries = attr.max_entries;
		e->map_flags = attr.map_flags;
		__builtin_memcpy(e->name, attr.map_name, 16);
	} else {
		e->prog_fd = attr.link_create.prog_fd;
		e->target_fd = attr.link_create.target_fd;
		e->attach_type = attr.link_create.attach_type;
		e->cookie = attr.link_create.perf_event.bpf_cookie;
	}
	if (ret >= 0)
		track((__u32)ret);
	drop_pending();
	bpf_ringbuf_submit(e, 0);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_perf_event_open")
int enter_perf_event_open(struct trace_event_raw_sys_enter *ctx)
{
	if (!watched())
		return 0;
	struct perf_event_attr *uattr = (void *)ctx->args[0];
	__u32 type = 0;
	if (bpf_probe_read_user(&type, 4, &uattr->type) < 0 || !uprobe_type || type != uprobe_type)
		return 0;
	struct pending *p = new_pending();
	if (!p)
		return 0;
	p->attr = (__u64)uattr;
	p->perf_type = type;
	p->perf_pid = (__s32)ctx->args[1];
	p->perf_cpu = (__s32)ctx->args[2];
	bpf_probe_read_user(&p->config, 8, &uattr->config);
	bpf_probe_read_user(&p->config1, 8, &uattr->config1);
	bpf_probe_read_user(&p->config2, 8, &uattr->config2);
	bpf_probe_read_user_str(p->path, sizeof(p->path), (void *)p->config1);
	/* -w: only these offsets run in userspace; the others are left to the kernel. */
	p->redirected = !whitelist_on || bpf_map_lookup_elem(&whitelist, &p->config2) != NULL;
	hold_pending(p);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_perf_event_open")
int exit_perf_event_open(struct trace_event_raw_sys_exit *ctx)
{
	long ret = ctx->ret;
	struct pending *p = held_pending();
	if (!p)
		return 0;
	struct daemon_event *e = reserve_event(DEV_PERF_OPEN, ret);
	if (e) {
		e->perf_type = p->perf_type;
		e->redirected = p->redirected;
		e->config = p->config;
		e->config1 = p->config1;
		e->config2 = p->config2;
		e->perf_pid = p->perf_pid;
		e->perf_cpu = p->perf_cpu;
		__builtin_memcpy(e->path, p->path, DAEMON_PATH_LEN);
		bpf_ringbuf_submit(e, 0);
	}
	if (ret >= 0)
		track((__u32)ret);
	drop_pending();
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_ioctl")
int enter_ioctl(struct trace_event_raw_sys_enter *ctx)
{
	__u32 fd = (__u32)ctx->args[0], cmd = (__u32)ctx->args[1];
	if ((cmd != PERF_IOC_ENABLE && cmd != PERF_IOC_DISABLE && cmd != PERF_IOC_SET_BPF) ||
	    !is_tracked(fd))
		return 0;
	struct pending *p = new_pending();
	if (!p)
		return 0;
	p->fd = fd;
	p->cmd = cmd;
	p->arg = ctx->args[2];
	hold_pending(p);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_ioctl")
int exit_ioctl(struct trace_event_raw_sys_exit *ctx)
{
	struct pending *p = held_pending();
	if (!p)
		return 0;
	struct daemon_event *e = reserve_event(DEV_IOCTL, ctx->ret);
	if (e) {
		e->fd = p->fd;
		e->ioctl_cmd = p->cmd;
		e->ioctl_arg = p->arg;
		bpf_ringbuf_submit(e, 0);
	}
	drop_pending();
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_close")
int enter_close(struct trace_event_raw_sys_enter *ctx)
{
	__u32 fd = (__u32)ctx->args[0];
	if (!is_tracked(fd))
		return 0;
	__u64 key = (bpf_get_current_pid_tgid() & 0xffffffff00000000ull) | fd;
	bpf_map_delete_elem(&tracked_fds, &key);
	struct daemon_event *e = reserve_event(DEV_CLOSE, 0);
	if (!e)
		return 0;
	e->fd = fd;
	bpf_ringbuf_submit(e, 0);
	return 0;
}

static __always_inline int process_event(__u32 kind)
{
	__u64 id = bpf_get_current_pid_tgid();
	if (kind == DEV_EXIT && (__u32)id != (__u32)(id >> 32))
		return 0; /* a thread, not the process */
	if (!watched())
		return 0;
	struct daemon_event *e = reserve_event(kind, 0);
	if (!e)
		return 0;
	bpf_ringbuf_submit(e, 0);
	return 0;
}

SEC("tracepoint/sched/sched_process_exec")
int on_exec(void *ctx)
{
	return process_event(DEV_EXEC);
}

SEC("tracepoint/sched/sched_process_exit")
int on_exit(void *ctx)
{
	return process_event(DEV_EXIT);
}

char LICENSE[] SEC("license") = "GPL";
