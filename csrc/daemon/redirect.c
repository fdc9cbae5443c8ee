/*
 * What the daemon knows of each watched process: the programs it loaded (their instructions as
 * loaded, after libbpf's relocations), its uprobe perf events (as it asked for them, and whether
 * the tracer put the kernel probe on the decoy), and its links. When a redirected perf event gets
 * a program (BPF_LINK_CREATE or PERF_EVENT_IOC_SET_BPF), the program goes into the segment with
 * its maps, each a segment map fronting the tool's kernel map, and a uprobe link is made there
 * for the agents of traced processes. Disabling or closing takes the link away; the process's
 * exit or exec takes everything of it away.
 */
#define _GNU_SOURCE
#include "daemon.h"

#include <errno.h>
#include <limits.h>
#include <linux/bpf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define PERF_IOC_ENABLE 0x2400
#define PERF_IOC_DISABLE 0x2401
#define PERF_IOC_SET_BPF 0x40042408
#define BPF_PROG_TYPE_KPROBE_ID 2

enum obj_kind { OBJ_PROG = 1, OBJ_PERF, OBJ_LINK };

struct obj {
	uint32_t pid;
	int fd;
	enum obj_kind kind;
	/* OBJ_PROG */
	uint32_t prog_type, insn_cnt;
	uint64_t *insns;
	char name[16];
	int seg_prog; /* the program in the segment once made, else 0 */
	/* OBJ_PERF */
	char path[PATH_MAX];
	uint64_t offset;
	bool retprobe, redirected, enabled;
	int32_t perf_pid;
	int prog_fd; /* the program bound to it (-1: none) */
	uint64_t cookie;
	int seg_link; /* the uprobe link in the segment while bound and enabled, else 0 */
	/* OBJ_LINK: the perf event fd it binds */
	int perf_fd;
};

/* A segment map fronting one of a process's kernel maps. */
struct fronted {
	uint32_t pid, kernel_id;
	int fd; /* the daemon's fd for the kernel map (a pidfd_getfd copy), passed to agents */
	int out_fd; /* ring buffer, perf event array: its output program (-1 until asked for) */
	int seg_map;
};

static struct bpftime_shm *shm;
static struct obj *objs;
static size_t nobjs, capobjs;
static struct fronted *fronts;
static size_t nfronts, capfronts;

void redirect_init(struct bpftime_shm *segment)
{
	shm = segment;
}

static struct obj *find(uint32_t pid, int fd, enum obj_kind kind)
{
	for (size_t i = 0; i < nobjs; i++)
		if (objs[i].pid == pid && objs[i].fd == fd && (!kind || objs[i].kind == kind))
			return &objs[i];
	return NULL;
}

static struct obj *add(uint32_t pid, int fd, enum obj_kind kind)
{
	struct obj *old = find(pid, fd, 0);
	if (old) { /* the fd was reused after a close we did not see (dup2, or a lost event) */
		free(old->insns);
		*old = objs[--nobjs];
	}
	if (nobjs == capobjs) {
		size_t cap = capobjs ? capobjs * 2 : 64;
		struct obj *n = realloc(objs, cap * sizeof(*n));
		if (!n)
			return NULL;
		objs = n;
		capobjs = cap;
	}
	struct obj *o = &objs[nobjs++];
	memset(o, 0, sizeof(*o));
	o->pid = pid;
	o->fd = fd;
	o->kind = kind;
	o->prog_fd = -1;
	o->perf_fd = -1;
	return o;
}

static void delete_object(int *id, const char *what)
{
	if (*id > 0 && bpftime_object_delete(shm, (uint32_t)*id) < 0)
		dverbose("deleting %s %d: %s\n", what, *id, bpftime_last_error());
	*id = 0;
}

/* A copy of fd `fd` of process `pid` in the daemon, or -1. */
static int steal_fd(uint32_t pid, int fd)
{
	int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pidfd < 0)
		return -1;
	int copy = (int)syscall(SYS_pidfd_getfd, pidfd, fd, 0);
	int err = errno;
	close(pidfd);
	errno = err;
	return copy;
}

static int kernel_map_id_of(int fd, uint32_t *id)
{
	struct bpf_map_info info;
	memset(&info, 0, sizeof(info));
	union bpf_attr a = {.info = {.bpf_fd = (uint32_t)fd, .info_len = sizeof(info),
				     .info = (uintptr_t)&info}};
	if (syscall(SYS_bpf, BPF_OBJ_GET_INFO_BY_FD, &a, sizeof(a)) < 0)
		return -1;
	*id = info.id;
	return 0;
}

/* The segment map fronting the kernel map the process has as `fd`, made when first needed. */
static int fronted_map(uint32_t pid, int fd)
{
	int copy = steal_fd(pid, fd);
	uint32_t kid;
	if (copy < 0 || kernel_map_id_of(copy, &kid) < 0) {
		dlog("pid %u: map fd %d: %s\n", pid, fd, strerror(errno));
		if (copy >= 0)
			close(copy);
		return -1;
	}
	for (size_t i = 0; i < nfronts; i++) {
		if (fronts[i].pid == pid && fronts[i].kernel_id == kid) {
			close(copy);
			return fronts[i].seg_map;
		}
	}
	int id = bpftime_kernel_map_create(shm, kid);
	if (id < 0) {
		dlog("pid %u: kernel map %u: %s\n", pid, kid, bpftime_last_error());
		close(copy);
		return -1;
	}
	if (nfronts == capfronts) {
		size_t cap = capfronts ? capfronts * 2 : 16;
		struct fronted *n = realloc(fronts, cap * sizeof(*n));
		if (!n) {
			bpftime_object_delete(shm, (uint32_t)id);
			close(copy);
			return -1;
		}
		fronts = n;
		capfronts = cap;
	}
	fronts[nfronts++] = (struct fronted){pid, kid, copy, -1, id};
	dverbose("pid %u: kernel map %u fronted by segment map %d\n", pid, kid, id);
	return id;
}

int redirect_output_prog(uint32_t kernel_map_id)
{
	for (size_t i = 0; i < nfronts; i++) {
		if (fronts[i].kernel_id != kernel_map_id)
			continue;
		if (fronts[i].out_fd < 0) {
			fronts[i].out_fd = bpftime_kernel_output_prog(kernel_map_id);
			if (fronts[i].out_fd < 0)
				dlog("kernel map %u: cannot load its output program: %s\n", kernel_map_id,
				     strerror(-fronts[i].out_fd));
		}
		return fronts[i].out_fd;
	}
	return -1;
}

int redirect_fronted_fd(uint32_t kernel_map_id)
{
	for (size_t i = 0; i < nfronts; i++)
		if (fronts[i].kernel_id == kernel_map_id)
			return fronts[i].fd;
	return -1;
}

struct insn {
	uint8_t code;
	uint8_t dst : 4, src : 4;
	int16_t off;
	int32_t imm;
};

/* The program in the segment: map fds in lddw become ids of segment maps fronting them. */
static int segment_program(struct obj *prog)
{
	if (prog->seg_prog)
		return prog->seg_prog;
	if (prog->prog_type != BPF_PROG_TYPE_KPROBE_ID || !prog->insns) {
		dlog("pid %u: program '%s' (type %u, %u instructions) cannot run in userspace%s\n",
		     prog->pid, prog->name, prog->prog_type, prog->insn_cnt,
		     prog->insns ? "" : " (too long to copy)");
		return -1;
	}
	size_t bytes = (size_t)prog->insn_cnt * 8;
	struct insn *code = malloc(bytes);
	if (!code)
		return -1;
	memcpy(code, prog->insns, bytes);
	for (uint32_t pc = 0; pc + 1 < prog->insn_cnt; pc++) {
		if (code[pc].code != 0x18)
			continue;
		uint32_t src = code[pc].src;
		if (src == BPF_PSEUDO_MAP_FD || src == BPF_PSEUDO_MAP_VALUE) {
			int id = fronted_map(prog->pid, code[pc].imm);
			if (id < 0) {
				free(code);
				return -1;
			}
			code[pc].imm = id;
		} else if (src != 0) {
			dlog("pid %u: program '%s': pc %u: lddw of kind %u is not supported in userspace\n",
			     prog->pid, prog->name, pc, src);
			free(code);
			return -1;
		}
		pc++;
	}
	int id = bpftime_prog_create(shm, prog->name, prog->prog_type, code, bytes);
	free(code);
	if (id < 0) {
		dlog("pid %u: program '%s': %s\n", prog->pid, prog->name, bpftime_last_error());
		return -1;
	}
	prog->seg_prog = id;
	return id;
}

/* Makes the segment link of a redirected perf event that has a program and is enabled. */
static void link_up(struct obj *perf)
{
	if (perf->seg_link || perf->prog_fd < 0 || !perf->enabled)
		return;
	struct obj *prog = find(perf->pid, perf->prog_fd, OBJ_PROG);
	if (!prog) {
		dlog("pid %u: program fd %d on uprobe %s+0x%llx is unknown (loaded before the daemon "
		     "started?); not run\n", perf->pid, perf->prog_fd, perf->path,
		     (unsigned long long)perf->offset);
		return;
	}
	int prog_id = segment_program(prog);
	if (prog_id < 0)
		return;
	struct bpftime_link_spec spec;
	memset(&spec, 0, sizeof(spec));
	spec.prog_id = (uint32_t)prog_id;
	spec.type = (perf->retprobe ? BPFTIME_LINK_URETPROBE : BPFTIME_LINK_UPROBE) |
		    BPFTIME_LINK_OVER_KERNEL_PROBE;
	spec.pid = perf->perf_pid >= 0 ? perf->perf_pid : -1;
	spec.offset = perf->offset;
	spec.cookie = perf->cookie;
	if (strlen(perf->path) >= sizeof(spec.target)) {
		dlog("pid %u: path %s is too long for a link (%zu bytes at most)\n", perf->pid,
		     perf->path, sizeof(spec.target) - 1);
		return;
	}
	memcpy(spec.target, perf->path, strlen(perf->path) + 1);
	int id = bpftime_link_create(shm, prog->name, &spec);
	if (id < 0) {
		dlog("pid %u: link of '%s' on %s+0x%llx: %s\n", perf->pid, prog->name, perf->path,
		     (unsigned long long)perf->offset, bpftime_last_error());
		return;
	}
	perf->seg_link = id;
	dlog("pid %u: %s '%s' on %s+0x%llx runs in userspace (segment program %d, link %d)\n",
	     perf->pid, perf->retprobe ? "uretprobe" : "uprobe", prog->name, perf->path,
	     (unsigned long long)perf->offset, prog_id, id);
}

static void link_down(struct obj *perf)
{
	if (perf->seg_link)
		dverbose("pid %u: link %d removed\n", perf->pid, perf->seg_link);
	delete_object(&perf->seg_link, "link");
}

/* Everything of a process: at exit or exec. Links first, then programs, then maps. */
static void release_process(uint32_t pid)
{
	for (size_t i = 0; i < nobjs; i++)
		if (objs[i].pid == pid && objs[i].kind == OBJ_PERF)
			link_down(&objs[i]);
	for (size_t i = 0; i < nobjs; i++)
		if (objs[i].pid == pid && objs[i].kind == OBJ_PROG)
			delete_object(&objs[i].seg_prog, "program");
	for (size_t i = nfronts; i-- > 0;) {
		if (fronts[i].pid != pid)
			continue;
		delete_object(&fronts[i].seg_map, "map");
		close(fronts[i].fd);
		if (fronts[i].out_fd >= 0)
			close(fronts[i].out_fd);
		fronts[i] = fronts[--nfronts];
	}
	for (size_t i = nobjs; i-- > 0;) {
		if (objs[i].pid != pid)
			continue;
		free(objs[i].insns);
		objs[i] = objs[--nobjs];
	}
}

void redirect_cleanup(void)
{
	while (nobjs || nfronts)
		release_process(nobjs ? objs[0].pid : fronts[0].pid);
}

/* A relative path as the process saw it. */
static void absolute_path(uint32_t pid, const char *path, char *out, size_t len)
{
	if (path[0] == '/') {
		snprintf(out, len, "%s", path);
		return;
	}
	char rel[PATH_MAX + 64];
	snprintf(rel, sizeof(rel), "/proc/%u/cwd/%s", pid, path);
	if (!realpath(rel, out))
		snprintf(out, len, "%s", path);
}

static void on_bpf(const struct daemon_event *e, uint64_t size)
{
	if (e->ret < 0)
		return;
	int fd = (int)e->ret;
	if (e->cmd == BPF_PROG_LOAD) {
		dverbose("pid %u: BPF_PROG_LOAD '%.16s' type %u, %u instructions -> fd %d\n", e->pid,
			 e->name, e->prog_type, e->insn_cnt, fd);
		struct obj *o = add(e->pid, fd, OBJ_PROG);
		if (!o)
			return;
		o->prog_type = e->prog_type;
		o->insn_cnt = e->insn_cnt;
		memcpy(o->name, e->name, sizeof(o->name));
		o->name[15] = 0;
		uint64_t bytes = (uint64_t)e->insn_cnt * 8;
		if (e->insn_cnt && e->insn_cnt < DAEMON_MAX_INSNS && sizeof(*e) + bytes <= size) {
			o->insns = malloc(bytes);
			if (o->insns)
				memcpy(o->insns, e->insns, bytes);
		}
	} else if (e->cmd == BPF_MAP_CREATE) {
		dverbose("pid %u: BPF_MAP_CREATE '%.16s' type %u key %u value %u max %u flags 0x%x -> fd "
			 "%d\n", e->pid, e->name, e->map_type, e->key_size, e->value_size,
			 e->max_entries, e->map_flags, fd);
	} else if (e->cmd == BPF_LINK_CREATE) {
		dverbose("pid %u: BPF_LINK_CREATE prog fd %u target fd %u attach type %u -> fd %d\n",
			 e->pid, e->prog_fd, e->target_fd, e->attach_type, fd);
		struct obj *perf = find(e->pid, (int)e->target_fd, OBJ_PERF);
		if (!perf || e->attach_type != BPF_PERF_EVENT)
			return;
		struct obj *link = add(e->pid, fd, OBJ_LINK);
		perf = find(e->pid, (int)e->target_fd, OBJ_PERF); /* add may have moved it */
		if (!link || !perf)
			return;
		link->perf_fd = perf->fd;
		perf->prog_fd = (int)e->prog_fd;
		perf->cookie = e->cookie;
		link_up(perf);
	}
}

static void on_perf_open(const struct daemon_event *e)
{
	bool retprobe = e->config & 1;
	dverbose("pid %u: perf_event_open %s %s+0x%llx pid %d cpu %d -> %lld\n", e->pid,
		 retprobe ? "uretprobe" : "uprobe", e->path, (unsigned long long)e->config2, e->perf_pid,
		 e->perf_cpu, (long long)e->ret);
	if (e->ret < 0)
		return;
	if (!e->redirected) {
		dlog("pid %u: uprobe %s+0x%llx stays in the kernel (not on the -w list)\n", e->pid,
		     e->path, (unsigned long long)e->config2);
		return;
	}
	struct obj *o = add(e->pid, (int)e->ret, OBJ_PERF);
	if (!o)
		return;
	absolute_path(e->pid, e->path, o->path, sizeof(o->path));
	o->offset = e->config2;
	o->retprobe = retprobe;
	o->redirected = true;
	o->enabled = true; /* libbpf opens it enabled; PERF_EVENT_IOC_DISABLE says otherwise */
	o->perf_pid = e->perf_pid;
}

static void on_ioctl(const struct daemon_event *e)
{
	struct obj *perf = find(e->pid, (int)e->fd, OBJ_PERF);
	if (!perf || e->ret < 0)
		return;
	dverbose("pid %u: ioctl(%u, %s) -> %lld\n", e->pid, e->fd,
		 e->ioctl_cmd == PERF_IOC_SET_BPF ? "SET_BPF"
		 : e->ioctl_cmd == PERF_IOC_ENABLE ? "ENABLE" : "DISABLE", (long long)e->ret);
	if (e->ioctl_cmd == PERF_IOC_SET_BPF) {
		perf->prog_fd = (int)e->ioctl_arg;
		link_up(perf);
	} else if (e->ioctl_cmd == PERF_IOC_ENABLE) {
		perf->enabled = true;
		link_up(perf);
	} else {
		perf->enabled = false;
		link_down(perf);
	}
}

static void on_close(const struct daemon_event *e)
{
	struct obj *o = find(e->pid, (int)e->fd, 0);
	if (!o)
		return;
	dverbose("pid %u: close(%u)\n", e->pid, e->fd);
	if (o->kind == OBJ_LINK) {
		struct obj *perf = find(e->pid, o->perf_fd, OBJ_PERF);
		if (perf) {
			link_down(perf);
			perf->prog_fd = -1;
		}
	} else if (o->kind == OBJ_PERF) {
		link_down(o);
	} else if (o->kind == OBJ_PROG) {
		/* Links made from it keep their segment program; it goes with the process. */
		if (o->seg_prog) {
			o->fd = -1 - o->fd; /* no longer reachable by fd */
			return;
		}
	}
	o = find(e->pid, (int)e->fd, 0);
	if (o) {
		free(o->insns);
		*o = objs[--nobjs];
	}
}

void redirect_event(const struct daemon_event *e, uint64_t size)
{
	switch (e->kind) {
	case DEV_BPF:
		on_bpf(e, size);
		break;
	case DEV_PERF_OPEN:
		on_perf_open(e);
		break;
	case DEV_IOCTL:
		on_ioctl(e);
		break;
	case DEV_CLOSE:
		on_close(e);
		break;
	case DEV_EXEC:
	case DEV_EXIT:
		for (size_t i = 0; i < nobjs; i++) {
			if (objs[i].pid == e->pid) {
				dverbose("pid %u: %s; its userspace links go\n", e->pid,
					 e->kind == DEV_EXEC ? "exec" : "exit");
				release_process(e->pid);
				break;
			}
		}
		break;
	}
}
