/*
 * Syscall tracepoints: the eBPF side of the syscall hooks (hook/syscall_hook.h).
 *
 * The hooks are installed when the first syscall tracepoint link for this
 * process appears; a process with none has nothing installed. From then on
 * every syscall reports its entry and exit here, and the programs are found
 * by syscall number: enter_slot[nr] and exit_slot[nr] are immutable lists
 * that hold the programs of syscalls/sys_enter_NAME (sys_exit_NAME) for that
 * number and those of raw_syscalls/sys_enter (sys_exit), merged, so a
 * syscall nothing watches costs one load and a null check. The last slot is
 * for numbers past the table and rt_sigreturn's exit (nr -1, as the kernel
 * reports it): raw_syscalls programs only. Lists are rebuilt under the
 * agent's lock when links come or go and published with one atomic store per
 * slot that changed; old lists are never freed (a thread may be reading one).
 *
 * The context is the kernel's, as tracefs's format files describe it:
 *   0  u16 common_type (the tracepoint id, from the link's offset)
 *   2  u8 common_flags, 3 u8 common_preempt_count (0)
 *   4  i32 common_pid (the thread id)
 *   8  syscalls/: int __syscall_nr (then 4 zero bytes); raw_syscalls/: long id
 *   16 enter: the six arguments, 8 bytes each; exit: long ret
 * For a number >= 0 the bytes at 8 are the same in both forms, so one buffer
 * serves every program of a hit (only common_type changes). Programs may not
 * write it: their VMs are made with a read-only context (agent.c).
 */
#define _GNU_SOURCE
#include "agent.h"
#include "../base/syscall_names.h"
#include "../helpers/helpers.h"
#include "../hook/syscall_hook.h"
#include "../vm/vm_runtime.h"
#include "probe_exec.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define N_SLOTS (SYSCALL_HOOK_MAX_NR + 1)
#define OTHER_SLOT SYSCALL_HOOK_MAX_NR

struct sc_prog {
	struct bpftime_vm *vm;
	struct bpftime_attach_info info; /* func_ip 0, the link's cookie */
	uint32_t link_id;
	int32_t pid; /* -1: any */
	uint32_t *faults;
	uint16_t type_id; /* common_type */
	const struct sc_link *link;
};

struct sc_list {
	uint32_t n;
	bool vector_clean;
	struct sc_prog progs[];
};

/* The attached links (agent_lock held), in attach order; never freed (a fault log may name one). */
struct sc_link {
	struct sc_prog p;
	struct syscall_tp tp;
	bool gone;
	uint32_t prog_id;
	char target[sizeof(((struct bpftime_link_spec *)0)->target)];
	char prog_name[16];
	struct sc_link *next;
};

static struct sc_list *enter_slot[N_SLOTS], *exit_slot[N_SLOTS];
static struct sc_link *links;

struct tp_ctx {
	uint16_t common_type;
	uint8_t common_flags;
	uint8_t common_preempt_count;
	int32_t common_pid;
	int64_t id;       /* raw_syscalls: long id; syscalls/: int __syscall_nr and 4 zero bytes */
	uint64_t args[6]; /* enter: the arguments; exit: args[0] is ret */
};
_Static_assert(sizeof(struct tp_ctx) == 64, "the kernel's sys_enter record");
#define ENTER_CTX_LEN 64
#define EXIT_CTX_LEN 24

/*
 * This thread's id and its process's, asked once. After clone, clone3, fork
 * and vfork they are asked again: the child of fork has a copy of this
 * thread's storage, that of vfork shares it (and the parent sees what the
 * child left when it resumes).
 */
static __thread int32_t tl_tid __attribute__((tls_model("initial-exec")));
static __thread int32_t tl_pid __attribute__((tls_model("initial-exec")));

static NO_VECTORS void who(void)
{
	/* With the hooks' guard set (we run in their handler): the agent's own, never reported. */
	tl_tid = (int32_t)syscall(SYS_gettid);
	tl_pid = (int32_t)syscall(SYS_getpid);
}

struct fault_log {
	const struct sc_prog *p;
};

static uint64_t log_fault(void *arg)
{
	const struct sc_prog *p = ((struct fault_log *)arg)->p;
	agent_log("link %u (tracepoint %s, program %u '%s'): %s (a tracepoint's context is read-only, "
		  "it is unchanged; logged once, the process goes on)",
		  p->link_id, p->link->target, p->link->prog_id, p->link->prog_name, bpftime_last_error());
	return 0;
}

struct sc_run {
	const struct sc_list *l;
	struct tp_ctx *ctx;
	uint64_t len;
};

static inline __attribute__((always_inline)) NO_VECTORS uint64_t run_progs(void *arg)
{
	const struct sc_run *r = arg;
	for (uint32_t i = 0; i < r->l->n; i++) {
		const struct sc_prog *p = &r->l->progs[i];
		if (p->pid >= 0 && p->pid != tl_pid)
			continue;
		r->ctx->common_type = p->type_id;
		uint64_t ret;
		if (__builtin_expect(vm_exec_probe(p->vm, r->ctx, r->len, &p->info, &ret) < 0, 0) &&
		    __atomic_fetch_add(p->faults, 1, __ATOMIC_RELAXED) == 0) {
			struct fault_log f = {p};
			bpftime_vectors_saved_call(log_fault, &f);
		}
	}
	return 0;
}

static __attribute__((noinline)) NO_VECTORS void dispatch(const struct sc_list *l, int64_t id, const uint64_t *args,
							  int nargs, uint64_t len)
{
	if (__builtin_expect(!tl_tid, 0))
		who();
	struct tp_ctx c;
	c.common_type = 0;
	c.common_flags = 0;
	c.common_preempt_count = 0;
	c.common_pid = tl_tid;
	c.id = id;
	for (int i = 0; i < 6; i++)
		c.args[i] = i < nargs ? args[i] : 0;
	struct sc_run r = {l, &c, len};
	if (l->vector_clean)
		run_progs(&r);
	else
		bpftime_vectors_saved_call(run_progs, &r);
}

static NO_VECTORS void on_enter(void *unused, uint64_t nr, const uint64_t args[6])
{
	(void)unused;
	if (__builtin_expect(nr == SYS_exit_group || nr == SYS_exit, 0))
		sched_exit_syscall(nr, args[0]); /* before the exit's own programs, as the kernel's order */
	const struct sc_list *l = __atomic_load_n(&enter_slot[nr < OTHER_SLOT ? nr : OTHER_SLOT], __ATOMIC_ACQUIRE);
	if (__builtin_expect(l == NULL, 1))
		return;
	dispatch(l, (int64_t)nr, args, 6, ENTER_CTX_LEN);
}

static NO_VECTORS void on_exit_(void *unused, uint64_t nr, int64_t ret)
{
	(void)unused;
	/* clone, fork, vfork (56..58), clone3: a new thread or process, or back from one (see tl_tid). */
	if (__builtin_expect(nr - SYS_clone <= SYS_vfork - SYS_clone || nr == SYS_clone3, 0)) {
		tl_tid = 0;
		pid_tgid_forget();
	}
	const struct sc_list *l = __atomic_load_n(&exit_slot[nr < OTHER_SLOT ? nr : OTHER_SLOT], __ATOMIC_ACQUIRE);
	if (__builtin_expect(l == NULL, 1))
		return;
	uint64_t r = (uint64_t)ret;
	dispatch(l, (int64_t)nr, &r, 1, EXIT_CTX_LEN);
}

/* ---- the agent's own syscalls, counted for tests (BPFTIME_AGENT_OWN_COUNTS) ---- */

static uint64_t *own_counts; /* [2][SYSCALL_HOOK_MAX_NR]: enter, exit; nr -1 at SYSCALL_HOOK_MAX_NR - 1 */

static NO_VECTORS void on_own(void *unused, uint64_t nr, bool exit)
{
	(void)unused;
	if (own_counts)
		__atomic_add_fetch(&own_counts[(exit ? SYSCALL_HOOK_MAX_NR : 0) + nr % SYSCALL_HOOK_MAX_NR], 1,
				   __ATOMIC_RELAXED);
}

/* A file the test made: mapped shared, so forked children add to the same counts. */
static void map_own_counts(void)
{
	const char *path = getenv("BPFTIME_AGENT_OWN_COUNTS");
	if (!path || !*path)
		return;
	size_t len = 2 * SYSCALL_HOOK_MAX_NR * sizeof(uint64_t);
	int fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		agent_log("BPFTIME_AGENT_OWN_COUNTS=%s: cannot open", path);
		return;
	}
	void *p = ftruncate(fd, (off_t)len) == 0 ? mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)
						   : MAP_FAILED;
	close(fd);
	if (p == MAP_FAILED)
		agent_log("BPFTIME_AGENT_OWN_COUNTS=%s: cannot map", path);
	else
		own_counts = p;
}

/* ---- links (agent_lock held) ---- */

static void hook_log(void *unused, const char *line)
{
	(void)unused;
	agent_log("syscall hooks: %s", line);
}

static bool matches(const struct sc_link *k, int slot, bool enter)
{
	if (k->gone)
		return false;
	if (k->tp.kind == (enter ? SYSCALL_TP_RAW_ENTER : SYSCALL_TP_RAW_EXIT))
		return true;
	return k->tp.kind == (enter ? SYSCALL_TP_ENTER : SYSCALL_TP_EXIT) && k->tp.nr == slot;
}

static bool same(const struct sc_list *a, const struct sc_list *b)
{
	if (!a || !b)
		return a == b;
	if (a->n != b->n)
		return false;
	for (uint32_t i = 0; i < a->n; i++)
		if (a->progs[i].link_id != b->progs[i].link_id)
			return false;
	return true;
}

/* Rebuilds one slot's list; publishes it when it differs. False when out of memory. */
static bool rebuild_slot(struct sc_list **slot, int s, bool enter)
{
	uint32_t n = 0;
	for (const struct sc_link *k = links; k; k = k->next)
		n += matches(k, s, enter);
	struct sc_list *l = NULL;
	if (n) {
		l = calloc(1, sizeof(*l) + n * sizeof(struct sc_prog));
		if (!l)
			return false;
		l->vector_clean = true;
		for (const struct sc_link *k = links; k; k = k->next) {
			if (!matches(k, s, enter))
				continue;
			l->progs[l->n++] = k->p;
			l->vector_clean &= vm_vector_clean(k->p.vm);
		}
	}
	if (same(*slot, l)) {
		free(l);
		return true;
	}
	/* The old list is leaked on purpose: another thread may still be walking it. */
	__atomic_store_n(slot, l, __ATOMIC_RELEASE);
	return true;
}

static bool rebuild(void)
{
	bool ok = true;
	for (int s = 0; s < N_SLOTS; s++) {
		ok &= rebuild_slot(&enter_slot[s], s, true);
		ok &= rebuild_slot(&exit_slot[s], s, false);
	}
	return ok;
}

static int install(bool single_threaded, char *err, size_t errlen)
{
	map_own_counts();
	struct syscall_handler h = {on_enter, on_exit_, NULL, hook_log, on_own};
	if (syscall_hooks_install(&h, err, errlen) < 0)
		return -1;
	struct syscall_hook_stats st;
	syscall_hooks_get_stats(&st);
	/*
	 * Syscall User Dispatch makes the kernel take its slow path on every
	 * syscall (about 45 ns here): only when asked for. Without it the sites
	 * not rewritten (the vDSO's fallbacks, JIT code) are not seen, as logged.
	 */
	const char *sud = getenv("BPFTIME_SYSCALL_SUD");
	if (!sud || strcmp(sud, "1") != 0) {
		if (st.uncovered || st.anon_exec)
			agent_log("syscall hooks: syscalls from the %u sites not rewritten and from executable memory of "
				  "no loaded object are not seen (BPFTIME_SYSCALL_SUD=1: Syscall User Dispatch covers them)",
				  st.uncovered);
	} else if (single_threaded) {
		char why[256];
		if (syscall_hooks_sud_enable(why, sizeof(why)) < 0)
			agent_log("syscall hooks: %s: syscalls from the %u sites not rewritten are not seen", why,
				  st.uncovered);
	} else if (st.uncovered) {
		agent_log("syscall hooks installed while threads run: no Syscall User Dispatch, syscalls from the %u "
			  "sites not rewritten are not seen",
			  st.uncovered);
	}
	return 0;
}

int syscall_link_attach(uint32_t link_id, const struct bpftime_link_spec *spec, struct bpftime_vm *vm,
			uint32_t *faults, bool single_threaded, char *err, size_t errlen)
{
	struct syscall_tp tp;
	if (syscall_tp_parse(spec->target, &tp, err, errlen) < 0)
		return -1;
	struct sc_link *k = calloc(1, sizeof(*k));
	if (!k) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (!syscall_hooks_installed() && install(single_threaded, err, errlen) < 0) {
		free(k);
		return -1;
	}
	k->p = (struct sc_prog){vm, {0, spec->cookie, 0}, link_id, spec->pid, faults, (uint16_t)spec->offset, k};
	k->tp = tp;
	k->prog_id = spec->prog_id;
	snprintf(k->target, sizeof(k->target), "%s", spec->target);
	struct shm_object *o = shm_object_find(agent_shm(), spec->prog_id);
	snprintf(k->prog_name, sizeof(k->prog_name), "%s", o ? o->name : "?");
	struct sc_link **pp = &links;
	while (*pp)
		pp = &(*pp)->next;
	*pp = k;
	if (!rebuild()) {
		k->gone = true;
		rebuild();
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

void syscall_link_detach(uint32_t link_id)
{
	for (struct sc_link *k = links; k; k = k->next)
		if (k->p.link_id == link_id)
			k->gone = true;
	if (!rebuild())
		agent_log("link %u: out of memory while removing it", link_id);
}

void syscall_probes_scan_new(void)
{
	if (!syscall_hooks_installed())
		return;
	char err[256];
	if (syscall_hooks_scan_new(err, sizeof(err)) < 0)
		agent_log("syscall hooks: %s", err);
}

NO_VECTORS void syscall_probes_guard(bool on)
{
	syscall_hooks_guard(on);
}
