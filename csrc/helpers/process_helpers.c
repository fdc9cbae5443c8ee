/*
 * Helpers about the process the program runs in (pid, uid, comm, CPU),
 * time, random numbers, and reading or writing its memory safely.
 */
#define _GNU_SOURCE
#include "helpers.h"
#include "synthetic_task.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

/*
 * bpf_get_current_pid_tgid's ids, cached per thread: tgid << 32 | tid, valid only while the
 * process's tgid word, on a page the kernel wipes in a forked child (MADV_WIPEONFORK), holds
 * the same tgid. Any fork (glibc's, a raw syscall, clone without CLONE_VM) leaves the child's
 * word 0 and every cached value stale; a new thread starts with its cache 0. The JIT reads the
 * same two words inline (pid_tgid_layout). A vfork child shares the parent's memory and would
 * see the parent's ids: where the agent hooks system calls, the return of clone, fork, vfork
 * and clone3 forgets this thread's ids in the child and again in the parent (pid_tgid_forget).
 */
static __thread uint64_t cached_pid_tgid __attribute__((tls_model("initial-exec")));
static uint32_t *tgid_word; /* NULL: no such page could be made; no caching then */
static pthread_once_t tgid_word_once = PTHREAD_ONCE_INIT;

static void make_tgid_word(void)
{
	void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return;
	if (madvise(p, 4096, MADV_WIPEONFORK) != 0) {
		munmap(p, 4096);
		return;
	}
	tgid_word = p;
}

static uint64_t get_current_pid_tgid(uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5)
{
	(void)a1, (void)a2, (void)a3, (void)a4, (void)a5;
	uint32_t *word = __atomic_load_n(&tgid_word, __ATOMIC_ACQUIRE);
	uint64_t ids = cached_pid_tgid;
	if (!word || !ids || (uint32_t)(ids >> 32) != __atomic_load_n(word, __ATOMIC_RELAXED)) {
		uint32_t tgid = (uint32_t)getpid(), tid = (uint32_t)gettid();
		ids = (uint64_t)tgid << 32 | tid;
		if (word) {
			__atomic_store_n(word, tgid, __ATOMIC_RELAXED);
			cached_pid_tgid = ids;
		}
	}
	if (unlikely(synthetic_task_leader_mode))
		return ids >> 32 << 32 | ids >> 32;
	return ids;
}

NO_VECTORS void pid_tgid_forget(void)
{
	cached_pid_tgid = 0;
}

bool pid_tgid_layout(struct vm_pid_tgid_inline *out)
{
	pthread_once(&tgid_word_once, make_tgid_word);
	if (!tgid_word)
		return false;
	uintptr_t tp = (uintptr_t)__builtin_thread_pointer();
	*out = (struct vm_pid_tgid_inline){
		.fn = get_current_pid_tgid,
		.cache_tls_off = (int64_t)((uintptr_t)&cached_pid_tgid - tp),
		.leader_tls_off = (int64_t)((uintptr_t)&synthetic_task_leader_mode - tp),
		.tgid_word = (uintptr_t)tgid_word,
	};
	return true;
}

static uint64_t get_current_uid_gid(uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5)
{
	(void)a1, (void)a2, (void)a3, (void)a4, (void)a5;
	return (uint64_t)getgid() << 32 | getuid();
}

static uint64_t get_current_comm(uint64_t buf, uint64_t size, uint64_t a3, uint64_t a4, uint64_t a5)
{
	(void)a3, (void)a4, (void)a5;
	if (size == 0 || !run_write_ok(buf, size))
		return (uint64_t)-EINVAL;
	char comm[17] = "";
	if (unlikely(synthetic_task_leader_mode))
		synthetic_task_leader_comm(comm);
	else
		prctl(PR_GET_NAME, comm);
	size_t n = strnlen(comm, 16);
	if (n >= size)
		n = size - 1;
	memcpy((void *)(uintptr_t)buf, comm, n);
	memset((char *)(uintptr_t)buf + n, 0, size - n);
	return 0;
}

static uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

#define NO_ARGS_HELPER(name, expr)                                                                 \
	static uint64_t name(uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5)       \
	{                                                                                          \
		(void)a1, (void)a2, (void)a3, (void)a4, (void)a5;                                  \
		return (expr);                                                                     \
	}

NO_ARGS_HELPER(ktime_get_ns, clock_ns(CLOCK_MONOTONIC))
NO_ARGS_HELPER(ktime_get_boot_ns, clock_ns(CLOCK_BOOTTIME))
NO_ARGS_HELPER(ktime_get_coarse_ns, clock_ns(CLOCK_MONOTONIC_COARSE))
/* jiffies at CONFIG_HZ=250 (Debian's kernels), derived from the monotonic clock. */
NO_ARGS_HELPER(jiffies64, clock_ns(CLOCK_MONOTONIC) / 4000000ull)
NO_ARGS_HELPER(get_smp_processor_id, (uint64_t)current_cpu())

static __thread uint64_t prandom_state __attribute__((tls_model("initial-exec")));

static uint64_t get_prandom_u32(uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5)
{
	(void)a1, (void)a2, (void)a3, (void)a4, (void)a5;
	uint64_t x = prandom_state;
	if (!x)
		x = clock_ns(CLOCK_MONOTONIC) ^ ((uint64_t)gettid() << 32) ^ 0x9e3779b97f4a7c15ull;
	x ^= x << 13; /* xorshift64 */
	x ^= x >> 7;
	x ^= x << 17;
	prandom_state = x;
	return (uint32_t)(x >> 16);
}

/* Whether the program may write [dst, dst + size): the usual destination, the running frame,
 * checked here (run_write_ok's first case), then the rest. */
static inline bool dst_writable(uint64_t dst, uint64_t size)
{
	const struct jit_ctx *r = current_run;
	bool in_frame = r && dst - r->frame_lo < r->stack_top - r->frame_lo && size <= r->stack_top - dst;
	return likely(in_frame) || run_write_ok(dst, size);
}

/* bpf_probe_read{,_user,_kernel}(dst, size, src): -EFAULT and a zeroed dst on a bad src. */
static uint64_t probe_read(uint64_t dst, uint64_t size, uint64_t src, uint64_t a4, uint64_t a5)
{
	(void)a4, (void)a5;
	if (!dst_writable(dst, size))
		return (uint64_t)-EFAULT;
	return (uint64_t)(int64_t)safe_read((void *)(uintptr_t)dst, src, size);
}

static uint64_t probe_read_str(uint64_t dst, uint64_t size, uint64_t src, uint64_t a4, uint64_t a5)
{
	(void)a4, (void)a5;
	if (size == 0 || !dst_writable(dst, size))
		return (uint64_t)-EFAULT;
	return (uint64_t)(int64_t)safe_read_str((char *)(uintptr_t)dst, src, size);
}

/*
 * bpf_probe_read_kernel{,_str}: "kernel" memory here is what a kernel program's pointers reach:
 * the synthetic task objects of this thread, and the memory the program itself may touch (its
 * stack, context, map values), which lives in the kernel there. Anything else, the process's own
 * memory included, is -EFAULT with dst zeroed, as the kernel refuses user addresses.
 */
static bool kernel_memory(uint64_t src, uint64_t size)
{
	return synthetic_task_holds(src, size) || run_access_ok(src, size);
}

static uint64_t probe_read_kernel(uint64_t dst, uint64_t size, uint64_t src, uint64_t a4, uint64_t a5)
{
	(void)a4, (void)a5;
	if (!run_write_ok(dst, size))
		return (uint64_t)-EFAULT;
	if (!kernel_memory(src, size)) {
		memset((void *)(uintptr_t)dst, 0, size);
		return (uint64_t)-EFAULT;
	}
	memmove((void *)(uintptr_t)dst, (const void *)(uintptr_t)src, size);
	return 0;
}

static uint64_t probe_read_kernel_str(uint64_t dst, uint64_t size, uint64_t src, uint64_t a4, uint64_t a5)
{
	(void)a4, (void)a5;
	if (size == 0 || !run_write_ok(dst, size))
		return (uint64_t)-EFAULT;
	if (!kernel_memory(src, 1)) {
		memset((void *)(uintptr_t)dst, 0, size);
		return (uint64_t)-EFAULT;
	}
	/* The readable extent from src (each area is contiguous: the longest prefix), at most size - 1. */
	uint64_t lo = 1, hi = size - 1;
	if (hi && kernel_memory(src, hi))
		lo = hi;
	while (lo < hi) {
		uint64_t mid = lo + (hi - lo + 1) / 2;
		if (kernel_memory(src, mid))
			lo = mid;
		else
			hi = mid - 1;
	}
	uint64_t n = strnlen((const char *)(uintptr_t)src, size > 1 ? lo : 0);
	memmove((void *)(uintptr_t)dst, (const void *)(uintptr_t)src, n);
	((char *)(uintptr_t)dst)[n] = 0;
	return n + 1;
}

/* bpf_get_current_task and bpf_get_current_task_btf: this thread's synthetic task (0 without one). */
static uint64_t get_current_task(uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5)
{
	(void)a1, (void)a2, (void)a3, (void)a4, (void)a5;
	return (uint64_t)(uintptr_t)synthetic_task_current();
}

static uint64_t probe_write_user(uint64_t dst, uint64_t src, uint64_t len, uint64_t a4, uint64_t a5)
{
	(void)a4, (void)a5;
	if (!run_access_ok(src, len))
		return (uint64_t)-EFAULT;
	return (uint64_t)(int64_t)safe_write(dst, (const void *)(uintptr_t)src, len);
}

/* bpf_strncmp(s1, s1_sz, s2): s1 is program memory, s2 a NUL-terminated string. */
static uint64_t bpf_strncmp(uint64_t s1, uint64_t s1_sz, uint64_t s2, uint64_t a4, uint64_t a5)
{
	(void)a4, (void)a5;
	if (!run_access_ok(s1, s1_sz))
		return (uint64_t)-EINVAL;
	char other[512];
	if (s1_sz > sizeof(other) || safe_read_str(other, s2, sizeof(other)) < 0)
		return (uint64_t)-EINVAL;
	const unsigned char *a = (const unsigned char *)(uintptr_t)s1, *b = (unsigned char *)other;
	for (uint64_t i = 0; i < s1_sz; i++) {
		if (a[i] != b[i])
			return (uint64_t)(int64_t)(a[i] < b[i] ? -1 : 1);
		if (!a[i])
			return 0;
	}
	return b[s1_sz < sizeof(other) ? s1_sz : 0] ? (uint64_t)-1 : 0;
}

/* bpf_loop(nr_loops, callback, ctx, flags): callback(i, ctx) until it returns 1. */
static uint64_t bpf_loop(uint64_t nr, uint64_t callback, uint64_t ctx, uint64_t flags, uint64_t a5)
{
	(void)a5;
	const struct jit_ctx *run = current_run;
	if (!run || flags || callback == 0 || callback > UINT32_MAX)
		return (uint64_t)-EINVAL;
	if (nr > (1u << 23)) /* BPF_MAX_LOOPS */
		return (uint64_t)-E2BIG;
	for (uint64_t i = 0; i < nr; i++) {
		uint64_t args[5] = {i, ctx, 0, 0, 0}, r0;
		if (vm_run_callback(run->vm, (uint32_t)(callback - 1), args, &r0) < 0)
			return (uint64_t)-EINVAL;
		if (r0)
			return i + 1;
	}
	return nr;
}

/* bpf_get_func_ip and bpf_get_attach_cookie: 0 outside an attached probe, like the kernel. */
/* These three are vector safe (vector_safe_helpers): compiled code calls them having saved none. */
static NO_VECTORS uint64_t get_func_ip(uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5)
{
	(void)a1, (void)a2, (void)a3, (void)a4, (void)a5;
	const struct jit_ctx *r = current_run;
	return r && r->attach ? r->attach->func_ip : 0;
}

static NO_VECTORS uint64_t get_attach_cookie(uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5)
{
	(void)a1, (void)a2, (void)a3, (void)a4, (void)a5;
	const struct jit_ctx *r = current_run;
	return r && r->attach ? r->attach->cookie : 0;
}

/*
 * bpf_override_return(ctx, value): the probed function returns `value` without
 * running (the kernel's error injection). Only a uprobe at a function's entry
 * can (BPFTIME_ATTACH_F_OVERRIDE): the request is this thread's, acted on by
 * the agent after the probe's programs; elsewhere -EINVAL and nothing changes.
 */
__thread struct override_request override_request __attribute__((tls_model("initial-exec")));

static NO_VECTORS uint64_t override_return(uint64_t ctx, uint64_t value, uint64_t a3, uint64_t a4, uint64_t a5)
{
	(void)a3, (void)a4, (void)a5;
	const struct jit_ctx *r = current_run;
	if (!r || !r->attach || !(r->attach->flags & BPFTIME_ATTACH_F_OVERRIDE) || ctx != r->mem_lo)
		return (uint64_t)-EINVAL;
	override_request.value = value;
	override_request.requested = true;
	return 0;
}

const uint32_t vector_safe_helpers[] = {58, 173, 174, 0};

const struct helper_def process_helpers[] = {
	{58, "bpf_override_return", override_return},
	{173, "bpf_get_func_ip", get_func_ip},
	{174, "bpf_get_attach_cookie", get_attach_cookie},
	{181, "bpf_loop", bpf_loop},
	{4, "bpf_probe_read", probe_read},
	{5, "bpf_ktime_get_ns", ktime_get_ns},
	{7, "bpf_get_prandom_u32", get_prandom_u32},
	{8, "bpf_get_smp_processor_id", get_smp_processor_id},
	{14, "bpf_get_current_pid_tgid", get_current_pid_tgid},
	{15, "bpf_get_current_uid_gid", get_current_uid_gid},
	{16, "bpf_get_current_comm", get_current_comm},
	{36, "bpf_probe_write_user", probe_write_user},
	{45, "bpf_probe_read_str", probe_read_str},
	{112, "bpf_probe_read_user", probe_read},
	{113, "bpf_probe_read_kernel", probe_read_kernel},
	{114, "bpf_probe_read_user_str", probe_read_str},
	{115, "bpf_probe_read_kernel_str", probe_read_kernel_str},
	{35, "bpf_get_current_task", get_current_task},
	{158, "bpf_get_current_task_btf", get_current_task},
	{118, "bpf_jiffies64", jiffies64},
	{125, "bpf_ktime_get_boot_ns", ktime_get_boot_ns},
	{160, "bpf_ktime_get_coarse_ns", ktime_get_coarse_ns},
	{182, "bpf_strncmp", bpf_strncmp},
	{0, NULL, NULL},
};
