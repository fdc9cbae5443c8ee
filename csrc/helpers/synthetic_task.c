/*
 * The synthetic task_struct (see synthetic_task.h).
 *
 * Why the layout is read here, in C, and not by the TypeScript loader: the
 * programs an agent runs come from three places (our loader, libbpf
 * applications through the syscall server, bpftrace), and all of them were
 * relocated (CO-RE) or written against the running kernel's BTF; the agent can
 * read /sys/kernel/btf/vmlinux itself (it is world-readable), so the segment
 * carries nothing new and no loader has to know. It is read once per process,
 * when a VM is made for a program that calls bpf_get_current_task(_btf)
 * (outside any probe), and the file is dropped once the offsets are known.
 *
 * Per thread, one anonymous mapping holds: this thread's task, its leader's
 * (a thread other than the leader), its parent process's, one struct cred,
 * one mm_struct, one nsproxy and one pid_namespace, each at the offset the
 * layout gives it. Members the kernel does not have are skipped.
 *
 * What is filled, from where (built at the thread's first use, after fork and
 * after synthetic_task_refresh; ppid, comm and the ids re-read at most once a
 * millisecond, and at every sched tracepoint):
 *   task: pid, tgid, comm, real_parent = parent (the parent process's task:
 *     pid = tgid = getppid(), its comm and start time from /proc; its own
 *     real_parent is NULL), group_leader, start_time and start_boottime (the
 *     thread's start from /proc, in clock ticks: 10 ms steps; exact for a child
 *     forked while we watched), real_cred = cred, exit_code and PF_EXITING in
 *     flags (set at exit), exit_signal (SIGCHLD for a leader, -1 for a thread),
 *     mm, nsproxy.
 *   cred: uid, gid, suid, sgid, euid, egid, fsuid, fsgid (/proc/thread-self/status).
 *   mm_struct: arg_start, arg_end, env_start, env_end (/proc/self/stat), which
 *     point into the process's own memory, so bpf_probe_read_user reads argv.
 *   nsproxy: pid_ns_for_children -> pid_namespace: level (NSpid), ns.inum.
 */
#define _GNU_SOURCE
#include "synthetic_task.h"
#include "../base/error.h"
#include "../base/kernel_btf.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define PF_EXITING 0x4
/*
 * A block's first bytes hold its node in the list of blocks (no malloc: _exit from a signal
 * handler may build one); programs do not see them.
 */
#define REGISTRY_BYTES 64

/* Offsets into the kernel's structs; -1: the kernel has no such member. */
struct task_layout {
	uint32_t task_size, cred_size, mm_size, nsproxy_size, pidns_size;
	int64_t pid, tgid, comm, real_parent, parent, group_leader, start_time, start_boottime, real_cred,
		cred, exit_code, exit_signal, flags, mm, nsproxy;
	int64_t uid, gid, suid, sgid, euid, egid, fsuid, fsgid;
	int64_t arg_start, arg_end, env_start, env_end;
	int64_t pid_ns_for_children, level, ns_inum;
	/* Where each object sits in a thread's block, and the block's size (whole pages). */
	uint64_t at_task, at_leader, at_parent, at_cred, at_mm, at_nsproxy, at_pidns, block_size;
};

static struct task_layout L;
static int layout_state; /* 0 not read, 1 ready, -1 unavailable */
static pthread_mutex_t layout_lock = PTHREAD_MUTEX_INITIALIZER;

/* Bumped after fork (in the child) and by synthetic_task_refresh: blocks older than it are rebuilt. */
static uint32_t generation = 1;
/* A child forked here: its exact start (the kernel takes it at fork), monotonic and boot-time ns. */
static uint64_t forked_mono, forked_boot;
static int forked_pid;

struct block {
	uint8_t *base;
	uint32_t generation;
	uint64_t refreshed_ns; /* monotonic time of the last re-read of ppid, comm, ids */
	int tid, pid, ppid;
};
static __thread struct block tl __attribute__((tls_model("initial-exec")));
__thread int synthetic_task_leader_mode __attribute__((tls_model("initial-exec")));
static pthread_key_t block_key;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;

static uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int64_t member(const struct kbtf *b, const char *s, const char *path)
{
	return kbtf_offset(b, s, path, NULL);
}

static uint64_t place(uint64_t *at, uint64_t size)
{
	uint64_t here = (*at + 63) & ~63ull;
	*at = here + size;
	return here;
}

static int read_layout(void)
{
	struct kbtf *b = kbtf_open(NULL);
	if (!b)
		return -1;
	struct task_layout l;
	memset(&l, 0, sizeof(l));
	if (!kbtf_struct(b, "task_struct", &l.task_size) || !kbtf_struct(b, "cred", &l.cred_size)) {
		set_error("kernel BTF: no struct task_struct or struct cred");
		kbtf_close(b);
		return -1;
	}
	kbtf_struct(b, "mm_struct", &l.mm_size);
	kbtf_struct(b, "nsproxy", &l.nsproxy_size);
	kbtf_struct(b, "pid_namespace", &l.pidns_size);
	l.pid = member(b, "task_struct", "pid");
	l.tgid = member(b, "task_struct", "tgid");
	l.comm = member(b, "task_struct", "comm");
	l.real_parent = member(b, "task_struct", "real_parent");
	l.parent = member(b, "task_struct", "parent");
	l.group_leader = member(b, "task_struct", "group_leader");
	l.start_time = member(b, "task_struct", "start_time");
	l.start_boottime = member(b, "task_struct", "start_boottime");
	if (l.start_boottime < 0) /* before 5.5 */
		l.start_boottime = member(b, "task_struct", "real_start_time");
	l.real_cred = member(b, "task_struct", "real_cred");
	l.cred = member(b, "task_struct", "cred");
	l.exit_code = member(b, "task_struct", "exit_code");
	l.exit_signal = member(b, "task_struct", "exit_signal");
	l.flags = member(b, "task_struct", "flags");
	l.mm = l.mm_size ? member(b, "task_struct", "mm") : -1;
	l.nsproxy = l.nsproxy_size ? member(b, "task_struct", "nsproxy") : -1;
	/* kuid_t and kgid_t are struct { uid_t val; }: the value is at the member's offset. */
	l.uid = member(b, "cred", "uid");
	l.gid = member(b, "cred", "gid");
	l.suid = member(b, "cred", "suid");
	l.sgid = member(b, "cred", "sgid");
	l.euid = member(b, "cred", "euid");
	l.egid = member(b, "cred", "egid");
	l.fsuid = member(b, "cred", "fsuid");
	l.fsgid = member(b, "cred", "fsgid");
	l.arg_start = member(b, "mm_struct", "arg_start");
	l.arg_end = member(b, "mm_struct", "arg_end");
	l.env_start = member(b, "mm_struct", "env_start");
	l.env_end = member(b, "mm_struct", "env_end");
	l.pid_ns_for_children = l.pidns_size ? member(b, "nsproxy", "pid_ns_for_children") : -1;
	l.level = member(b, "pid_namespace", "level");
	l.ns_inum = member(b, "pid_namespace", "ns.inum");
	kbtf_close(b);
	if (l.pid < 0 || l.tgid < 0 || l.comm < 0) {
		set_error("kernel BTF: task_struct has no pid, tgid or comm");
		return -1;
	}
	uint64_t at = REGISTRY_BYTES;
	l.at_task = place(&at, l.task_size);
	l.at_leader = place(&at, l.task_size);
	l.at_parent = place(&at, l.task_size);
	l.at_cred = place(&at, l.cred_size);
	l.at_mm = place(&at, l.mm_size);
	l.at_nsproxy = place(&at, l.nsproxy_size);
	l.at_pidns = place(&at, l.pidns_size);
	l.block_size = (at + 4095) & ~4095ull;
	L = l;
	return 0;
}

/*
 * Every thread's block, so a forked child (one thread) can unmap the others'
 * copies. Taken only when a thread makes or drops its block.
 */
struct registered {
	uint8_t *base;
	struct registered *next;
};
static struct registered *blocks;
static pthread_mutex_t blocks_lock = PTHREAD_MUTEX_INITIALIZER;

static void forget_block(void *p)
{
	/* At thread exit (pthread key destructor): the block goes with its thread. */
	if (!p || p != tl.base)
		return;
	pthread_mutex_lock(&blocks_lock);
	for (struct registered **pp = &blocks; *pp; pp = &(*pp)->next)
		if ((*pp)->base == p) {
			*pp = (*pp)->next;
			break;
		}
	pthread_mutex_unlock(&blocks_lock);
	munmap(tl.base, L.block_size);
	tl.base = NULL;
}

static void in_forked_child(void)
{
	/* The only thread now: the other threads' blocks are copies nobody will use. */
	pthread_mutex_init(&blocks_lock, NULL);
	for (struct registered **pp = &blocks; *pp;) {
		struct registered *r = *pp;
		if (r->base == tl.base) {
			pp = &r->next;
			continue;
		}
		*pp = r->next;
		munmap(r->base, L.block_size);
	}
	__atomic_add_fetch(&generation, 1, __ATOMIC_RELAXED);
	forked_mono = clock_ns(CLOCK_MONOTONIC);
	forked_boot = clock_ns(CLOCK_BOOTTIME);
	forked_pid = getpid();
}

static void make_key(void)
{
	/*
	 * The key's destructor runs as each thread ends, possibly after whoever loaded us closed
	 * the library (Deno unloads FFI libraries before its threads end): we stay loaded.
	 */
	Dl_info self;
	if (dladdr((void *)make_key, &self) && self.dli_fname)
		dlopen(self.dli_fname, RTLD_LAZY | RTLD_NOLOAD | RTLD_NODELETE);
	pthread_key_create(&block_key, forget_block);
	pthread_atfork(NULL, NULL, in_forked_child);
}

int synthetic_task_prepare(void)
{
	int s = __atomic_load_n(&layout_state, __ATOMIC_ACQUIRE);
	if (s)
		return s > 0 ? 0 : -1;
	pthread_mutex_lock(&layout_lock);
	if (!layout_state) {
		pthread_once(&key_once, make_key);
		__atomic_store_n(&layout_state, read_layout() == 0 ? 1 : -1, __ATOMIC_RELEASE);
	}
	s = layout_state;
	pthread_mutex_unlock(&layout_lock);
	if (s < 0)
		set_error("bpf_get_current_task: no task layout (the kernel's BTF could not be read)");
	return s > 0 ? 0 : -1;
}

/* ---- filling ---- */

static void put(uint8_t *obj, int64_t off, const void *v, size_t n)
{
	if (off >= 0)
		memcpy(obj + off, v, n);
}
static void put32(uint8_t *obj, int64_t off, uint32_t v)
{
	put(obj, off, &v, 4);
}
static void put64(uint8_t *obj, int64_t off, uint64_t v)
{
	put(obj, off, &v, 8);
}

static ssize_t read_file(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -1;
	buf[n] = 0;
	return n;
}

/* Fields of a /proc stat file by number (1-based, as proc(5) counts); 0 for what cannot be read. */
static void stat_fields(const char *path, const int *which, uint64_t *out, int n)
{
	char buf[1024];
	for (int i = 0; i < n; i++)
		out[i] = 0;
	if (read_file(path, buf, sizeof(buf)) < 0)
		return;
	char *p = strrchr(buf, ')'); /* comm may hold spaces and parentheses */
	if (!p)
		return;
	p++;
	for (int field = 3; *p; field++) {
		while (*p == ' ')
			p++;
		uint64_t v = strtoull(p, &p, 10);
		for (int i = 0; i < n; i++)
			if (which[i] == field)
				out[i] = v;
		while (*p && *p != ' ')
			p++;
	}
}

static void comm_of(const char *path, char comm[16])
{
	char buf[64];
	memset(comm, 0, 16);
	if (read_file(path, buf, sizeof(buf)) > 0) {
		size_t n = strcspn(buf, "\n");
		memcpy(comm, buf, n < 15 ? n : 15);
	}
}

/* Boot-time and monotonic ns of a /proc start time in clock ticks. */
static void start_times(uint64_t ticks, uint64_t *boot, uint64_t *mono)
{
	long hz = sysconf(_SC_CLK_TCK);
	*boot = ticks * (1000000000ull / (uint64_t)(hz > 0 ? hz : 100));
	uint64_t drift = clock_ns(CLOCK_BOOTTIME) - clock_ns(CLOCK_MONOTONIC); /* time suspended */
	*mono = *boot > drift ? *boot - drift : 0;
}

static void fill_times(uint8_t *task, const char *stat_path, bool exact)
{
	uint64_t boot, mono;
	if (exact) {
		boot = forked_boot;
		mono = forked_mono;
	} else {
		static const int f[] = {22};
		uint64_t ticks;
		stat_fields(stat_path, f, &ticks, 1);
		start_times(ticks, &boot, &mono);
	}
	put64(task, L.start_time, mono);
	put64(task, L.start_boottime, boot);
}

static void fill_parent(uint8_t *base, int ppid)
{
	uint8_t *p = base + L.at_parent;
	memset(p, 0, L.task_size);
	put32(p, L.pid, (uint32_t)ppid);
	put32(p, L.tgid, (uint32_t)ppid);
	put64(p, L.group_leader, (uint64_t)(uintptr_t)p);
	put32(p, L.exit_signal, SIGCHLD);
	if (ppid <= 0)
		return; /* the parent is outside our pid namespace */
	char path[64], comm[16];
	snprintf(path, sizeof(path), "/proc/%d/comm", ppid);
	comm_of(path, comm);
	put(p, L.comm, comm, 16);
	snprintf(path, sizeof(path), "/proc/%d/stat", ppid);
	fill_times(p, path, false);
}

static void fill_creds(uint8_t *cred)
{
	uid_t r, e, s;
	gid_t gr, ge, gs;
	getresuid(&r, &e, &s);
	getresgid(&gr, &ge, &gs);
	put32(cred, L.uid, r);
	put32(cred, L.euid, e);
	put32(cred, L.suid, s);
	put32(cred, L.gid, gr);
	put32(cred, L.egid, ge);
	put32(cred, L.sgid, gs);
}

/* fsuid, fsgid and the pid namespace's level, from /proc/thread-self/status. */
static void fill_status(uint8_t *cred, uint8_t *pidns)
{
	char buf[4096];
	if (read_file("/proc/thread-self/status", buf, sizeof(buf)) < 0)
		return;
	unsigned a, b, c, d;
	const char *l = strstr(buf, "\nUid:");
	if (l && sscanf(l + 5, "%u %u %u %u", &a, &b, &c, &d) == 4)
		put32(cred, L.fsuid, d);
	l = strstr(buf, "\nGid:");
	if (l && sscanf(l + 5, "%u %u %u %u", &a, &b, &c, &d) == 4)
		put32(cred, L.fsgid, d);
	l = strstr(buf, "\nNSpid:");
	if (l && pidns) {
		uint32_t level = 0;
		for (l += 7; *l && *l != '\n'; l++)
			level += (*l == '\t' || *l == ' ') && l[1] >= '0' && l[1] <= '9';
		put32(pidns, L.level, level ? level - 1 : 0);
	}
}

static void fill_common_task(uint8_t *t, uint8_t *base, int pid, int tgid)
{
	put32(t, L.pid, (uint32_t)pid);
	put32(t, L.tgid, (uint32_t)tgid);
	put64(t, L.real_parent, (uint64_t)(uintptr_t)(base + L.at_parent));
	put64(t, L.parent, (uint64_t)(uintptr_t)(base + L.at_parent));
	put64(t, L.real_cred, (uint64_t)(uintptr_t)(base + L.at_cred));
	put64(t, L.cred, (uint64_t)(uintptr_t)(base + L.at_cred));
	if (L.mm_size)
		put64(t, L.mm, (uint64_t)(uintptr_t)(base + L.at_mm));
	if (L.nsproxy_size)
		put64(t, L.nsproxy, (uint64_t)(uintptr_t)(base + L.at_nsproxy));
}

/* Builds this thread's objects from scratch. */
static void build(struct block *k)
{
	uint8_t *base = k->base;
	memset(base + REGISTRY_BYTES, 0, L.block_size - REGISTRY_BYTES); /* the registry node stays */
	k->tid = (int)syscall(SYS_gettid);
	k->pid = getpid();
	k->ppid = getppid();
	uint8_t *task = base + L.at_task, *leader = base + L.at_leader;
	char comm[16] = "", path[64];
	prctl(PR_GET_NAME, comm);
	fill_common_task(task, base, k->tid, k->pid);
	put(task, L.comm, comm, 16);
	bool is_leader = k->tid == k->pid;
	put64(task, L.group_leader, (uint64_t)(uintptr_t)(is_leader ? task : leader));
	put32(task, L.exit_signal, is_leader ? SIGCHLD : (uint32_t)-1);
	snprintf(path, sizeof(path), "/proc/self/task/%d/stat", k->tid);
	fill_times(task, path, is_leader && forked_pid == k->pid);
	/* The leader (for a thread; for the leader itself a copy that nobody points at). */
	fill_common_task(leader, base, k->pid, k->pid);
	comm_of("/proc/self/comm", comm);
	put(leader, L.comm, comm, 16);
	put64(leader, L.group_leader, (uint64_t)(uintptr_t)leader);
	put32(leader, L.exit_signal, SIGCHLD);
	fill_times(leader, "/proc/self/stat", forked_pid == k->pid);
	fill_parent(base, k->ppid);
	uint8_t *cred = base + L.at_cred;
	fill_creds(cred);
	uint8_t *pidns = L.pidns_size ? base + L.at_pidns : NULL;
	fill_status(cred, pidns);
	if (L.mm_size) {
		static const int f[] = {48, 49, 50, 51};
		uint64_t v[4];
		stat_fields("/proc/self/stat", f, v, 4);
		uint8_t *mm = base + L.at_mm;
		put64(mm, L.arg_start, v[0]);
		put64(mm, L.arg_end, v[1]);
		put64(mm, L.env_start, v[2]);
		put64(mm, L.env_end, v[3]);
	}
	if (pidns && L.nsproxy_size) {
		put64(base + L.at_nsproxy, L.pid_ns_for_children, (uint64_t)(uintptr_t)pidns);
		char link[64] = "";
		ssize_t n = readlink("/proc/self/ns/pid_for_children", link, sizeof(link) - 1);
		unsigned long inum;
		if (n > 0 && (link[n] = 0, sscanf(link, "pid:[%lu]", &inum) == 1))
			put32(pidns, L.ns_inum, (uint32_t)inum);
	}
	k->generation = __atomic_load_n(&generation, __ATOMIC_RELAXED);
	k->refreshed_ns = clock_ns(CLOCK_MONOTONIC);
}

/* What changes without our knowing: reparenting, comm (prctl), ids. */
static void refresh(struct block *k)
{
	uint8_t *task = k->base + L.at_task;
	int ppid = getppid();
	if (ppid != k->ppid) {
		k->ppid = ppid;
		fill_parent(k->base, ppid);
	}
	char comm[16] = "";
	prctl(PR_GET_NAME, comm);
	put(task, L.comm, comm, 16);
	if (k->tid == k->pid)
		put(k->base + L.at_leader, L.comm, comm, 16);
	fill_creds(k->base + L.at_cred);
	k->refreshed_ns = clock_ns(CLOCK_MONOTONIC);
}

static struct block *current_block(bool force_refresh)
{
	if (__atomic_load_n(&layout_state, __ATOMIC_ACQUIRE) <= 0 && synthetic_task_prepare() < 0)
		return NULL;
	struct block *k = &tl;
	if (!k->base) {
		void *m = mmap(NULL, L.block_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (m == MAP_FAILED)
			return NULL;
		struct registered *r = m;
		k->base = m;
		k->generation = 0;
		pthread_setspecific(block_key, m);
		pthread_mutex_lock(&blocks_lock);
		*r = (struct registered){m, blocks};
		blocks = r;
		pthread_mutex_unlock(&blocks_lock);
	}
	if (k->generation != __atomic_load_n(&generation, __ATOMIC_RELAXED))
		build(k);
	else if (force_refresh || clock_ns(CLOCK_MONOTONIC) - k->refreshed_ns >= 1000000)
		refresh(k);
	return k;
}

void *synthetic_task_current(void)
{
	struct block *k = current_block(false);
	if (!k)
		return NULL;
	return k->base + (synthetic_task_leader_mode && k->tid != k->pid ? L.at_leader : L.at_task);
}

bool synthetic_task_holds(uint64_t addr, uint64_t size)
{
	uint64_t base = (uint64_t)(uintptr_t)tl.base + REGISTRY_BYTES, len = L.block_size - REGISTRY_BYTES;
	return tl.base && addr - base < len && size <= len - (addr - base);
}

void synthetic_task_refresh(void)
{
	current_block(true);
}

void synthetic_task_exiting(int exit_code, bool group)
{
	struct block *k = current_block(true);
	if (!k)
		return;
	uint8_t *objs[2] = {k->base + L.at_task, group ? k->base + L.at_leader : NULL};
	for (int i = 0; i < 2; i++) {
		if (!objs[i])
			continue;
		put32(objs[i], L.exit_code, (uint32_t)exit_code);
		if (L.flags >= 0) {
			uint32_t f;
			memcpy(&f, objs[i] + L.flags, 4);
			put32(objs[i], L.flags, f | PF_EXITING);
		}
	}
}

void synthetic_task_as_leader(bool on)
{
	synthetic_task_leader_mode += on ? 1 : -1;
}

void synthetic_task_leader_comm(char comm[16])
{
	struct block *k = current_block(false);
	if (k)
		memcpy(comm, k->base + L.at_leader + L.comm, 16);
	else
		prctl(PR_GET_NAME, comm);
}
