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
#include "../vm/jit.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define SHADOW_DEPTH 1024

struct shadow_entry {
	uint64_t ret;      /* the real return address */
	uint64_t entry_sp; /* sp at the function's entry (where that address sits) */
	struct probe_site *site;
};

struct shadow_stack {
	uint32_t depth;
	struct shadow_entry e[SHADOW_DEPTH];
};

static __thread int in_probe __attribute__((tls_model("initial-exec")));
static __thread struct shadow_stack *shadow __attribute__((tls_model("initial-exec")));
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

static int32_t current_pid(void)
{
	if (!my_pid)
		my_pid = getpid();
	return my_pid;
}

/* mmap, not malloc: malloc itself may be the probed function. */
static struct shadow_stack *thread_shadow(void)
{
	if (shadow)
		return shadow;
	pthread_once(&shadow_once, init_keys);
	void *p = mmap(NULL, sizeof(struct shadow_stack), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	shadow = p;
	pthread_setspecific(shadow_key, p);
	return shadow;
}

static inline __attribute__((always_inline)) void run_list(const struct probe_list *l, struct pt_regs *regs,
							    uint64_t func_ip)
{
	int32_t pid = current_pid();
	for (uint32_t i = 0; i < l->n; i++) {
		const struct probe_prog *p = &l->progs[i];
		if (p->pid >= 0 && p->pid != pid)
			continue;
		struct bpftime_attach_info info = {func_ip, p->cookie};
		uint64_t ret;
		if (__builtin_expect(vm_exec_probe(p->vm, regs, sizeof(*regs), &info, &ret) < 0, 0) &&
		    __atomic_fetch_add(p->faults, 1, __ATOMIC_RELAXED) == 0)
			agent_log("link %u: %s (logged once; the process goes on)", p->link_id, bpftime_last_error());
	}
}

void bpftime_probe_enter(struct hook *h, struct pt_regs *regs)
{
	struct probe_site *site = h->owner;
	if (in_probe)
		return; /* a probe's own code (or a signal handler inside it) called a hooked function */
	in_probe++;
	regs->ip = h->addr;
	const struct probe_list *entry = __atomic_load_n(&site->entry, __ATOMIC_ACQUIRE);
	if (entry && entry->n)
		run_list(entry, regs, h->addr);
	const struct probe_list *ret = __atomic_load_n(&site->ret, __ATOMIC_ACQUIRE);
	if (ret && ret->n) {
		struct shadow_stack *s = thread_shadow();
		/* Too deep (or no memory): this call simply goes without its return probe. */
		if (s && s->depth < SHADOW_DEPTH) {
			uint64_t *slot = (uint64_t *)regs->sp;
			s->e[s->depth++] = (struct shadow_entry){*slot, regs->sp, site};
			*slot = (uint64_t)bpftime_probe_return_stub;
		}
	}
	in_probe--;
}

void bpftime_probe_push_return(struct hook *h, uint64_t *slot)
{
	if (in_probe)
		return;
	struct shadow_stack *s = thread_shadow();
	if (s && s->depth < SHADOW_DEPTH) {
		s->e[s->depth++] = (struct shadow_entry){*slot, (uint64_t)slot, h->owner};
		*slot = (uint64_t)bpftime_probe_return_stub;
	}
}

uint64_t bpftime_probe_return(struct pt_regs *regs)
{
	struct shadow_stack *s = shadow;
	/* The function returned: its entry sp was 8 below ours. Frames skipped by longjmp are deeper. */
	uint64_t entry_sp = regs->sp - 8;
	while (s->depth > 1 && s->e[s->depth - 1].entry_sp < entry_sp)
		s->depth--;
	struct shadow_entry e = s->e[--s->depth];
	if (!in_probe) {
		in_probe++;
		regs->ip = e.ret;
		const struct probe_list *ret = __atomic_load_n(&e.site->ret, __ATOMIC_ACQUIRE);
		if (ret)
			run_list(ret, regs, e.site->hook->addr);
		in_probe--;
	}
	return e.ret;
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
	return l;
}
