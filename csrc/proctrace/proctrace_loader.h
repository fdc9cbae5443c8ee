/*
 * The process tracer's kernel-mode loader (build/libbpftime-proctrace.so, Debian's libbpf):
 * opens bpf/proctrace.bpf.o, sets its .rodata filters, loads it (CO-RE against the kernel's
 * BTF), attaches it to sched/sched_process_exec and sched/sched_process_exit, and turns its
 * ring buffer records and data pages into column batches in memory the caller provides.
 *
 * A batch is one block laid out by proctrace_batch_layout: a header (struct
 * proctrace_batch_header), then one column per field, then a string arena holding comm and
 * argv (NUL-separated, as the process has it). A thread of the tracer fills batches; the caller
 * takes filled ones with proctrace_next_batch (which sleeps on a condition variable, a futex,
 * until one is ready) and gives them back with proctrace_release_batch. The pool is the
 * caller's few blocks, reused for the tracer's whole life.
 */
#ifndef PROCTRACE_LOADER_H
#define PROCTRACE_LOADER_H

#include <stdint.h>

#define PROCTRACE_API __attribute__((visibility("default")))

struct proctrace_options {
	const char *object_path; /* build/bpf/proctrace.bpf.o */
	const char *btf_path;    /* NULL: /sys/kernel/btf/vmlinux */
	const char *tracefs;     /* NULL: /sys/kernel/tracing (mounted when missing and we may) */
	uint64_t min_duration_ns;
	int32_t target_pid;
	char target_comm[16];
};

struct proctrace_batch_header {
	uint32_t count;      /* events in the batch */
	uint32_t capacity;   /* events it can hold */
	uint32_t arena_size; /* bytes of string arena */
	uint32_t arena_used;
	uint64_t sequence;   /* batches filled before this one */
	int64_t wall_offset_ns; /* CLOCK_REALTIME - CLOCK_BOOTTIME when the batch began */
	uint64_t reserved[4];
};

/* Columns, in this order in proctrace_batch_layout's offsets (ffi/proctrace.ts names them). */
enum proctrace_column {
	PROCTRACE_COL_TS_NS,       /* u64: wall clock (CLOCK_REALTIME) ns */
	PROCTRACE_COL_DURATION_NS, /* u64: exit only */
	PROCTRACE_COL_PID,         /* i32 */
	PROCTRACE_COL_PPID,        /* i32 */
	PROCTRACE_COL_EXIT_CODE,   /* i32: exit only */
	PROCTRACE_COL_EXIT_SIGNAL, /* i32: exit only */
	PROCTRACE_COL_ARGC,        /* u32: exec only */
	PROCTRACE_COL_FLAGS,       /* u32: PROCTRACE_F_* of bpf/proctrace.h, PROCTRACE_F_ARGV_LOST */
	PROCTRACE_COL_COMM_OFF,    /* u32: arena offset */
	PROCTRACE_COL_COMM_LEN,    /* u32 */
	PROCTRACE_COL_ARGV_OFF,    /* u32: arena offset */
	PROCTRACE_COL_ARGV_LEN,    /* u32 */
	PROCTRACE_COL_EVENT_TYPE,  /* u8: PROCTRACE_EXEC / PROCTRACE_EXIT */
	PROCTRACE_COL_ARENA,       /* u8[arena_size] */
	PROCTRACE_COLUMNS
};

/* The pages had been rewritten before they were read: argv is missing (counted as lost). */
#define PROCTRACE_F_ARGV_LOST 4

struct proctrace_stats {
	uint64_t events;      /* delivered into batches */
	uint64_t dropped;     /* records the ring buffer had no room for */
	uint64_t argv_lost;   /* exec events whose argv pages were lapped or unreadable */
	uint64_t batches;     /* batches filled */
};

struct proctrace;

/* Fills offsets[PROCTRACE_COLUMNS] for a batch of `capacity` events and `arena` bytes; returns
 * the block's size in bytes. */
PROCTRACE_API uint64_t proctrace_batch_layout(uint32_t capacity, uint32_t arena, uint64_t *offsets);

/* Opens, loads and attaches; NULL with the reason in `err` (err_size bytes) on failure. */
PROCTRACE_API struct proctrace *proctrace_open(const struct proctrace_options *opts, char *err,
					       uint64_t err_size);

/* Starts the filling thread over `n` caller blocks of proctrace_batch_layout(capacity, arena). */
PROCTRACE_API int proctrace_start(struct proctrace *t, void *const *blocks, uint32_t n, uint32_t capacity,
				  uint32_t arena, char *err, uint64_t err_size);

/* The index of the next filled batch (oldest first); -1 after timeout_ms (-1: no timeout),
 * -2 once stopped and every filled batch was taken. */
PROCTRACE_API int proctrace_next_batch(struct proctrace *t, int32_t timeout_ms);

/* Gives batch `index` back for filling. */
PROCTRACE_API int proctrace_release_batch(struct proctrace *t, uint32_t index);

/* Stops the thread after it has read what the ring buffer holds (a last partial batch is
 * handed out); detaches the programs. */
PROCTRACE_API void proctrace_stop(struct proctrace *t);

PROCTRACE_API void proctrace_get_stats(struct proctrace *t, struct proctrace_stats *out);

/* Filling a block from records read elsewhere (userspace mode: the segment's ring buffer and
 * page map), as the tracer's thread does: begin, then append until it returns 0 (full).
 * `pages` is the data_pages map's memory, `page_count` its elements. append returns 1, or 2
 * when the event went in without its argv (pages lapped or unreadable). */
PROCTRACE_API void proctrace_batch_begin(void *block, uint32_t capacity, uint32_t arena, uint64_t sequence);
PROCTRACE_API int proctrace_batch_append(void *block, const void *record, const void *pages, uint32_t page_count);

/* Stops if needed and frees everything. */
PROCTRACE_API void proctrace_close(struct proctrace *t);

/* CLOCK_REALTIME - CLOCK_BOOTTIME now: added to bpf_ktime_get_boot_ns() stamps gives wall clock. */
PROCTRACE_API int64_t proctrace_wall_offset_ns(void);

/*
 * Generated tracepoint collectors (`bpftime gen tracepoint`, collector.c): load an object,
 * attach its tracepoint programs, read its ring buffer `events` in batches of
 * [u32 length][u32 0][bytes padded to 8]. tpc_read waits up to timeout_ms for the first record
 * and returns the bytes written (0: none), or -errno.
 */
struct tp_collector;
PROCTRACE_API struct tp_collector *tpc_open(const char *object_path, char *err, uint64_t err_size);
PROCTRACE_API int64_t tpc_read(struct tp_collector *c, void *buf, uint64_t size, int32_t timeout_ms);
PROCTRACE_API void tpc_close(struct tp_collector *c);

#endif
