/*
 * bpf_tail_call(ctx, prog_array, index): run the program stored at `index`
 * on the same context and end the caller with its r0. Programs are compiled
 * once per process (same engine as the caller) and cached by id; at most
 * MAX_TAIL_CALLS tail calls chain, as in the kernel. When the call cannot be
 * made (empty slot, bad index, too many) the caller continues.
 */
#include "../helpers/helpers.h"
#include "runtime.h"
#include "tail_call.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>

#define CACHE_SIZE 256

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
	const struct bpftime_shm *shm;
	uint32_t id;
	const char *engine;
	struct bpftime_vm *vm;
} cache[CACHE_SIZE];
static int cached;

static struct bpftime_vm *program_vm(struct bpftime_shm *shm, uint32_t id, const char *engine)
{
	struct bpftime_vm *vm = NULL;
	pthread_mutex_lock(&cache_lock);
	for (int i = 0; i < cached; i++)
		if (cache[i].shm == shm && cache[i].id == id && strcmp(cache[i].engine, engine) == 0)
			vm = cache[i].vm;
	if (vm || cached == CACHE_SIZE)
		goto out;
	struct runtime_vm_opts opts = {.engine = engine}; /* the caller's */
	vm = runtime_program_vm(shm, id, &opts);
	if (vm) {
		cache[cached].shm = shm;
		cache[cached].id = id;
		cache[cached].engine = engine;
		cache[cached++].vm = vm;
	}
out:
	pthread_mutex_unlock(&cache_lock);
	return vm;
}

static uint64_t tail_call(uint64_t ctx, uint64_t map, uint64_t index, uint64_t a4, uint64_t a5)
{
	(void)ctx, (void)a4, (void)a5;
	struct jit_ctx *run = current_run;
	struct bpftime_shm *shm;
	struct shm_map *m = helper_map(map, &shm);
	if (!run || !m || m->type != MAP_PROG_ARRAY || index > UINT32_MAX)
		return (uint64_t)-EINVAL;
	uint32_t *slot = prog_array_slot(shm, m, (uint32_t)index);
	uint32_t id = slot ? __atomic_load_n(slot, __ATOMIC_ACQUIRE) : 0;
	if (!id)
		return (uint64_t)-ENOENT;
	if (run->tail_calls >= MAX_TAIL_CALLS)
		return (uint64_t)-E2BIG;
	struct bpftime_vm *next = program_vm(shm, id, bpftime_vm_engine(run->vm));
	if (!next)
		return (uint64_t)-ENOENT;
	next_run_tail_calls = run->tail_calls + 1;
	uint64_t r0 = 0;
	/* The same context block as the caller's. A fault there ends the caller with r0 = 0. */
	if (bpftime_vm_exec(next, (void *)(uintptr_t)run->mem_lo, run->mem_limit[0], &r0) < 0)
		r0 = 0;
	run->tail_value = r0;
	run->faulted = RUN_TAIL_CALLED;
	return 0;
}

const struct helper_def tail_call_helpers[] = {
	{TAIL_CALL_HELPER, "bpf_tail_call", tail_call},
	{0, NULL, NULL},
};
