/*
 * What bpf/proctrace.bpf.c shares with its consumers (csrc/proctrace/, ffi/proctrace_layout.ts):
 * the fixed-size record the ring buffer carries and the data pages argv goes into.
 *
 * Hybrid buffering: argv (variable length) is written once, by the program, into a pool of
 * 4 KiB pages per CPU (one BPF_F_MMAPABLE array map, CPU c owning elements
 * [c * PROCTRACE_PAGES_PER_CPU, (c + 1) * PROCTRACE_PAGES_PER_CPU)); the ring buffer carries
 * only struct proctrace_event, which says where the bytes are (cpu, first page's sequence
 * number, length). The consumer reads the pages in place. A pool is circular: a consumer that
 * falls PROCTRACE_PAGES_PER_CPU pages behind finds a page rewritten, which the page's sequence
 * number tells it (it then reports the argv as lost; nothing is silently wrong).
 *
 * Limits: argv up to PROCTRACE_ARGV_MAX bytes (any number of arguments: 32 KiB holds 128
 * arguments of up to 255 bytes, or thousands of short ones); longer argv is kept up to the
 * limit and flagged PROCTRACE_F_ARGV_TRUNCATED. comm is the kernel's 16 bytes.
 */
#ifndef PROCTRACE_H
#define PROCTRACE_H

#define PROCTRACE_PAGE_SIZE 4096
/* Each page starts with struct proctrace_page_header; the rest holds argv bytes. */
#define PROCTRACE_PAGE_DATA (PROCTRACE_PAGE_SIZE - 8)
#define PROCTRACE_ARGV_MAX (32 * 1024)
/* Pages one argv can take: ceil(PROCTRACE_ARGV_MAX / PROCTRACE_PAGE_DATA). */
#define PROCTRACE_ARGV_PAGES ((PROCTRACE_ARGV_MAX + PROCTRACE_PAGE_DATA - 1) / PROCTRACE_PAGE_DATA)
/* Pages in each CPU's pool (1 MiB per CPU): how far a consumer may fall behind. */
#define PROCTRACE_PAGES_PER_CPU 256
/* CPUs the object sizes the page map for; loaders resize it to the possible CPUs before load. */
#define PROCTRACE_DEFAULT_CPUS 16

/* Generations a pid filter follows (real_parent links) to find the target among the ancestors. */
#define PROCTRACE_TREE_DEPTH 16

/* The consumer reads the ring at least this often; it is woken early once this much is unread:
 * 16 records, whose argv take at most 16 * PROCTRACE_ARGV_PAGES = 144 pages, well inside a
 * CPU's pool of 256 (so a woken consumer finds them before the pool laps). */
#define PROCTRACE_POLL_MS 50
#define PROCTRACE_WAKEUP_BYTES (16 * 80) /* 72-byte records + the ring's 8-byte headers */

#define PROCTRACE_EXEC 1
#define PROCTRACE_EXIT 2

/* flags */
#define PROCTRACE_F_ARGV_TRUNCATED 1 /* argv was longer than PROCTRACE_ARGV_MAX */
#define PROCTRACE_F_ARGV_FAULT 2     /* argv could not be read (or no page pool on this CPU) */

struct proctrace_page_header {
	/* Sequence number of the write that filled this page; 0 while it is being rewritten. */
	unsigned int seq;
	/* argv bytes in this page. */
	unsigned int used;
};

/* One ring buffer record: 72 bytes, whatever the argv. */
struct proctrace_event {
	unsigned int type; /* PROCTRACE_EXEC or PROCTRACE_EXIT */
	unsigned int flags;
	int pid;  /* thread group id */
	int ppid; /* the real parent's thread group id */
	unsigned long long ts_ns; /* bpf_ktime_get_boot_ns() */
	unsigned long long duration_ns; /* exit: since exec (or fork when never exec'd) */
	int exit_code;         /* exit: (task->exit_code >> 8) & 0xff */
	int exit_signal;       /* exit: task->exit_code & 0x7f, the killing signal or 0 */
	unsigned int cpu;      /* exec: whose page pool holds argv */
	unsigned int first_seq; /* exec: sequence number of argv's first page (then +1 per page) */
	unsigned int argv_len;  /* exec: bytes of argv in the pages, NUL-separated */
	unsigned int npages;    /* exec: pages argv takes */
	char comm[16];
};

#endif
