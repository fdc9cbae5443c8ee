/*
 * What runs when a hooked function is called: the entry programs (uprobes),
 * and, when the hook also has return programs (uretprobes), a swap of the
 * return address for bpftime_probe_return_stub, with the real one kept on a
 * per-thread shadow stack. Program lists are published with one atomic
 * pointer store and never freed while the process lives (a thread may still
 * be reading an old one).
 */
#define _GNU_SOURCE
#include "agent.h"
#include "../vm/vm_runtime.h"
#include "probe_exec.h"
#include "probe_state.h"
#include "../helpers/helpers.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

__thread int in_probe __attribute__((tls_model("initial-exec")));
__thread struct shadow_stack *shadow __attribute__((tls_model("initial-exec")));
static pthread_key_t shadow_key;
static pthread_once_t shadow_once = PTHREAD_ONCE_INIT;
static int32_t my_pid;

static void free_shadow(void *p)
{
	munmap(p, sizeof(struct shadow_stack));
}
static void forget_pid(void)
{
	my_pid = 0;
}
static void init_keys(void)
{
	pthread_key_create(&shadow_key, free_shadow);
	pthread_atfork(NULL, NULL, forget_pid);
}

/*
 * Everything below that runs during a probe hit is NO_VECTORS (no vector
 * register touched), so the stubs need not save any; what may touch them
 * (helpers, libc, logging, the first use of a thread's shadow stack) runs
 * inside bpftime_vectors_saved_call.
 */
static NO_VECTORS int32_t current_pid(void)
{
	if (!my_pid)
		my_pid = (int32_t)syscall(SYS_getpid);
	return my_pid;
}

/* mmap, not malloc: malloc itself may be the probed function. */
static uint64_t new_shadow(void *unused)
{
	(void)unused;
	pthread_once(&shadow_once, init_keys);
	void *p = mmap(NULL, sizeof(struct shadow_stack), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return 0;
	pthread_setspecific(shadow_key, p);
	return (uint64_t)(uintptr_t)p;
}

static NO_VECTORS struct shadow_stack *thread_shadow(void)
{
	if (__builtin_expect(!shadow, 0))
		shadow = (struct shadow_stack *)(uintptr_t)bpftime_vectors_saved_call(new_shadow, NULL);
	return shadow;
}

struct fault_log {
	uint32_t link_id;
};

static uint64_t log_fault(void *arg)
{
	agent_log("link %u: %s (logged once; the process goes on)", ((struct fault_log *)arg)->link_id,
		  bpftime_last_error());
	return 0;
}

NO_VECTORS void probe_note_fault(const struct probe_prog *p)
{
	if (__atomic_fetch_add(p->faults, 1, __ATOMIC_RELAXED) == 0) {
		struct fault_log f = {p->link_id};
		bpftime_vectors_saved_call(log_fault, &f);
	}
}

struct list_run {
	const struct probe_list *l;
	struct pt_regs *regs;
};

static inline __attribute__((always_inline)) NO_VECTORS uint64_t run_progs(void *arg)
{
	const struct list_run *r = arg;
	const struct probe_list *l = r->l;
	int32_t pid = l->any_pid ? current_pid() : -1;
	for (uint32_t i = 0; i < l->n; i++) {
		const struct probe_prog *p = &l->progs[i];
		if (__builtin_expect(p->pid >= 0, 0) && p->pid != pid)
			continue;
		uint64_t ret;
		if (__builtin_expect(vm_exec_probe(p->vm, r->regs, sizeof(*r->regs), &p->info, &ret) < 0, 0))
			probe_note_fault(p);
		else if (__builtin_expect(p->replace, 0)) {
			override_request.value = ret;
			override_request.requested = true;
		}
	}
	return 0;
}

/*
 * Programs that never reach C or libc run directly; the others with the vector registers saved.
 * The syscalls their helpers make are the agent's own: syscall tracepoints do not see them.
 */
static inline __attribute__((always_inline)) NO_VECTORS void run_list(const struct probe_list *l,
									struct pt_regs *regs)
{
	struct list_run r = {l, regs};
	if (l->vector_clean) {
		run_progs(&r);
	} else {
		syscall_probes_guard(true);
		bpftime_vectors_saved_call(run_progs, &r);
		syscall_probes_guard(false);
	}
}

/* Swaps the return address at `slot` for the return stub, keeping it on this thread's shadow stack. */
static inline __attribute__((always_inline)) NO_VECTORS void push_return(struct probe_site *site, uint64_t *slot)
{
	struct shadow_stack *s = thread_shadow();
	/* Too deep (or no memory): this call simply goes without its return probe. */
	if (!s || s->depth >= SHADOW_DEPTH)
		return;
	struct shadow_entry *e = &s->e[s->depth++];
	e->ret = *slot;
	e->entry_sp = (uint64_t)slot;
	e->site = site;
	*slot = (uint64_t)bpftime_probe_return_stub;
}

NO_VECTORS uint64_t bpftime_probe_enter(struct hook *h, struct pt_regs *regs)
{
	struct probe_site *site = h->owner;
	if (in_probe)
		return 0; /* a probe's own code (or a signal handler inside it) called a hooked function */
	in_probe++;
	regs->ip = h->addr;
	const struct probe_list *entry = __atomic_load_n(&site->entry, __ATOMIC_ACQUIRE);
	if (entry && entry->n) {
		override_request.requested = false;
		run_list(entry, regs);
		if (__builtin_expect(override_request.requested, 0)) {
			/*
			 * A program returned for the function (only possible at its entry:
			 * the return address on top of the stack): the stub returns to the
			 * caller with this in rax. Its return probes do not run; it never ran.
			 */
			regs->ax = override_request.value;
			in_probe--;
			return 1;
		}
	}
	const struct probe_list *ret = __atomic_load_n(&site->ret, __ATOMIC_ACQUIRE);
	if (ret && ret->n)
		push_return(site, (uint64_t *)regs->sp);
	in_probe--;
	return 0;
}

NO_VECTORS void bpftime_probe_push_return(struct hook *h, uint64_t *slot)
{
	if (!in_probe)
		push_return(h->owner, slot);
}

static inline __attribute__((always_inline)) NO_VECTORS void run_return(struct probe_site *site,
									 struct pt_regs *regs)
{
	if (!in_probe) {
		in_probe++;
		const struct probe_list *ret = __atomic_load_n(&site->ret, __ATOMIC_ACQUIRE);
		if (ret)
			run_list(ret, regs);
		in_probe--;
	}
}

NO_VECTORS void bpftime_probe_return_run(struct probe_site *site, struct pt_regs *regs)
{
	run_return(site, regs);
}

NO_VECTORS uint64_t bpftime_probe_return(struct pt_regs *regs)
{
	struct shadow_stack *s = shadow;
	/* The function returned: its entry sp was 8 below ours. Frames skipped by longjmp are deeper. */
	uint64_t entry_sp = regs->sp - 8;
	while (s->depth > 1 && s->e[s->depth - 1].entry_sp < entry_sp)
		s->depth--;
	s->depth--;
	uint64_t real = s->e[s->depth].ret;
	regs->ip = real;
	run_return(s->e[s->depth].site, regs);
	return real;
}

void probes_suspend(bool on)
{
	in_probe += on ? 1 : -1;
}

struct probe_list *probe_list_build(const struct probe_list *old, const struct probe_prog *add,
				    uint32_t remove_link)
{
	uint32_t n = old ? old->n : 0;
	struct probe_list *l = calloc(1, sizeof(*l) + (n + 1) * sizeof(struct probe_prog));
	if (!l)
		return NULL;
	for (uint32_t i = 0; i < n; i++)
		if (old->progs[i].link_id != remove_link)
			l->progs[l->n++] = old->progs[i];
	if (add)
		l->progs[l->n++] = *add;
	l->vector_clean = true;
	for (uint32_t i = 0; i < l->n; i++) {
		l->vector_clean &= vm_vector_clean(l->progs[i].vm);
		l->any_pid |= l->progs[i].pid >= 0;
	}
	return l;
}
