/*
 * perf_event_open for uprobes, uretprobes and syscall tracepoints, the ioctls
 * that bind and enable them, and BPF_LINK_CREATE of perf event links. A probe
 * with a program bound and enabled is a link in the segment, which the agents
 * of traced processes install. Other perf events go to the kernel.
 */
#include "server.h"

#include "../base/safe_copy.h"
#include "../base/syscall_names.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <linux/perf_event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int read_int_file(const char *path, const char *prefix)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return -1;
	char buf[64] = "";
	int v = -1;
	if (fgets(buf, sizeof(buf), f)) {
		size_t plen = strlen(prefix);
		if (!strncmp(buf, prefix, plen))
			v = atoi(buf + plen);
	}
	fclose(f);
	return v;
}

/* The uprobe PMU's type and its retprobe bit, from the same sysfs files libbpf reads. */
static int uprobe_type(void)
{
	return read_int_file("/sys/bus/event_source/devices/uprobe/type", "");
}
#define PERF_UPROBE_REF_CTR_OFFSET_SHIFT 32
/*
 * bpftime's own perf event types, laid out as the uprobe PMU's (config1: the
 * path, config2: the file offset): a uprobe whose programs may return for the
 * function (bpf_override_return), and a replace probe (the program's return
 * value is the function's). Both are at a function's entry by contract.
 */
#define BPFTIME_PERF_UPROBE_OVERRIDE 1008
#define BPFTIME_PERF_UREPLACE 1009
static int uprobe_retprobe_bit(void)
{
	return read_int_file("/sys/bus/event_source/devices/uprobe/format/retprobe", "config:");
}

/*
 * The name of tracepoint `id` when it is one that runs in userspace
 * ("syscalls/sys_enter_openat", "raw_syscalls/sys_enter",
 * "sched/sched_process_exec"), from tracefs; 0 when it is not one.
 */
static int syscall_tracepoint_name(uint64_t id, char *out, size_t len)
{
	static const char *const roots[] = {"/sys/kernel/tracing/events", "/sys/kernel/debug/tracing/events"};
	static const char *const cats[] = {"syscalls", "raw_syscalls", "sched"};
	static const char *const prefixes[] = {"sys_", "sys_", "sched_process_"};
	for (unsigned r = 0; r < 2; r++) {
		for (unsigned c = 0; c < 3; c++) {
			char dir[128];
			snprintf(dir, sizeof(dir), "%s/%s", roots[r], cats[c]);
			DIR *d = opendir(dir);
			if (!d)
				continue;
			struct dirent *de;
			int found = 0;
			while (!found && (de = readdir(d))) {
				if (strncmp(de->d_name, prefixes[c], strlen(prefixes[c])))
					continue;
				char path[512];
				snprintf(path, sizeof(path), "%s/%s/id", dir, de->d_name);
				if (read_int_file(path, "") == (int)id) {
					snprintf(out, len, "%s/%.200s", cats[c], de->d_name);
					found = 1;
				}
			}
			closedir(d);
			if (found)
				return 1;
		}
	}
	return 0;
}

long server_perf_event_open(void *user_attr, int pid, int cpu, int group_fd, unsigned long flags)
{
	(void)cpu, (void)group_fd;
	struct perf_event_attr attr;
	memset(&attr, 0, sizeof(attr));
	uint32_t size;
	if (safe_read(&size, (uintptr_t)user_attr + offsetof(struct perf_event_attr, size), 4) < 0)
		return -EFAULT;
	if (safe_read(&attr, (uintptr_t)user_attr, size && size < sizeof(attr) ? size : sizeof(attr)) < 0)
		return -EFAULT;
	struct bpftime_link_spec spec;
	memset(&spec, 0, sizeof(spec));
	int utype = uprobe_type();
	bool ours = attr.type == BPFTIME_PERF_UPROBE_OVERRIDE || attr.type == BPFTIME_PERF_UREPLACE;
	if ((utype >= 0 && attr.type == (uint32_t)utype) || ours) {
		int bit = uprobe_retprobe_bit();
		spec.type = !ours && bit >= 0 && (attr.config >> bit) & 1 ? BPFTIME_LINK_URETPROBE : BPFTIME_LINK_UPROBE;
		if (attr.type == BPFTIME_PERF_UREPLACE)
			spec.type = BPFTIME_LINK_UREPLACE;
		spec.offset = attr.config2;
		/* A USDT semaphore: config bits 32-63 (the uprobe PMU's format/ref_ctr_offset). */
		if (!ours)
			spec.ref_ctr_offset = attr.config >> PERF_UPROBE_REF_CTR_OFFSET_SHIFT;
		long n = safe_read_str(spec.target, attr.config1, sizeof(spec.target));
		if (n < 0)
			return -EFAULT;
		/* The kernel resolves the path when the event is opened, relative to our cwd. */
		char resolved[PATH_MAX];
		if (!realpath(spec.target, resolved))
			return -errno;
		if (strlen(resolved) >= sizeof(spec.target))
			return -ENAMETOOLONG;
		snprintf(spec.target, sizeof(spec.target), "%s", resolved);
		/* A function's first instruction: its programs may return for it (bpf_override_return). */
		if (ours || (spec.type == BPFTIME_LINK_UPROBE && elf_function_entry(spec.target, spec.offset)))
			spec.flags |= BPFTIME_LINK_F_FUNC_ENTRY;
	} else if (attr.type == PERF_TYPE_TRACEPOINT) {
		char name[230];
		struct syscall_tp tp;
		char why[400];
		/* sched_process_wait, _free, _hang: kernel events like the rest of sched/. */
		if (!syscall_tracepoint_name(attr.config, name, sizeof(name)) ||
		    (strncmp(name, "sched/", 6) == 0 && syscall_tp_parse(name, &tp, why, sizeof(why)) < 0)) {
			/* sched/..., irq/...: kernel events; the kernel answers, a program cannot run there here. */
			server_log("perf_event_open: tracepoint id %llu is not a syscall tracepoint or a process event: left "
				   "to the kernel (only syscalls/, raw_syscalls/ and sched/sched_process_{exec,exit,fork} "
				   "programs run in userspace)",
				   (unsigned long long)attr.config);
			return 1;
		}
		int rc = syscall_tp_parse(name, &tp, why, sizeof(why));
		if (rc < 0) {
			server_log("perf_event_open: %s", why);
			return rc;
		}
		spec.type = BPFTIME_LINK_SYSCALL_TRACEPOINT;
		spec.offset = attr.config; /* the agent gives it to programs as common_type */
		snprintf(spec.target, sizeof(spec.target), "%s", name);
	} else if (attr.type == PERF_TYPE_SOFTWARE &&
		   (attr.config == PERF_COUNT_SW_CPU_CLOCK || attr.config == PERF_COUNT_SW_TASK_CLOCK) && pid == -1) {
		return timer_event_open(&attr, pid, cpu, flags); /* interval probes */
	} else if (attr.type == PERF_TYPE_SOFTWARE && attr.config == PERF_COUNT_SW_BPF_OUTPUT) {
		server_lock();
		int fd = sfd_new(SFD_PERF_OUTPUT, 0, NULL);
		server_unlock();
		return fd;
	} else {
		return 1;
	}
	if (flags & ~(unsigned long)PERF_FLAG_FD_CLOEXEC) {
		server_log("perf_event_open: flags 0x%lx are not supported for probes", flags);
		return -EINVAL;
	}
	spec.pid = pid == 0 ? getpid() : pid < 0 ? -1 : pid;
	struct perf_probe *p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->spec = spec;
	p->enabled = !attr.disabled;
	p->creator = getpid();
	server_lock();
	int fd = sfd_new(SFD_PERF_EVENT, 0, p);
	server_unlock();
	if (fd < 0)
		free(p);
	return fd;
}

/* A link in the segment exactly while a program is bound and the event enabled. */
static long sync_link(struct perf_probe *p)
{
	if (p->timer)
		return timer_event_sync(p);
	bool want = p->spec.prog_id && p->enabled;
	if (want && !p->link_id) {
		int id = bpftime_link_create(server_shm, "perf_event", &p->spec);
		if (id < 0) {
			server_log("cannot attach program %u to %s:0x%llx: %s", p->spec.prog_id, p->spec.target,
				   (unsigned long long)p->spec.offset, bpftime_last_error());
			return id;
		}
		p->link_id = (uint32_t)id;
	} else if (!want && p->link_id) {
		delete_unless_pinned(p->link_id);
		p->link_id = 0;
	}
	return 0;
}

long perf_probe_bind(struct perf_probe *p, uint32_t prog_id, uint64_t cookie)
{
	if (p->spec.prog_id)
		return -EEXIST;
	uint32_t type;
	if (bpftime_prog_code(server_shm, prog_id, NULL, 0, &type) < 0)
		return -EBADF;
	bool tracepoint = p->spec.type == BPFTIME_LINK_SYSCALL_TRACEPOINT;
	uint32_t want = p->timer ? BPF_PROG_TYPE_PERF_EVENT
			: tracepoint ? BPF_PROG_TYPE_TRACEPOINT
				     : BPF_PROG_TYPE_KPROBE;
	if (type != want)
		return -EINVAL;
	ref_get(prog_id);
	p->spec.prog_id = prog_id;
	p->spec.cookie = cookie;
	long ret = sync_link(p);
	if (ret < 0) {
		p->spec.prog_id = 0;
		ref_put(prog_id);
	}
	return ret;
}

static void unbind(struct perf_probe *p)
{
	if (p->creator != getpid())
		return;
	uint32_t prog = p->spec.prog_id;
	p->spec.prog_id = 0;
	sync_link(p);
	if (prog)
		ref_put(prog);
}

void perf_probe_put(struct perf_probe *p)
{
	if (--p->fds)
		return;
	unbind(p);
	if (p->timer && p->creator == getpid())
		timer_event_free(p->timer);
	free(p);
}

long perf_probe_ioctl(struct server_fd *e, unsigned long req, unsigned long arg)
{
	struct perf_probe *p = e->probe;
	switch (req) {
	case PERF_EVENT_IOC_ENABLE: p->enabled = true; return sync_link(p);
	case PERF_EVENT_IOC_DISABLE: p->enabled = false; return sync_link(p);
	case PERF_EVENT_IOC_SET_BPF: {
		int id = sfd_prog_id((int)arg);
		return id < 0 ? -EBADF : perf_probe_bind(p, (uint32_t)id, 0);
	}
	default:
		server_log("ioctl 0x%lx on a probe's perf event is not supported", req);
		return -ENOTTY;
	}
}

long bpf_link_create(union bpf_attr *attr)
{
	if (attr->link_create.attach_type != BPF_PERF_EVENT) {
		server_log("BPF_LINK_CREATE: attach type %u is not supported (only BPF_PERF_EVENT)",
			   attr->link_create.attach_type);
		return -EINVAL;
	}
	struct server_fd *target = sfd_get((int)attr->link_create.target_fd);
	if (!target || target->kind != SFD_PERF_EVENT)
		return -EBADF;
	int prog = sfd_prog_id((int)attr->link_create.prog_fd);
	if (prog < 0)
		return prog;
	if (attr->link_create.flags)
		return -EINVAL;
	long ret = perf_probe_bind(target->probe, (uint32_t)prog, attr->link_create.perf_event.bpf_cookie);
	if (ret < 0)
		return ret;
	int fd = sfd_new(SFD_LINK, 0, target->probe);
	if (fd < 0)
		unbind(target->probe);
	return fd;
}

long bpf_link_detach(struct server_fd *e)
{
	unbind(e->probe);
	return 0;
}

long perf_output_ioctl(unsigned long req)
{
	if (req == PERF_EVENT_IOC_ENABLE || req == PERF_EVENT_IOC_DISABLE)
		return 0; /* the entry's ring receives records while the fd is stored in the array */
	server_log("ioctl 0x%lx on a perf output event is not supported", req);
	return -ENOTTY;
}
