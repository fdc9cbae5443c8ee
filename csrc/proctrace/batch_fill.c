/*
 * Records into column batches: the fixed fields into their columns, comm and argv into the
 * arena. argv comes straight from its data pages, checked by sequence number before and after
 * the copy (a page rewritten meanwhile means the pool lapped us: the argv is reported lost).
 */
#include <string.h>
#include <time.h>

#include "internal.h"

uint64_t proctrace_batch_layout(uint32_t capacity, uint32_t arena, uint64_t *offsets)
{
	static const uint8_t width[PROCTRACE_COLUMNS] = {
		[PROCTRACE_COL_TS_NS] = 8,     [PROCTRACE_COL_DURATION_NS] = 8, [PROCTRACE_COL_PID] = 4,
		[PROCTRACE_COL_PPID] = 4,      [PROCTRACE_COL_EXIT_CODE] = 4,   [PROCTRACE_COL_EXIT_SIGNAL] = 4,
		[PROCTRACE_COL_ARGC] = 4,      [PROCTRACE_COL_FLAGS] = 4,       [PROCTRACE_COL_COMM_OFF] = 4,
		[PROCTRACE_COL_COMM_LEN] = 4,  [PROCTRACE_COL_ARGV_OFF] = 4,    [PROCTRACE_COL_ARGV_LEN] = 4,
		[PROCTRACE_COL_EVENT_TYPE] = 1,
	};
	uint64_t at = sizeof(struct proctrace_batch_header);
	for (int c = 0; c < PROCTRACE_COL_ARENA; c++) {
		offsets[c] = at;
		at += ((uint64_t)width[c] * capacity + 7) & ~7ull; /* every column 8-byte aligned */
	}
	offsets[PROCTRACE_COL_ARENA] = at;
	return (at + arena + 7) & ~7ull;
}

int64_t proctrace_wall_offset_ns(void)
{
	return wall_minus_boot_ns();
}

int64_t wall_minus_boot_ns(void)
{
	struct timespec real, boot;
	clock_gettime(CLOCK_BOOTTIME, &boot);
	clock_gettime(CLOCK_REALTIME, &real);
	return ((int64_t)real.tv_sec - boot.tv_sec) * 1000000000ll + (real.tv_nsec - boot.tv_nsec);
}

void batch_begin(struct batch_writer *w, void *block, uint32_t capacity, uint32_t arena, uint64_t sequence)
{
	w->block = block;
	w->hdr = block;
	proctrace_batch_layout(capacity, arena, w->offsets);
	memset(w->hdr, 0, sizeof(*w->hdr));
	w->hdr->capacity = capacity;
	w->hdr->arena_size = arena;
	w->hdr->sequence = sequence;
	w->hdr->wall_offset_ns = wall_minus_boot_ns();
}

/* A writer over a block begun earlier (its header says its shape). */
void batch_open(struct batch_writer *w, void *block)
{
	w->block = block;
	w->hdr = block;
	proctrace_batch_layout(w->hdr->capacity, w->hdr->arena_size, w->offsets);
}

void proctrace_batch_begin(void *block, uint32_t capacity, uint32_t arena, uint64_t sequence)
{
	struct batch_writer w;
	batch_begin(&w, block, capacity, arena, sequence);
}

int proctrace_batch_append(void *block, const void *record, const void *pages, uint32_t page_count)
{
	struct batch_writer w;
	batch_open(&w, block);
	struct page_pool pool = {.base = pages, .pages = page_count};
	bool argv_lost;
	if (!batch_append(&w, record, &pool, &argv_lost))
		return 0;
	return argv_lost ? 2 : 1;
}

#define COLUMN(w, col, type) ((type *)((w)->block + (w)->offsets[col]))

static const unsigned char *page_at(const struct page_pool *pool, uint32_t cpu, uint32_t seq)
{
	uint64_t index = (uint64_t)cpu * PROCTRACE_PAGES_PER_CPU + seq % PROCTRACE_PAGES_PER_CPU;
	if (index >= pool->pages)
		return NULL;
	return pool->base + index * PROCTRACE_PAGE_SIZE;
}

static uint32_t page_seq(const unsigned char *page)
{
	return __atomic_load_n((const uint32_t *)page, __ATOMIC_ACQUIRE);
}

/* Copies argv out of its pages into `out` (room for e->argv_len); false if a page was lapped. */
static bool copy_argv(const struct proctrace_event *e, const struct page_pool *pool, unsigned char *out)
{
	uint32_t done = 0;
	for (uint32_t i = 0; i < e->npages && done < e->argv_len; i++) {
		uint32_t seq = e->first_seq + i;
		const unsigned char *page = page_at(pool, e->cpu, seq);
		if (!page || page_seq(page) != seq)
			return false;
		const struct proctrace_page_header *h = (const void *)page;
		uint32_t used = __atomic_load_n(&h->used, __ATOMIC_RELAXED);
		if (used > PROCTRACE_PAGE_DATA || used > e->argv_len - done)
			return false;
		memcpy(out + done, page + sizeof(*h), used);
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		if (page_seq(page) != seq) /* rewritten while we copied */
			return false;
		done += used;
	}
	return done == e->argv_len;
}

static uint32_t count_args(const unsigned char *argv, uint32_t len)
{
	uint32_t n = 0;
	for (uint32_t i = 0; i < len; i++)
		n += argv[i] == 0;
	if (len && argv[len - 1] != 0)
		n++; /* cut by the limit: the last argument has no NUL */
	return n;
}

bool batch_append(struct batch_writer *w, const struct proctrace_event *e, const struct page_pool *pool,
		  bool *argv_lost)
{
	struct proctrace_batch_header *h = w->hdr;
	uint32_t comm_len = strnlen(e->comm, sizeof(e->comm));
	uint32_t argv_len = e->type == PROCTRACE_EXEC ? e->argv_len : 0;
	if (h->count >= h->capacity || (uint64_t)h->arena_used + comm_len + argv_len > h->arena_size)
		return false;
	uint32_t i = h->count;
	unsigned char *arena = COLUMN(w, PROCTRACE_COL_ARENA, unsigned char);
	uint32_t flags = e->flags;
	uint32_t at = h->arena_used;
	memcpy(arena + at, e->comm, comm_len);
	COLUMN(w, PROCTRACE_COL_COMM_OFF, uint32_t)[i] = at;
	COLUMN(w, PROCTRACE_COL_COMM_LEN, uint32_t)[i] = comm_len;
	at += comm_len;
	uint32_t argc = 0;
	*argv_lost = false;
	if (argv_len && !(flags & PROCTRACE_F_ARGV_FAULT)) {
		if (copy_argv(e, pool, arena + at)) {
			argc = count_args(arena + at, argv_len);
		} else {
			flags |= PROCTRACE_F_ARGV_LOST;
			argv_len = 0;
		}
	} else {
		argv_len = 0;
	}
	if (e->type == PROCTRACE_EXEC && (flags & (PROCTRACE_F_ARGV_FAULT | PROCTRACE_F_ARGV_LOST)))
		*argv_lost = true;
	COLUMN(w, PROCTRACE_COL_ARGV_OFF, uint32_t)[i] = at;
	COLUMN(w, PROCTRACE_COL_ARGV_LEN, uint32_t)[i] = argv_len;
	h->arena_used = at + argv_len;
	COLUMN(w, PROCTRACE_COL_TS_NS, uint64_t)[i] = e->ts_ns + w->hdr->wall_offset_ns;
	COLUMN(w, PROCTRACE_COL_DURATION_NS, uint64_t)[i] = e->duration_ns;
	COLUMN(w, PROCTRACE_COL_PID, int32_t)[i] = e->pid;
	COLUMN(w, PROCTRACE_COL_PPID, int32_t)[i] = e->ppid;
	COLUMN(w, PROCTRACE_COL_EXIT_CODE, int32_t)[i] = e->exit_code;
	COLUMN(w, PROCTRACE_COL_EXIT_SIGNAL, int32_t)[i] = e->exit_signal;
	COLUMN(w, PROCTRACE_COL_ARGC, uint32_t)[i] = argc;
	COLUMN(w, PROCTRACE_COL_FLAGS, uint32_t)[i] = flags;
	COLUMN(w, PROCTRACE_COL_EVENT_TYPE, uint8_t)[i] = (uint8_t)e->type;
	h->count = i + 1;
	return true;
}
