/*
 * libbpftime-agent.so: loaded into a traced process (LD_PRELOAD by
 * `bpftime start`). It maps the segment, installs a hook for every uprobe
 * and uretprobe link whose file is mapped here, runs syscall tracepoint
 * programs (syscall_probes.c), and follows the segment:
 * a thread sleeps on the object table's generation (a futex) and syncs on
 * every change; dlopen() syncs too. Whatever goes wrong is logged and the
 * process runs on unhooked.
 */
#define _GNU_SOURCE
#include "agent.h"
#include "../base/syscall_names.h"
#include "../maps/kernel_map.h"
#include "probe_fast.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/resource.h>
#include <grp.h>
#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

struct attached {
	uint32_t link_id;
	struct probe_site *site; /* NULL: refused (logged once), or a syscall tracepoint */
	bool ret;
	bool syscall; /* a syscall tracepoint, attached (syscall_probes.c) */
	uint16_t *semaphore; /* a USDT semaphore this link added 1 to (ref_ctr_offset), taken back on detach */
	struct attached *next;
};

struct cached_vm {
	uint32_t prog_id;
	uint32_t faults;
	struct bpftime_vm *vm; /* NULL when the program was refused */
	struct cached_vm *next;
};

static struct bpftime_shm *shm;
static bool starting; /* in the constructor: the only thread, as a rule */

struct bpftime_shm *agent_shm(void)
{
	return shm;
}
static pthread_mutex_t agent_lock = PTHREAD_MUTEX_INITIALIZER;

/*
 * Whether this thread holds agent_lock. While it does, the agent's own calls
 * into its wrappers (the LLVM tier is dlopen'ed, and LLVM dlopens too, while
 * programs are loaded under the lock) must not take it again.
 */
static __thread bool holding __attribute__((tls_model("initial-exec")));

static void lock_agent(void)
{
	pthread_mutex_lock(&agent_lock);
	holding = true;
}

static void unlock_agent(void)
{
	holding = false;
	pthread_mutex_unlock(&agent_lock);
}

static struct probe_site *sites;
static struct attached *attached;
static struct cached_vm *vms;

void agent_log(const char *fmt, ...)
{
	char prefix[40], line[800];
	snprintf(prefix, sizeof(prefix), "bpftime-agent[%d]", getpid());
	va_list ap;
	va_start(ap, fmt);
	size_t n = log_format(line, sizeof(line), prefix, fmt, ap);
	va_end(ap);
	dprintf(2, "%.*s", (int)n, line);
}

static bool verbose(void)
{
	const char *v = getenv("BPFTIME_AGENT_LOG");
	return v && *v && strcmp(v, "0") != 0;
}

static struct cached_vm *vm_for(uint32_t prog_id)
{
	for (struct cached_vm *c = vms; c; c = c->next)
		if (c->prog_id == prog_id)
			return c->vm ? c : NULL;
	struct cached_vm *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->prog_id = prog_id;
	c->next = vms;
	vms = c;
	/* A probe may read the registers, never change them. */
	struct runtime_vm_opts opts = {.ctx_readonly = true};
	struct bpftime_vm *vm = runtime_program_vm(shm, prog_id, &opts);
	if (!vm) {
		agent_log("program %u refused: %s", prog_id, bpftime_last_error());
		return NULL;
	}
	c->vm = vm;
	return c;
}

static struct probe_site *site_at(uint64_t addr, const struct bpftime_link_spec *spec, const struct stat *st,
				  char *err, size_t errlen)
{
	for (struct probe_site *s = sites; s; s = s->next)
		if (s->hook->addr == addr)
			return s;
	/* The code from the file: this process's copy may hold a kernel uprobe's int3. */
	size_t len = spec->func_size > HOOK_CODE_MIN ? spec->func_size : HOOK_CODE_MIN;
	uint8_t *code = malloc(len);
	if (!code || file_code(spec->target, st->st_dev, st->st_ino, spec->offset, code, len) < 0) {
		free(code);
		snprintf(err, errlen, "%s: cannot read the code at offset 0x%llx", spec->target,
			 (unsigned long long)spec->offset);
		return NULL;
	}
	struct hook *h = hook_create(addr, spec->func_size, code, err, errlen);
	free(code);
	if (!h)
		return NULL;
	struct probe_site *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->hook = h;
	h->owner = s;
	hook_set_stub(h, bpftime_probe_entry_stub);
	s->next = sites;
	sites = s;
	return s;
}

static bool has_progs(const struct probe_list *l)
{
	return l && l->n;
}

static void publish(struct probe_site *s, struct probe_list **slot, struct probe_list *l)
{
	/* The old list is leaked on purpose: another thread may still be walking it. */
	__atomic_store_n(slot, l, __ATOMIC_RELEASE);
	/*
	 * The fast path's descriptors (probe_fast.h), old ones leaked likewise. Entry programs
	 * run there only at a site without return programs: the fast stub pushes no return.
	 */
	struct probe_fast *fast = has_progs(s->ret) ? NULL : probe_fast_build(s->entry, s->hook->addr);
	__atomic_store_n(&s->fast, fast, __ATOMIC_RELEASE);
	__atomic_store_n(&s->ret_fast, probe_fast_build(s->ret, 0), __ATOMIC_RELEASE);
	bool ret_only = !has_progs(s->entry) && has_progs(s->ret);
	hook_set_stub(s->hook, ret_only ? bpftime_probe_retonly_stub
				: !fast	 ? bpftime_probe_entry_stub
				: fast->no_ctx ? bpftime_probe_fast_noctx_stub
						 : bpftime_probe_fast_stub);
}

/*
 * A USDT semaphore: the u16 at file offset ref_ctr_offset of the probed file,
 * in its writable mapping here. 1 is added while the link is attached, as the
 * kernel does; the target's code tests it before computing a probe's arguments.
 */
static uint16_t *semaphore_up(const struct bpftime_link_spec *spec)
{
	struct stat st;
	uint64_t addr = 0;
	if (stat(spec->target, &st) == 0)
		addr = mapped_writable_address(st.st_dev, st.st_ino, spec->ref_ctr_offset);
	if (!addr) {
		agent_log("%s: the USDT semaphore at file offset 0x%llx is not in a writable mapping here; "
			  "the probe is attached but the target may skip it",
			  spec->target, (unsigned long long)spec->ref_ctr_offset);
		return NULL;
	}
	uint16_t *sem = (uint16_t *)(uintptr_t)addr;
	__atomic_fetch_add(sem, 1, __ATOMIC_RELAXED);
	return sem;
}

static void detach_one(struct attached *a)
{
	if (a->semaphore)
		__atomic_fetch_sub(a->semaphore, 1, __ATOMIC_RELAXED);
	if (a->syscall) {
		syscall_link_detach(a->link_id);
		sched_link_detach(a->link_id);
	}
	struct probe_site *s = a->site;
	if (!s)
		return;
	struct probe_list **slot = a->ret ? &s->ret : &s->entry;
	struct probe_list *l = probe_list_build(*slot, NULL, a->link_id);
	if (l)
		publish(s, slot, l);
	if (!has_progs(s->entry) && !has_progs(s->ret)) {
		char err[256];
		if (hook_unpatch(s->hook, err, sizeof(err)) < 0)
			agent_log("unhooking 0x%llx: %s", (unsigned long long)s->hook->addr, err);
	}
}

/* A link could not be hooked yet (hook_patch: HOOK_LATER): the follower syncs again soon. agent_lock. */
static bool retry_later;
static uint32_t deferred_logged;

/* Attaches one link; returns the site, or NULL when it is refused (err says why) or not mapped here. */
static struct probe_site *attach_one(uint32_t link_id, const struct bpftime_link_spec *spec,
				     bool over_kernel, bool *not_here, char *err, size_t errlen)
{
	*not_here = false;
	struct stat st;
	if (stat(spec->target, &st) < 0) {
		snprintf(err, errlen, "%s: cannot stat", spec->target);
		return NULL;
	}
	uint64_t addr = mapped_address(st.st_dev, st.st_ino, spec->offset);
	if (!addr) {
		*not_here = true;
		return NULL;
	}
	struct cached_vm *vm = vm_for(spec->prog_id);
	if (!vm) {
		snprintf(err, errlen, "program %u cannot run (see above)", spec->prog_id);
		return NULL;
	}
	struct probe_site *s = site_at(addr, spec, &st, err, errlen);
	if (!s)
		return NULL;
	bool ret = spec->type == BPFTIME_LINK_URETPROBE;
	/* At a function's entry its programs may return for it (bpf_override_return, replace links). */
	uint64_t flags = !ret && (spec->flags & BPFTIME_LINK_F_FUNC_ENTRY) ? BPFTIME_ATTACH_F_OVERRIDE : 0;
	struct probe_prog p = {vm->vm, {addr, spec->cookie, flags}, link_id, spec->pid, &vm->faults,
			       spec->type == BPFTIME_LINK_UREPLACE};
	struct probe_list **slot = ret ? &s->ret : &s->entry;
	struct probe_list *l = probe_list_build(*slot, &p, 0);
	if (!l) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	publish(s, slot, l);
	int rc = over_kernel ? hook_drop_kernel_int3(s->hook, err, errlen) : 0;
	if (rc > 0 && verbose())
		agent_log("link %u: the kernel uprobe's breakpoint at 0x%llx is removed here", link_id,
			  (unsigned long long)s->hook->addr);
	if (rc >= 0)
		rc = hook_patch(s->hook, err, errlen);
	if (rc < 0) {
		publish(s, slot, probe_list_build(l, NULL, link_id));
		if (rc == HOOK_LATER) {
			/* Not attached yet: the follower tries again (logged once). */
			*not_here = true;
			retry_later = true;
			if (deferred_logged != link_id)
				agent_log("link %u (%s+0x%llx): %s", link_id, spec->target,
					  (unsigned long long)spec->offset, err);
			deferred_logged = link_id;
		}
		return NULL;
	}
	return s;
}

static bool link_alive(uint32_t id, struct bpftime_link_spec *spec)
{
	return bpftime_link_info(shm, id, spec) == 0;
}

static bool detached; /* `bpftime detach PID` named this process: no hooks until that request is removed */

static bool detach_requested(int32_t pid)
{
	struct bpftime_object_info info;
	struct bpftime_link_spec spec;
	for (uint32_t i = 0; bpftime_object_at(shm, i, &info) >= 0; i++)
		if (info.id && info.kind == BPFTIME_OBJ_LINK && link_alive(info.id, &spec) &&
		    spec.type == BPFTIME_LINK_DETACH && spec.pid == pid)
			return true;
	return false;
}

static void sync_links_guarded(void);

static bool segment_lost; /* truncated or overwritten: never touched again */

/*
 * Before anything in the segment is read: a segment truncated or overwritten
 * under us stops every probe (their programs reach into it), said once.
 * agent_lock held.
 */
static bool segment_whole(void)
{
	if (segment_lost)
		return false;
	if (bpftime_shm_check(shm) == 0)
		return true;
	segment_lost = true;
	agent_log("%s; removing every hook, this process runs on without probes", bpftime_last_error());
	probes_suspend(true);
	for (struct attached *a = attached, *next; a; a = next) {
		next = a->next;
		detach_one(a);
		free(a);
	}
	attached = NULL;
	probes_suspend(false);
	return false;
}

/* Brings the hooks in line with the links in the segment. agent_lock held. */
static void sync_links(void)
{
	/* The agent's own work, on whichever thread: its syscalls are not traced. */
	syscall_probes_guard(true);
	sync_links_guarded();
	syscall_probes_guard(false);
}

/* A syscall tracepoint link: attached here (its program refused, or the hooks not installed: logged). */
static bool attach_syscall(uint32_t link_id, const struct bpftime_link_spec *spec)
{
	char err[512] = "";
	struct cached_vm *vm = vm_for(spec->prog_id);
	struct syscall_tp tp;
	bool sched = syscall_tp_parse(spec->target, &tp, err, sizeof(err)) == 0 && tp.kind >= SCHED_TP_EXEC;
	if (!vm)
		snprintf(err, sizeof(err), "program %u cannot run (see above)", spec->prog_id);
	else if (sched ? sched_link_attach(link_id, spec, vm->vm, &vm->faults, err, sizeof(err)) == 0
		       : syscall_link_attach(link_id, spec, vm->vm, &vm->faults, starting, err, sizeof(err)) == 0) {
		if (verbose())
			agent_log("link %u: tracepoint %s (id %llu)", link_id, spec->target,
				  (unsigned long long)spec->offset);
		return true;
	}
	agent_log("link %u (tracepoint %s): %s", link_id, spec->target, err);
	return false;
}

static void sync_links_guarded(void)
{
	if (!segment_whole())
		return;
	if (detached) {
		/* Its request gone (`bpftime attach` again): the links are followed again. */
		if (detach_requested(getpid()))
			return;
		detached = false;
		agent_log("attached again: following the segment's links");
	}
	probes_suspend(true);
	struct bpftime_link_spec spec;
	retry_later = false;
	if (detach_requested(getpid())) {
		detached = true;
		agent_log("detach requested: removing every hook");
	}
	/* Links that are gone: unhook. */
	for (struct attached **pp = &attached; *pp;) {
		struct attached *a = *pp;
		if (!detached && link_alive(a->link_id, &spec)) {
			pp = &a->next;
			continue;
		}
		detach_one(a);
		*pp = a->next;
		free(a);
	}
	if (detached) {
		probes_suspend(false);
		return;
	}
	syscall_probes_scan_new(); /* libraries loaded since (dlopen): their syscalls too */
	kernel_map_unshare_stale(shm); /* maps gone: their ranges are the segment's again */
	/* New links: hook. */
	int32_t pid = getpid();
	struct bpftime_object_info info;
	for (uint32_t i = 0; bpftime_object_at(shm, i, &info) >= 0; i++) {
		if (info.id == 0 || info.kind != BPFTIME_OBJ_LINK || !link_alive(info.id, &spec))
			continue;
		bool over_kernel = spec.type & BPFTIME_LINK_OVER_KERNEL_PROBE;
		spec.type &= ~BPFTIME_LINK_OVER_KERNEL_PROBE;
		bool tracepoint = spec.type == BPFTIME_LINK_SYSCALL_TRACEPOINT;
		if (spec.type != BPFTIME_LINK_UPROBE && spec.type != BPFTIME_LINK_URETPROBE &&
		    spec.type != BPFTIME_LINK_UREPLACE && !tracepoint)
			continue;
		if (spec.pid >= 0 && spec.pid != pid)
			continue;
		bool known = false;
		for (struct attached *a = attached; a && !known; a = a->next)
			known = a->link_id == info.id;
		if (known)
			continue;
		if (tracepoint) {
			struct attached *a = calloc(1, sizeof(*a));
			if (!a)
				break;
			*a = (struct attached){info.id, NULL, false, attach_syscall(info.id, &spec), NULL, attached};
			attached = a;
			continue;
		}
		char err[512] = "";
		bool not_here;
		struct probe_site *s = attach_one(info.id, &spec, over_kernel, &not_here, err, sizeof(err));
		if (not_here)
			continue; /* maybe a library dlopen'ed later */
		if (!s)
			agent_log("link %u (%s+0x%llx): %s", info.id, spec.target, (unsigned long long)spec.offset, err);
		else if (verbose())
			agent_log("link %u: %s %s+0x%llx at 0x%llx", info.id,
				  spec.type == BPFTIME_LINK_URETPROBE   ? "uretprobe"
				  : spec.type == BPFTIME_LINK_UREPLACE ? "replace"
								       : "uprobe",
				  spec.target,
				  (unsigned long long)spec.offset, (unsigned long long)s->hook->addr);
		struct attached *a = calloc(1, sizeof(*a));
		if (!a)
			break;
		*a = (struct attached){info.id, s, spec.type == BPFTIME_LINK_URETPROBE, false, NULL, attached};
		if (s && spec.ref_ctr_offset)
			a->semaphore = semaphore_up(&spec);
		attached = a;
	}
	probes_suspend(false);
}

#define FOLLOW_PERIOD_MS 500

static bool follower_stop;  /* asked to end (a credential change, see stop_follower) */
static bool follower_alive; /* follower_thread is joinable */
static pthread_t follower_thread;

static void *follow_segment(void *arg)
{
	(void)arg;
	probes_suspend(true); /* this thread's own malloc calls are not the target's */
	syscall_probes_guard(true); /* nor its syscalls */
	pthread_setname_np(pthread_self(), "bpftime-agent");
	/* It runs hooked code (malloc...) while the program's threads may be patching (dlopen). */
	hook_thread_signals();
	uint32_t seen = __atomic_load_n(&shm->hdr->generation, __ATOMIC_ACQUIRE);
	bool retry = false; /* a hook waits for another tool's breakpoint to go: look again soon */
	while (!__atomic_load_n(&follower_stop, __ATOMIC_ACQUIRE)) {
		/*
		 * Woken by every change, and at least twice a second: the segment may
		 * have been truncated (no change is announced then), and a loader killed
		 * before it could remove its objects leaves them to the next one that
		 * notices (the kernel would have closed its fds). The segment is checked
		 * (after the wait, first thing) before anything in it is read.
		 */
		bpftime_objects_release_dead(shm);
		shm_wait_generation(shm, seen, retry ? 100 : FOLLOW_PERIOD_MS);
		lock_agent();
		bool whole = segment_whole();
		if (whole) {
			/* Read before the sync: a change made while it runs wakes the next wait at once. */
			seen = __atomic_load_n(&shm->hdr->generation, __ATOMIC_ACQUIRE);
			sync_links();
			retry = retry_later;
		}
		unlock_agent();
		if (!whole)
			return NULL;
	}
	return NULL;
}

/* dlopen calls in progress on this thread (a library's constructor may dlopen another). */
static __thread int dlopen_depth __attribute__((tls_model("initial-exec")));

/*
 * A library loaded later may hold probed functions: dlopen syncs before it
 * returns. Not the agent's own dlopen (agent_lock is held: the sync under way
 * goes on), and not one made by a constructor while the loader runs: that
 * thread holds the loader's lock, which a thread syncing may be waiting for
 * (loading the LLVM tier); the outermost dlopen syncs for both.
 */
__attribute__((visibility("default"))) void *dlopen(const char *file, int mode)
{
	static void *(*real)(const char *, int);
	if (!real)
		real = (void *(*)(const char *, int))dlsym(RTLD_NEXT, "dlopen");
	dlopen_depth++;
	void *h = real(file, mode);
	dlopen_depth--;
	if (h && shm && !holding && dlopen_depth == 0) {
		lock_agent();
		sync_links();
		unlock_agent();
	}
	return h;
}

static void start_follower(void)
{
	/* The follower takes no signals meant for the program (only the hooks' own, see follow_segment). */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	__atomic_store_n(&follower_stop, false, __ATOMIC_RELEASE);
	probes_suspend(true); /* the agent's pthread_create is not the program's (threadsnoop) */
	follower_alive = pthread_create(&follower_thread, NULL, follow_segment, NULL) == 0;
	probes_suspend(false);
	if (!follower_alive)
		agent_log("cannot start the link follower; links added later are not seen");
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/*
 * A credential change in a process with more than one thread is made in every
 * thread (glibc signals each), and a program that expects to be alone (setpriv:
 * setresuid, then capset on its own thread only, then setresgid) aborts when
 * the follower's copy fails. So the follower ends before the first one: the
 * hooks stay, links are then followed at dlopen, and a new image (exec) has its
 * own agent and follower (the segment is inherited: BPFTIME_SHM_FD).
 */
static void stop_follower(void)
{
	static pthread_mutex_t stopping = PTHREAD_MUTEX_INITIALIZER; /* two threads changing ids at once */
	pthread_mutex_lock(&stopping);
	if (follower_alive && !pthread_equal(pthread_self(), follower_thread)) {
		__atomic_store_n(&follower_stop, true, __ATOMIC_RELEASE);
		/* Wakes it where it sleeps (a fault on a truncated segment is EFAULT here, not SIGBUS). */
		syscall(SYS_futex, &shm->hdr->generation, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
		pthread_join(follower_thread, NULL);
		follower_alive = false;
	}
	pthread_mutex_unlock(&stopping);
}

#define CRED_WRAPPER(name, params, args)                                                   \
	__attribute__((visibility("default"))) int name params                              \
	{                                                                                   \
		static int(*real) params;                                                   \
		if (!real)                                                                  \
			real = (int(*) params)dlsym(RTLD_NEXT, #name);                      \
		stop_follower();                                                            \
		return real args;                                                           \
	}
CRED_WRAPPER(setuid, (uid_t u), (u))
CRED_WRAPPER(setgid, (gid_t g), (g))
CRED_WRAPPER(seteuid, (uid_t u), (u))
CRED_WRAPPER(setegid, (gid_t g), (g))
CRED_WRAPPER(setreuid, (uid_t r, uid_t e), (r, e))
CRED_WRAPPER(setregid, (gid_t r, gid_t e), (r, e))
CRED_WRAPPER(setresuid, (uid_t r, uid_t e, uid_t s), (r, e, s))
CRED_WRAPPER(setresgid, (gid_t r, gid_t e, gid_t s), (r, e, s))
CRED_WRAPPER(setgroups, (size_t n, const gid_t *list), (n, list))

/*
 * fork() keeps the hooks but not the follower thread: the child starts its
 * own. The lock is held across fork so the child's copy of the agent's state
 * is whole; a thread that already holds it (forking while it syncs) keeps it.
 */
static __thread bool locked_for_fork __attribute__((tls_model("initial-exec")));
static void before_fork(void)
{
	if (!holding) {
		lock_agent();
		locked_for_fork = true;
	}
}
static void after_fork_parent(void)
{
	if (locked_for_fork) {
		locked_for_fork = false;
		unlock_agent();
	}
}
static void after_fork_child(void)
{
	after_fork_parent();
	sched_forked_child();
	syscall_probes_guard(true);
	start_follower();
	syscall_probes_guard(false);
}

/*
 * The segment: by name, or the descriptor an earlier image of this process
 * left open (BPFTIME_SHM_FD). After setuid the name may be closed to us (a
 * root segment is 0600) while the kernel would keep tracing: the inherited
 * descriptor keeps the segment without widening its permissions. When both
 * open, the named one is used (the same file, or a newer one).
 */
static struct bpftime_shm *open_segment(const char *name)
{
	const char *group = getenv("BPFTIME_SHM_GROUP");
	const char *fdv = getenv("BPFTIME_SHM_FD");
	struct bpftime_shm *inherited = NULL;
	char inherited_err[512] = "";
	if (fdv && *fdv) {
		char *end;
		long fd = strtol(fdv, &end, 10);
		if (!*end && fd >= 0 && fd < INT32_MAX)
			inherited = shm_open_inherited((int)fd, name, group);
		if (!inherited)
			snprintf(inherited_err, sizeof(inherited_err), "%s", bpftime_last_error());
	}
	struct bpftime_shm *named = bpftime_shm_open_as(name, 0, 0, group, -1);
	if (named) {
		if (inherited)
			bpftime_shm_close(inherited);
		return named;
	}
	if (inherited) {
		if (verbose())
			agent_log("%s; using the segment inherited as descriptor %d", bpftime_last_error(),
				  shm_fd(inherited));
		return inherited;
	}
	if (*inherited_err && verbose())
		agent_log("BPFTIME_SHM_FD: %s", inherited_err);
	return NULL;
}

/*
 * Starts the agent on segment `name`. At load (LD_PRELOAD: the only thread,
 * as a rule) the descriptor is kept across exec; when injected into a running
 * process (`bpftime attach`) other threads run: the environment is left alone
 * and the descriptor stays close-on-exec.
 */
/*
 * The segment's descriptor goes high, out of the application's way: a process under the agent
 * gets the same descriptor numbers from its opens as without it (tools print them).
 */
static void hide_segment_fd(void)
{
	struct rlimit r;
	if (getrlimit(RLIMIT_NOFILE, &r) < 0 || r.rlim_cur < 64)
		return;
	int min = (int)(r.rlim_cur < 1024 ? r.rlim_cur : 1024) - 24;
	if (shm_fd(shm) < min && shm_move_fd(shm, min) < 0 && verbose())
		agent_log("segment descriptor %d stays where it is: %s", shm_fd(shm), strerror(errno));
}

static int agent_begin(const char *name, bool at_load)
{
	helper_gate_install(); /* before any program is compiled */
	shm = open_segment(name);
	if (!shm) {
		agent_log("%s; running without probes", bpftime_last_error());
		return -1;
	}
	hide_segment_fd();
	if (at_load) {
		/* Kept across execve (and setuid before it): the next image's agent maps it. */
		char num[16];
		snprintf(num, sizeof(num), "%d", shm_fd(shm));
		if (fcntl(shm_fd(shm), F_SETFD, 0) < 0 || setenv("BPFTIME_SHM_FD", num, 1) < 0)
			agent_log("cannot keep the segment open across exec: %s", strerror(errno));
		exec_env_keep_agent(); /* descendants keep the agent whatever environment they get */
	}
	sched_probes_start(); /* the process's exit is raised from here on (attached or preloaded) */
	lock_agent();
	starting = at_load;
	sync_links();
	starting = false;
	unlock_agent();
	syscall_probes_guard(true);
	start_follower();
	syscall_probes_guard(false);
	pthread_atfork(before_fork, after_fork_parent, after_fork_child);
	if (at_load)
		sched_raise_exec(); /* a new image: the kernel's exec event, once the links are in */
	return 0;
}

/* Loaded by dlopen from `bpftime attach` (the agent is not in LD_PRELOAD, no segment named). */
static bool injected(void)
{
	const char *pre = getenv("LD_PRELOAD");
	return !getenv("BPFTIME_GLOBAL_SHM_NAME") && !getenv("BPFTIME_SHM_FD") &&
	       !(pre && strstr(pre, "libbpftime-agent"));
}

/*
 * `bpftime attach`'s injector calls this in a thread of the running process,
 * after dlopen: 0 once the agent follows segment `name`, -1 if it cannot
 * (said on stderr). Once only.
 */
__attribute__((visibility("default"))) int bpftime_agent_attach(const char *name)
{
	static int started; /* 0 not yet, 1 running, -1 failed */
	if (__atomic_exchange_n(&started, 1, __ATOMIC_ACQ_REL) == 1 || shm)
		return 0;
	if (!name || !*name)
		name = "bpftime_maps_shm";
	if (agent_begin(name, false) < 0) {
		__atomic_store_n(&started, 0, __ATOMIC_RELEASE);
		return -1;
	}
	return 0;
}

__attribute__((constructor)) static void agent_start(void)
{
	if (injected())
		return; /* bpftime_agent_attach follows */
	const char *name = getenv("BPFTIME_GLOBAL_SHM_NAME");
	if (!name || !*name)
		name = "bpftime_maps_shm";
	agent_begin(name, true);
}
