/*
 * Output into kernel ring buffers and perf event arrays that segment maps front.
 *
 * User space cannot produce into a kernel ring (its producer pages are read-only to it) nor write
 * a perf event's ring. So each fronted map gets a tiny kernel program, BPF_PROG_TYPE_RAW_TRACEPOINT,
 * loaded once per process (or by `bpftime daemon` for processes without CAP_BPF, which get its fd
 * over the daemon's socket, kernel_map_fd.c) and never attached: BPF_PROG_TEST_RUN runs it in the
 * calling thread with ctx {record address, size, flags}; it copies the record
 * (bpf_probe_read_user, into a per-CPU scratch array) and calls bpf_ringbuf_output or
 * bpf_perf_event_output on the kernel map. The test run executes on the CPU the calling thread is
 * on, so BPF_F_CURRENT_CPU picks that CPU's perf ring, as a kernel uprobe program on that thread
 * would; an explicit index works only when it is that CPU (else the kernel says -EOPNOTSUPP).
 *
 * bpf_ringbuf_reserve on a fronted ring reserves in the segment's own ring (the shadow, nobody
 * consumes it); submit outputs the record to the kernel and discards it in the shadow, whose
 * consumer position is then moved over finished records here (kernel_ring_commit).
 *
 * bpf_ringbuf_query on a fronted ring answers for the kernel ring: its consumer and producer
 * pages, mapped read-only once per process (kernel_ring_query).
 */
#define _GNU_SOURCE
#include "kernel_map.h"
#include "ringbuf.h"

#include <errno.h>
#include <linux/bpf.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

static long sys_bpf(int cmd, union bpf_attr *attr)
{
	long rc = syscall(SYS_bpf, cmd, attr, sizeof(*attr));
	return rc < 0 ? -errno : rc;
}

#define INSN(c, d, s, o, i) ((struct bpf_insn){.code = (c), .dst_reg = (d), .src_reg = (s), .off = (o), .imm = (i)})
#define MOV64_REG(d, s) INSN(BPF_ALU64 | BPF_MOV | BPF_X, d, s, 0, 0)
#define MOV64_IMM(d, i) INSN(BPF_ALU64 | BPF_MOV | BPF_K, d, 0, 0, i)
#define ADD64_IMM(d, i) INSN(BPF_ALU64 | BPF_ADD | BPF_K, d, 0, 0, i)
#define LDX64(d, s, o) INSN(BPF_LDX | BPF_MEM | BPF_DW, d, s, o, 0)
#define ST32(d, o, i) INSN(BPF_ST | BPF_MEM | BPF_W, d, 0, o, i)
#define JGT_IMM(d, i, o) INSN(BPF_JMP | BPF_JGT | BPF_K, d, 0, o, i)
#define JEQ_IMM(d, i, o) INSN(BPF_JMP | BPF_JEQ | BPF_K, d, 0, o, i)
#define JSLT_IMM(d, i, o) INSN(BPF_JMP | BPF_JSLT | BPF_K, d, 0, o, i)
#define CALL(f) INSN(BPF_JMP | BPF_CALL, 0, 0, 0, f)
#define EXIT() INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)
#define LD_MAP_FD(d, fd) INSN(BPF_LD | BPF_DW | BPF_IMM, d, BPF_PSEUDO_MAP_FD, 0, fd), INSN(0, 0, 0, 0, 0)

/* The output program for the kernel map `map_fd` of `type`, or -errno. */
static int load_output_prog(int map_fd, uint32_t type)
{
	union bpf_attr a = {.map_type = BPF_MAP_TYPE_PERCPU_ARRAY, .key_size = 4,
			    .value_size = KERNEL_RING_MAX_RECORD, .max_entries = 1};
	int scratch = (int)sys_bpf(BPF_MAP_CREATE, &a);
	if (scratch < 0)
		return scratch;
	/* r6 = ctx, r7 = size (at most the scratch), r8 = flags, r9 = the scratch value. */
	struct bpf_insn head[] = {
		MOV64_REG(BPF_REG_6, BPF_REG_1),
		LDX64(BPF_REG_7, BPF_REG_6, 8),
		LDX64(BPF_REG_8, BPF_REG_6, 16),
		MOV64_IMM(BPF_REG_0, -E2BIG),
		JGT_IMM(BPF_REG_7, KERNEL_RING_MAX_RECORD, 0), /* to the exit: patched below */
		ST32(BPF_REG_10, -4, 0),
		MOV64_REG(BPF_REG_2, BPF_REG_10),
		ADD64_IMM(BPF_REG_2, -4),
		LD_MAP_FD(BPF_REG_1, scratch),
		CALL(BPF_FUNC_map_lookup_elem),
		MOV64_REG(BPF_REG_9, BPF_REG_0),
		MOV64_IMM(BPF_REG_0, -ENOMEM),
		JEQ_IMM(BPF_REG_9, 0, 0), /* to the exit */
		MOV64_REG(BPF_REG_1, BPF_REG_9),
		MOV64_REG(BPF_REG_2, BPF_REG_7),
		LDX64(BPF_REG_3, BPF_REG_6, 0),
		CALL(BPF_FUNC_probe_read_user),
		JSLT_IMM(BPF_REG_0, 0, 0), /* to the exit */
	};
	struct bpf_insn ring_tail[] = {
		LD_MAP_FD(BPF_REG_1, map_fd),
		MOV64_REG(BPF_REG_2, BPF_REG_9),
		MOV64_REG(BPF_REG_3, BPF_REG_7),
		MOV64_REG(BPF_REG_4, BPF_REG_8),
		CALL(BPF_FUNC_ringbuf_output),
		EXIT(),
	};
	struct bpf_insn perf_tail[] = {
		MOV64_REG(BPF_REG_1, BPF_REG_6),
		LD_MAP_FD(BPF_REG_2, map_fd),
		MOV64_REG(BPF_REG_3, BPF_REG_8),
		MOV64_REG(BPF_REG_4, BPF_REG_9),
		MOV64_REG(BPF_REG_5, BPF_REG_7),
		CALL(BPF_FUNC_perf_event_output),
		EXIT(),
	};
	const bool ring = type == BPF_MAP_TYPE_RINGBUF;
	const size_t nhead = sizeof(head) / sizeof(head[0]);
	const size_t ntail = ring ? sizeof(ring_tail) / sizeof(ring_tail[0]) : sizeof(perf_tail) / sizeof(perf_tail[0]);
	struct bpf_insn insns[sizeof(head) / sizeof(head[0]) + sizeof(perf_tail) / sizeof(perf_tail[0])];
	memcpy(insns, head, sizeof(head));
	memcpy(insns + nhead, ring ? ring_tail : perf_tail, ntail * sizeof(struct bpf_insn));
	/* The early exits jump to the last instruction, the tail's exit (r0 holds the error). */
	const size_t n = nhead + ntail;
	for (size_t i = 0; i < nhead; i++)
		if (BPF_CLASS(insns[i].code) == BPF_JMP && BPF_OP(insns[i].code) != BPF_CALL)
			insns[i].off = (int16_t)(n - 1 - (i + 1));
	char license[] = "GPL"; /* bpf_probe_read_user is GPL-only */
	union bpf_attr p = {.prog_type = BPF_PROG_TYPE_RAW_TRACEPOINT, .insns = (uintptr_t)insns,
			    .insn_cnt = (uint32_t)n, .license = (uintptr_t)license};
	memcpy(p.prog_name, ring ? "bpftime_kring" : "bpftime_kperf", 14);
	int fd = (int)sys_bpf(BPF_PROG_LOAD, &p);
	close(scratch); /* the program holds it */
	return fd;
}

int bpftime_kernel_output_prog(uint32_t kernel_map_id)
{
	int map_fd = kernel_map_fd(kernel_map_id);
	if (map_fd < 0)
		return map_fd;
	struct bpf_map_info info;
	memset(&info, 0, sizeof(info));
	union bpf_attr a = {.info = {.bpf_fd = (uint32_t)map_fd, .info_len = sizeof(info),
				     .info = (uintptr_t)&info}};
	long rc = sys_bpf(BPF_OBJ_GET_INFO_BY_FD, &a);
	if (rc < 0)
		return (int)rc;
	if (info.type != BPF_MAP_TYPE_RINGBUF && info.type != BPF_MAP_TYPE_PERF_EVENT_ARRAY)
		return -EINVAL;
	return load_output_prog(map_fd, info.type);
}

/* The output program's fd in this process: loaded here when allowed, else from the daemon. */
static int output_prog_fd(const struct shm_map *m)
{
	int fd = kernel_fd_cached(KERNEL_OUT_REQ_MAGIC, m->kernel_id);
	if (fd >= 0)
		return fd;
	fd = bpftime_kernel_output_prog(m->kernel_id);
	if (fd == -EPERM || fd == -EACCES)
		fd = kernel_fd_from_daemon(KERNEL_OUT_REQ_MAGIC, m->kernel_id);
	if (fd < 0) {
		set_error("kernel map %u: no output program for it (%s; is `bpftime daemon` running?)",
			  m->kernel_id, strerror(-fd));
		return fd;
	}
	return kernel_fd_keep(KERNEL_OUT_REQ_MAGIC, m->kernel_id, fd);
}

int kernel_ring_output(const struct shm_map *m, const void *data, uint64_t size, uint64_t flags)
{
	if (size > KERNEL_RING_MAX_RECORD)
		return -E2BIG;
	int fd = output_prog_fd(m);
	if (fd < 0)
		return fd;
	uint64_t ctx[3] = {(uintptr_t)data, size, flags};
	union bpf_attr a = {.test = {.prog_fd = (uint32_t)fd, .ctx_in = (uintptr_t)ctx,
				     .ctx_size_in = sizeof(ctx)}};
	long rc = sys_bpf(BPF_PROG_TEST_RUN, &a);
	return rc < 0 ? (int)rc : (int)a.test.retval;
}

/* Moves the shadow ring's consumer position over records submitted or discarded. */
static void drain_shadow(struct bpftime_shm *shm, struct shm_map *m)
{
	uint64_t *cons = rb_consumer_pos(shm, m);
	struct rb_producer *p = rb_producer(shm, m);
	const uint8_t *data = map_at(shm, m->slots);
	const uint64_t mask = m->max_entries - 1;
	for (;;) {
		uint64_t at = __atomic_load_n(cons, __ATOMIC_ACQUIRE);
		if (at >= __atomic_load_n(&p->producer_pos, __ATOMIC_ACQUIRE))
			return;
		uint32_t len = __atomic_load_n((const uint32_t *)(data + (at & mask)), __ATOMIC_ACQUIRE);
		if (len & RB_BUSY_BIT)
			return;
		uint64_t next = at + (((len & ~(RB_BUSY_BIT | RB_DISCARD_BIT)) + RB_HDR + 7) & ~7ull);
		__atomic_compare_exchange_n(cons, &at, next, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
	}
}

int kernel_ring_commit(struct bpftime_shm *shm, struct shm_map *m, uint32_t *hdr, bool discard,
		       uint64_t flags)
{
	uint32_t len = __atomic_load_n(&hdr[0], __ATOMIC_ACQUIRE);
	if (!(len & RB_BUSY_BIT))
		return -EINVAL; /* already submitted or discarded */
	int rc = discard ? 0 : kernel_ring_output(m, hdr + 2, len & ~(RB_BUSY_BIT | RB_DISCARD_BIT), flags);
	rb_commit(shm, m, hdr, true, RB_NO_WAKEUP);
	drain_shadow(shm, m);
	return rc;
}

/* The kernel rings whose position pages this process has mapped: (kernel map id, pages). */
#define QUERY_SLOTS 32
struct ring_positions {
	const uint64_t *cons, *prod; /* the consumer position, the producer position (next page) */
	uint32_t size; /* the kernel ring's (the segment's shadow may be smaller) */
};
static struct {
	uint32_t id; /* 0: free; UINT32_MAX: being filled */
	struct ring_positions at;
} query_slots[QUERY_SLOTS];

/*
 * The positions of the kernel ring m fronts: its consumer and producer pages mapped read-only
 * (the kernel allows a read-only mapping of any part of a ring) and its size, kept for the
 * process's life; false if they cannot be had.
 */
static bool ring_positions(const struct shm_map *m, struct ring_positions *out)
{
	for (int i = 0; i < QUERY_SLOTS; i++)
		if (__atomic_load_n(&query_slots[i].id, __ATOMIC_ACQUIRE) == m->kernel_id) {
			*out = query_slots[i].at;
			return true;
		}
	int fd = kernel_map_fd(m->kernel_id);
	if (fd < 0)
		return false;
	struct bpf_map_info info;
	memset(&info, 0, sizeof(info));
	union bpf_attr a = {.info = {.bpf_fd = (uint32_t)fd, .info_len = sizeof(info), .info = (uintptr_t)&info}};
	if (sys_bpf(BPF_OBJ_GET_INFO_BY_FD, &a) < 0 || info.type != BPF_MAP_TYPE_RINGBUF)
		return false;
	size_t page = (size_t)sysconf(_SC_PAGESIZE), len = 2 * page; /* consumer page, producer page */
	void *pages = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
	if (pages == MAP_FAILED)
		return false;
	*out = (struct ring_positions){pages, (const uint64_t *)((const uint8_t *)pages + page), info.max_entries};
	for (int i = 0; i < QUERY_SLOTS; i++) {
		uint32_t seen = 0;
		if (__atomic_compare_exchange_n(&query_slots[i].id, &seen, UINT32_MAX, false, __ATOMIC_ACQ_REL,
						__ATOMIC_ACQUIRE)) {
			query_slots[i].at = *out;
			__atomic_store_n(&query_slots[i].id, m->kernel_id, __ATOMIC_RELEASE);
			return true;
		}
		if (seen == m->kernel_id) { /* another thread mapped it first */
			munmap(pages, len);
			*out = query_slots[i].at;
			return true;
		}
	}
	return true; /* the table is full: used without being kept (a mapping per call) */
}

uint64_t kernel_ring_query(const struct shm_map *m, uint64_t flags)
{
	struct ring_positions r;
	if (!ring_positions(m, &r))
		return 0;
	uint64_t cons = __atomic_load_n(r.cons, __ATOMIC_ACQUIRE);
	uint64_t prod = __atomic_load_n(r.prod, __ATOMIC_ACQUIRE);
	switch (flags) {
	case BPF_RB_AVAIL_DATA: return prod - cons;
	case BPF_RB_RING_SIZE: return r.size;
	case BPF_RB_CONS_POS: return cons;
	case BPF_RB_PROD_POS: return prod;
	default: return 0;
	}
}
