/*
 * sched/sched_process_exec, sched_process_exit and sched_process_fork, raised
 * by the agent for the process it lives in (links of the tracepoint kind whose
 * target is sched/...; agent.c hands them here).
 *
 * When each is raised:
 *  - exec: once the agent has started in a new image (LD_PRELOAD: every image
 *    `bpftime start` runs, and every image its descendants exec while the
 *    environment keeps the agent), after the first sync of the links, before
 *    main. As the kernel: the new comm, filename as execve was given it
 *    (AT_EXECFN), pid; old_pid is the pid too (an exec from a thread other
 *    than the leader cannot be told apart from here).
 *  - exit: exit() and return from main (an on_exit handler registered first,
 *    so it runs after the program's own handlers), _exit() and _Exit() called
 *    by the program, and the exit_group and exit syscalls when the syscall
 *    hooks are installed anyway (a syscall tracepoint link): those also see
 *    each thread's end, raised for that thread with group_dead false. The
 *    process's exit is raised once, as the leader (pid = tgid, the leader's
 *    comm and task) even when another thread ends it, which is the event the
 *    kernel's leader reports and tracers keep (pid == tgid). task->exit_code is
 *    (status & 0xff) << 8 and PF_EXITING is set, as do_exit leaves them.
 *  - fork: in the parent, after the program's fork() returns the child.
 * Not seen: a process killed by a signal (it cannot report itself; the
 * kernel's exit_code would be the signal), a vfork child that exits without
 * exec (it shares the parent's memory: nothing is written for it), thread
 * creation as a fork event, and a child made by clone/vfork/posix_spawn as a
 * fork event (its exec and exit are seen).
 *
 * The records are the kernel's, laid out from the kernel's BTF (struct
 * trace_event_raw_sched_process_*): the common header (type = the
 * tracepoint id from the link, pid = the thread id), then the fields, strings
 * as __data_loc (offset | length << 16, the bytes after the fixed part) or
 * char arrays, as this kernel declares them. Read-only to programs.
 */
#define _GNU_SOURCE
#include "agent.h"
#include "../base/kernel_btf.h"
#include "probe_exec.h"
#include "../base/syscall_names.h"
#include "../helpers/synthetic_task.h"
#include "../vm/vm_runtime.h"

#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

enum { EV_EXEC, EV_EXIT, EV_FORK, N_EVENTS };

struct sched_prog {
	struct bpftime_vm *vm;
	uint64_t cookie;
	uint32_t link_id, prog_id;
	int32_t pid; /* -1: any */
	uint32_t *faults;
	uint16_t type_id;
	const char *target;
};

struct sched_list {
	uint32_t n;
	struct sched_prog progs[];
};

/* Attached links (agent_lock held), never freed (a fault log may name one). */
struct sched_link {
	struct sched_prog p;
	int event;
	bool gone;
	char target[sizeof(((struct bpftime_link_spec *)0)->target)];
	struct sched_link *next;
};

static struct sched_list *lists[N_EVENTS];
static struct sched_link *links;

/* ---- record layouts, from the kernel's BTF ---- */

struct field {
	int32_t off; /* -1: this kernel has no such field */
	uint32_t size;
	bool data_loc;
};

struct record_layout {
	bool ready;
	uint32_t fixed; /* where __data (the strings) starts */
	struct field f[4];
};

static const char *const event_struct[N_EVENTS] = {
	"trace_event_raw_sched_process_exec",
	"trace_event_raw_sched_process_exit",
	"trace_event_raw_sched_process_fork",
};
static const char *const event_fields[N_EVENTS][4] = {
	{"filename", "pid", "old_pid", NULL},
	{"comm", "pid", "prio", "group_dead"},
	{"parent_comm", "parent_pid", "child_comm", "child_pid"},
};
static struct record_layout layouts[N_EVENTS];
static bool layouts_read;

static int read_layouts(char *err, size_t errlen)
{
	if (layouts_read)
		return 0;
	struct kbtf *b = kbtf_open(NULL);
	if (!b) {
		snprintf(err, errlen, "no record layout: %s", bpftime_last_error());
		return -1;
	}
	for (int e = 0; e < N_EVENTS; e++) {
		struct record_layout *l = &layouts[e];
		uint32_t size = 0, id = kbtf_struct(b, event_struct[e], &size);
		if (!id)
			continue;
		int64_t data = kbtf_member(b, id, "__data", NULL, NULL);
		l->fixed = data >= 0 ? (uint32_t)data : size;
		for (int i = 0; i < 4; i++) {
			struct field *f = &l->f[i];
			f->off = -1;
			if (!event_fields[e][i])
				continue;
			char loc[64];
			snprintf(loc, sizeof(loc), "__data_loc_%s", event_fields[e][i]);
			int64_t off = kbtf_member(b, id, loc, &f->size, NULL);
			f->data_loc = off >= 0;
			if (off < 0)
				off = kbtf_member(b, id, event_fields[e][i], &f->size, NULL);
			f->off = (int32_t)off;
		}
		l->ready = true;
	}
	kbtf_close(b);
	layouts_read = true;
	return 0;
}

#define MAX_RECORD (64 + 2 * PATH_MAX)

struct record {
	uint8_t bytes[MAX_RECORD];
	uint32_t len;
	const struct record_layout *l;
};

static void rec_begin(struct record *r, int event, int32_t common_pid)
{
	r->l = &layouts[event];
	memset(r->bytes, 0, r->l->fixed);
	memcpy(r->bytes + 4, &common_pid, 4); /* struct trace_entry: type, flags, preempt_count, pid */
	r->len = r->l->fixed;
}

static void rec_int(struct record *r, int i, int64_t v)
{
	const struct field *f = &r->l->f[i];
	if (f->off >= 0 && f->size && f->size <= 8)
		memcpy(r->bytes + f->off, &v, f->size); /* little-endian: the low bytes */
}

static void rec_str(struct record *r, int i, const char *s)
{
	const struct field *f = &r->l->f[i];
	if (f->off < 0)
		return;
	size_t n = strlen(s);
	if (!f->data_loc) {
		if (f->size) {
			memset(r->bytes + f->off, 0, f->size);
			memcpy(r->bytes + f->off, s, n < f->size ? n : f->size - 1);
		}
		return;
	}
	if (n + 1 > sizeof(r->bytes) - r->len)
		n = sizeof(r->bytes) - r->len - 1;
	uint32_t loc = (uint32_t)(n + 1) << 16 | r->len;
	memcpy(r->bytes + r->len, s, n);
	r->bytes[r->len + n] = 0;
	memcpy(r->bytes + f->off, &loc, 4);
	r->len += (uint32_t)n + 1;
}

/* ---- running the programs ---- */

struct sched_run {
	const struct sched_list *l;
	struct record *r;
};

static uint64_t log_fault(const struct sched_prog *p)
{
	agent_log("link %u (tracepoint %s, program %u): %s (a tracepoint's context is read-only, it is "
		  "unchanged; logged once, the process goes on)",
		  p->link_id, p->target, p->prog_id, bpftime_last_error());
	return 0;
}

static uint64_t run_progs(void *arg)
{
	const struct sched_run *s = arg;
	int32_t pid = getpid();
	for (uint32_t i = 0; i < s->l->n; i++) {
		const struct sched_prog *p = &s->l->progs[i];
		if (p->pid >= 0 && p->pid != pid)
			continue;
		memcpy(s->r->bytes, &p->type_id, 2);
		struct bpftime_attach_info info = {.func_ip = 0, .cookie = p->cookie, .flags = 0};
		uint64_t ret;
		if (vm_exec_probe(p->vm, s->r->bytes, s->r->len, &info, &ret) < 0 &&
		    __atomic_fetch_add(p->faults, 1, __ATOMIC_RELAXED) == 0)
			log_fault(p);
	}
	return 0;
}

/* The process's pid as the agent started in it or forked: a vfork child differs (see above). */
static int32_t own_pid;

static const struct sched_list *watched(int event)
{
	return __atomic_load_n(&lists[event], __ATOMIC_ACQUIRE);
}

/* Runs the event's programs on the agent's own account: not traced by syscall hooks or uprobes. */
static void raise_event(const struct sched_list *l, struct record *r)
{
	/*
	 * A signal handler that ends the process (_exit) may have interrupted a program on this
	 * thread, which may hold a ring buffer's lock: no program runs nested in another.
	 */
	if (current_run)
		return;
	struct sched_run s = {l, r};
	syscall_probes_guard(true);
	probes_suspend(true);
	bpftime_vectors_saved_call(run_progs, &s);
	probes_suspend(false);
	syscall_probes_guard(false);
}

static int32_t thread_id(void)
{
	return (int32_t)syscall(SYS_gettid);
}

void sched_raise_exec(void)
{
	own_pid = getpid();
	const struct sched_list *l = watched(EV_EXEC);
	if (!l || !layouts[EV_EXEC].ready)
		return;
	static struct record r; /* before main: one thread */
	char exe[PATH_MAX] = "";
	const char *filename = (const char *)getauxval(AT_EXECFN);
	if (!filename) {
		ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
		exe[n > 0 ? n : 0] = 0;
		filename = exe;
	}
	synthetic_task_refresh();
	rec_begin(&r, EV_EXEC, thread_id());
	rec_str(&r, 0, filename);
	rec_int(&r, 1, own_pid);
	rec_int(&r, 2, own_pid);
	raise_event(l, &r);
}

static __thread bool thread_exit_raised __attribute__((tls_model("initial-exec")));
static int process_exit_raised;

void sched_raise_exit(int status, bool group)
{
	const struct sched_list *l = watched(EV_EXIT);
	if (!l || !layouts[EV_EXIT].ready || getpid() != own_pid)
		return; /* nothing watches, or a vfork child (it shares our memory) */
	if (group ? __atomic_exchange_n(&process_exit_raised, 1, __ATOMIC_ACQ_REL) : thread_exit_raised)
		return;
	thread_exit_raised = true;
	int32_t tid = thread_id();
	bool as_leader = group && tid != own_pid;
	synthetic_task_exiting((status & 0xff) << 8, group);
	if (as_leader)
		synthetic_task_as_leader(true);
	char comm[16] = "";
	if (as_leader)
		synthetic_task_leader_comm(comm);
	else
		prctl(PR_GET_NAME, comm);
	struct record r;
	rec_begin(&r, EV_EXIT, as_leader ? own_pid : tid);
	rec_str(&r, 0, comm);
	rec_int(&r, 1, as_leader ? own_pid : tid);
	rec_int(&r, 2, 120 + getpriority(PRIO_PROCESS, 0)); /* p->prio of a normal task: 120 + nice */
	rec_int(&r, 3, group);
	raise_event(l, &r);
	if (as_leader)
		synthetic_task_as_leader(false);
}

void sched_raise_fork(pid_t child)
{
	const struct sched_list *l = watched(EV_FORK);
	if (!l || !layouts[EV_FORK].ready)
		return;
	char comm[16] = "";
	prctl(PR_GET_NAME, comm);
	struct record r;
	int32_t tid = thread_id();
	rec_begin(&r, EV_FORK, tid);
	rec_str(&r, 0, comm);
	rec_int(&r, 1, tid);
	rec_str(&r, 2, comm);
	rec_int(&r, 3, child);
	raise_event(l, &r);
}

void sched_forked_child(void)
{
	own_pid = getpid();
	process_exit_raised = 0;
	thread_exit_raised = false;
}

struct exit_args {
	int status;
	bool group;
};

static uint64_t raise_exit_call(void *arg)
{
	const struct exit_args *a = arg;
	sched_raise_exit(a->status, a->group);
	return 0;
}

/* From the syscall hooks' enter handler (NO_VECTORS: the raise runs with the vectors saved). */
NO_VECTORS void sched_exit_syscall(uint64_t nr, uint64_t status)
{
	if (!__atomic_load_n(&lists[EV_EXIT], __ATOMIC_RELAXED))
		return;
	struct exit_args a = {(int)status, nr == SYS_exit_group};
	bpftime_vectors_saved_call(raise_exit_call, &a);
}

/* ---- links (agent_lock held) ---- */

static void rebuild(void)
{
	for (int e = 0; e < N_EVENTS; e++) {
		uint32_t n = 0;
		for (struct sched_link *k = links; k; k = k->next)
			n += !k->gone && k->event == e;
		struct sched_list *l = NULL;
		if (n) {
			l = calloc(1, sizeof(*l) + n * sizeof(struct sched_prog));
			if (!l) {
				agent_log("sched tracepoints: out of memory; the previous programs stay");
				continue;
			}
			for (struct sched_link *k = links; k; k = k->next)
				if (!k->gone && k->event == e)
					l->progs[l->n++] = k->p;
		}
		/* The old list is leaked on purpose: another thread may still be walking it. */
		__atomic_store_n(&lists[e], l, __ATOMIC_RELEASE);
	}
}

int sched_link_attach(uint32_t link_id, const struct bpftime_link_spec *spec, struct bpftime_vm *vm,
		      uint32_t *faults, char *err, size_t errlen)
{
	struct syscall_tp tp;
	if (syscall_tp_parse(spec->target, &tp, err, errlen) < 0)
		return -1;
	if (read_layouts(err, errlen) < 0)
		return -1;
	int event = tp.kind - SCHED_TP_EXEC;
	if (event < 0 || event >= N_EVENTS || !layouts[event].ready) {
		snprintf(err, errlen, "this kernel's BTF has no %s", event_struct[event < 0 ? 0 : event]);
		return -1;
	}
	struct sched_link *k = calloc(1, sizeof(*k));
	if (!k) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	snprintf(k->target, sizeof(k->target), "%s", spec->target);
	k->p = (struct sched_prog){vm, spec->cookie, link_id, spec->prog_id, spec->pid, faults,
				   (uint16_t)spec->offset, k->target};
	k->event = event;
	struct sched_link **pp = &links;
	while (*pp)
		pp = &(*pp)->next;
	*pp = k;
	rebuild();
	return 0;
}

void sched_link_detach(uint32_t link_id)
{
	bool found = false;
	for (struct sched_link *k = links; k; k = k->next)
		if (k->p.link_id == link_id && !k->gone)
			k->gone = found = true;
	if (found)
		rebuild();
}

/* ---- where the program ends or forks ---- */

static void at_exit(int status, void *unused)
{
	(void)unused;
	sched_raise_exit(status, true);
}

void sched_probes_start(void)
{
	own_pid = getpid();
	on_exit(at_exit, NULL);
}

__attribute__((visibility("default"), noreturn)) void _exit(int status)
{
	typedef void (*exit_fn)(int);
	static exit_fn real;
	if (!real)
		real = (exit_fn)dlsym(RTLD_NEXT, "_exit");
	sched_raise_exit(status, true);
	if (real)
		real(status);
	for (;;)
		syscall(SYS_exit_group, status);
}

__attribute__((visibility("default"), noreturn)) void _Exit(int status)
{
	_exit(status);
}

__attribute__((visibility("default"))) pid_t fork(void)
{
	static pid_t (*real)(void);
	if (!real)
		real = (pid_t(*)(void))dlsym(RTLD_NEXT, "fork");
	pid_t child = real();
	if (child > 0)
		sched_raise_fork(child);
	return child;
}
