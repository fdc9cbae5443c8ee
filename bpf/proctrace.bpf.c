// SPDX-License-Identifier: MIT
/*
 * Process exec and exit events (the libbpf-bootstrap tracer's idea, with hybrid buffering):
 * sched_process_exec sends pid, ppid, comm and argv; sched_process_exit sends the exit code
 * and how long the process ran. argv goes into per-CPU pages of an mmapable array, the ring
 * buffer carries fixed-size records pointing at them (layout and limits: proctrace.h).
 * CO-RE: every kernel structure is read with BPF_CORE_READ, relocated against the running
 * kernel's BTF at load time.
 */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>

#include "proctrace.h"

/* Set by the loader before load (.rodata). 0 / "" trace everything. */
const volatile __u64 min_duration_ns = 0;   /* exits of shorter processes are dropped */
const volatile __s32 target_pid = 0;        /* only this process and its descendants */
const volatile char target_comm[16] = {};   /* only processes with this comm */

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1024 * 1024);
} events SEC(".maps");

/* The page pools: CPU c owns elements [c * PROCTRACE_PAGES_PER_CPU, (c + 1) * ...). */
struct data_page {
	struct proctrace_page_header hdr;
	char data[PROCTRACE_PAGE_DATA];
};
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, PROCTRACE_DEFAULT_CPUS * PROCTRACE_PAGES_PER_CPU);
	__type(key, __u32);
	__type(value, struct data_page);
} data_pages SEC(".maps");

/* Each CPU's pool cursor: pages handed out so far (the next page's sequence number - 1). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} pool_cursor SEC(".maps");

/* Records the ring buffer had no room for (the consumer fell behind). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} dropped SEC(".maps");

static __always_inline struct proctrace_event *reserve_event(void)
{
	struct proctrace_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		__u32 zero = 0;
		__u64 *count = bpf_map_lookup_elem(&dropped, &zero);
		if (count)
			__sync_fetch_and_add(count, 1);
	}
	return e;
}

/*
 * Submitting without waking the consumer: it reads every PROCTRACE_POLL_MS anyway, so a
 * trickle of events costs it ~100 wakeups a second, not one per event; once a burst leaves
 * PROCTRACE_WAKEUP_BYTES unread, it is woken at once.
 */
static __always_inline void submit_event(struct proctrace_event *e)
{
	__u64 flags = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= PROCTRACE_WAKEUP_BYTES ? BPF_RB_FORCE_WAKEUP
												 : BPF_RB_NO_WAKEUP;
	bpf_ringbuf_submit(e, flags);
}

/* Exec time by pid, for the exit's duration. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __s32);
	__type(value, __u64);
} exec_start SEC(".maps");

static __always_inline bool comm_matches(const char *comm)
{
	if (!target_comm[0])
		return true;
	for (int i = 0; i < 16; i++) {
		if (comm[i] != target_comm[i])
			return false;
		if (!comm[i])
			return true;
	}
	return true;
}

/* Is `task` target_pid or one of its descendants (up to PROCTRACE_TREE_DEPTH generations)? */
static __always_inline bool in_target_tree(struct task_struct *task)
{
	for (int i = 0; i < PROCTRACE_TREE_DEPTH; i++) {
		int tgid = BPF_CORE_READ(task, tgid);
		if (tgid == target_pid)
			return true;
		if (tgid <= 1)
			return false;
		task = BPF_CORE_READ(task, real_parent);
		if (!task)
			return false;
	}
	return false;
}

static __always_inline bool selected(struct task_struct *task, const char *comm)
{
	if (target_pid && !in_target_tree(task))
		return false;
	return comm_matches(comm);
}

/*
 * Copies argv [start, start + len) into `npages` pages of this CPU's pool, reserved by one
 * atomic add on its cursor. A page's header is cleared before its bytes are written and given
 * its sequence number after, so a reader that sees the same number before and after copying
 * got one writer's bytes.
 */
/* An event of `type` for the current process if the filters select it: reserved, header filled. */
static __always_inline struct proctrace_event *begin_event(struct task_struct *task, unsigned int type,
							   int pid, __u64 now)
{
	int ppid = BPF_CORE_READ(task, real_parent, tgid);
	char comm[16];
	bpf_get_current_comm(comm, sizeof(comm));
	if (!selected(task, comm))
		return NULL;

	struct proctrace_event *e = reserve_event();
	if (!e)
		return NULL;
	__builtin_memset(e, 0, sizeof(*e));
	e->type = type;
	e->pid = pid;
	e->ppid = ppid;
	e->ts_ns = now;
	__builtin_memcpy(e->comm, comm, sizeof(comm));
	return e;
}

static __always_inline void copy_argv(struct proctrace_event *e, unsigned long start, __u32 len)
{
	__u32 zero = 0;
	__u32 cpu = bpf_get_smp_processor_id();
	__u32 *cursor = bpf_map_lookup_elem(&pool_cursor, &zero);
	if (!cursor) {
		e->flags |= PROCTRACE_F_ARGV_FAULT;
		return;
	}
	__u32 npages = (len + PROCTRACE_PAGE_DATA - 1) / PROCTRACE_PAGE_DATA;
	__u32 first = __sync_fetch_and_add(cursor, npages) + 1;
	e->cpu = cpu;
	e->first_seq = first;
	e->npages = npages;
	e->argv_len = len;
	for (__u32 i = 0; i < PROCTRACE_ARGV_PAGES; i++) {
		if (i >= npages)
			break;
		__u32 seq = first + i;
		__u32 index = cpu * PROCTRACE_PAGES_PER_CPU + seq % PROCTRACE_PAGES_PER_CPU;
		struct data_page *p = bpf_map_lookup_elem(&data_pages, &index);
		if (!p) {
			e->flags |= PROCTRACE_F_ARGV_FAULT;
			return;
		}
		__u32 n = len - i * PROCTRACE_PAGE_DATA;
		if (n > PROCTRACE_PAGE_DATA)
			n = PROCTRACE_PAGE_DATA;
		p->hdr.seq = 0;
		if (bpf_probe_read_user(p->data, n, (const void *)(start + i * PROCTRACE_PAGE_DATA)) < 0) {
			e->flags |= PROCTRACE_F_ARGV_FAULT;
			p->hdr.used = 0;
		} else {
			p->hdr.used = n;
		}
		p->hdr.seq = seq;
	}
}

SEC("tp/sched/sched_process_exec")
int handle_exec(void *ctx)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	int pid = bpf_get_current_pid_tgid() >> 32;
	__u64 now = bpf_ktime_get_boot_ns();
	bpf_map_update_elem(&exec_start, &pid, &now, BPF_ANY);

	struct proctrace_event *e = begin_event(task, PROCTRACE_EXEC, pid, now);
	if (!e)
		return 0;

	unsigned long arg_start = BPF_CORE_READ(task, mm, arg_start);
	unsigned long arg_end = BPF_CORE_READ(task, mm, arg_end);
	if (arg_end > arg_start) {
		unsigned long len = arg_end - arg_start;
		if (len > PROCTRACE_ARGV_MAX) {
			len = PROCTRACE_ARGV_MAX;
			e->flags |= PROCTRACE_F_ARGV_TRUNCATED;
		}
		copy_argv(e, arg_start, (__u32)len);
	}
	submit_event(e);
	return 0;
}

SEC("tp/sched/sched_process_exit")
int handle_exit(void *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	int pid = id >> 32;
	if (pid != (int)(__u32)id)
		return 0; /* a thread other than the leader: the process goes on */

	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	__u64 now = bpf_ktime_get_boot_ns();
	__u64 *start = bpf_map_lookup_elem(&exec_start, &pid);
	__u64 duration;
	if (start) {
		duration = now - *start;
		bpf_map_delete_elem(&exec_start, &pid);
	} else {
		/* Never exec'd while we watched: from fork (start_boottime is boot-based too). */
		duration = now - BPF_CORE_READ(task, start_boottime);
	}
	if (duration < min_duration_ns)
		return 0;

	struct proctrace_event *e = begin_event(task, PROCTRACE_EXIT, pid, now);
	if (!e)
		return 0;
	e->duration_ns = duration;
	int code = BPF_CORE_READ(task, exit_code);
	e->exit_code = (code >> 8) & 0xff;
	e->exit_signal = code & 0x7f;
	submit_event(e);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
