/* Connects a VM to the runtime: kernel helpers by id, and map references resolved in a segment. */
#include "../helpers/helpers.h"
#include "../helpers/synthetic_task.h"
#include "../maps/kernel_map.h"
#include "runtime.h"
#include "tail_call.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static int register_all(struct bpftime_vm *vm, const struct helper_def *defs)
{
	for (const struct helper_def *d = defs; d->name; d++)
		if (bpftime_vm_register_helper(vm, d->id, d->name, d->fn) < 0)
			return -1;
	return 0;
}

/* What a run may leave to finish: ring buffer reservations, values of kernel maps it changed. */
static void runtime_run_end(struct jit_ctx *run)
{
	ringbuf_run_end(run);
	kernel_map_run_end(run);
}

/* lddw src 1: imm is a map id -> the map; src 2: map id + offset -> address of value 0 + off. */
static int resolve_map(void *ctx, uint32_t src, uint32_t imm, uint32_t next_imm, uint64_t *out)
{
	struct bpftime_vm *vm = ctx;
	struct bpftime_shm *shm = vm_user(vm);
	if (!shm || (src != 1 && src != 2))
		return -EINVAL;
	struct shm_object *o = shm_object_find(shm, imm);
	if (!o || o->kind != SHM_MAP)
		return -ENOENT;
	struct shm_map *m = shm_ptr(shm, o->offset);
	if (m->kernel_id)
		kernel_map_share_values(shm, m); /* mmapable kernel arrays: their own memory here */
	uint64_t values = m->values_bytes;
	if (src == 2 && (m->type != MAP_ARRAY || next_imm >= m->value_size))
		return -EINVAL;
	/*
	 * The program may use this map, and touch its values (never its keys or links), one
	 * element's value through a pointer to it (see struct region).
	 */
	uint64_t stride = 0, size = 0;
	if (values)
		map_value_elements(m, &stride, &size);
	if (vm_add_map_region(vm, (uintptr_t)m, values ? shm_ptr(shm, m->slots) : NULL, values,
			      stride, size) < 0)
		return -ENOMEM;
	*out = src == 1 ? (uint64_t)(uintptr_t)m : (uint64_t)(uintptr_t)shm_ptr(shm, m->slots) + next_imm;
	return 0;
}

/*
 * The VM's memory check beyond its registered regions: an element's value of a map reached at
 * run time, which must be an inner map of a map of maps the program references (no other map
 * of the segment). NO_VECTORS: compiled code calls it without the vector registers saved.
 */
static NO_VECTORS bool task_memory_ok(void *ctx, uint64_t addr, uint64_t size)
{
	(void)ctx;
	return synthetic_task_holds(addr, size);
}

static NO_VECTORS bool map_values_ok(void *ctx, uint64_t addr, uint64_t size)
{
	const struct bpftime_vm *vm = ctx;
	const struct bpftime_shm *shm = vm_user(vm);
	const struct shm_map *m = shm ? shm_map_holding(shm, addr, size) : NULL;
	return m && vm_may_use_map(vm, shm, m);
}

/* The same, plus this thread's synthetic task objects: for programs given a BTF task pointer (158). */
static NO_VECTORS bool task_or_map_values_ok(void *ctx, uint64_t addr, uint64_t size)
{
	return synthetic_task_holds(addr, size) || map_values_ok(ctx, addr, size);
}

void runtime_prepare_helpers(struct bpftime_vm *vm, const void *code, uint64_t len)
{
	const uint8_t *insn = code;
	bool task = false, task_btf = false;
	for (uint64_t i = 0; i + 8 <= len; i += 8) {
		if (insn[i] != 0x85 || (insn[i + 1] >> 4) != 0) /* a call of a helper by id */
			continue;
		int32_t imm;
		memcpy(&imm, insn + i + 4, 4);
		task |= imm == 35 || imm == 158;
		task_btf |= imm == 158;
	}
	/* The layout is read now, never in a probe; without it the helper returns NULL (said once). */
	if (task && synthetic_task_prepare() < 0) {
		static bool said;
		if (!said)
			fprintf(stderr, "bpftime: %s\n", bpftime_last_error());
		said = true;
	}
	if (task_btf)
		vm_set_mem_check(vm, vm_user(vm) ? task_or_map_values_ok : task_memory_ok, vm);
}

/* For the validator: the value size of the map with this id, -1 when lookups give no value. */
static int64_t map_value_size(void *ctx, uint32_t id)
{
	struct bpftime_shm *shm = vm_user(ctx);
	struct shm_object *o = shm ? shm_object_find(shm, id) : NULL;
	if (!o || o->kind != SHM_MAP)
		return -1;
	const struct shm_map *m = shm_ptr(shm, o->offset);
	const struct map_type *t = map_type(m->type);
	if (t->map_in_map || t->keyless || !m->values_bytes || m->type == MAP_RINGBUF)
		return -1;
	return m->value_size;
}

/* For the JIT's inline lookups (vm_map_inline): the layout of a map an lddw resolved to. */
static bool map_inline(void *ctx, uint64_t map, struct vm_map_inline *out)
{
	struct bpftime_shm *shm = vm_user(ctx);
	struct map_lookup_layout l;
	if (!shm || !map_lookup_layout(shm, (struct shm_map *)(uintptr_t)map, &l))
		return false;
	*out = (struct vm_map_inline){
		.kind = l.kind == MAP_ARRAY ? VM_INLINE_ARRAY : VM_INLINE_HASH,
		.key_size = l.key_size,
		.max_entries = l.max_entries,
		.values = (uintptr_t)l.values,
		.value_stride = l.value_stride,
		.buckets = (uintptr_t)l.buckets,
		.elems = (uintptr_t)l.elems,
		.bucket_mask = l.bucket_mask,
		.elem_size = l.elem_size,
		.elem_next_off = l.next_off,
		.elem_hash_off = l.hash_off,
		.elem_key_off = l.key_off,
	};
	return true;
}

static bpftime_helper_fn helper_by_id(const struct helper_def *defs, uint32_t id)
{
	for (const struct helper_def *d = defs; d->name; d++)
		if (d->id == id)
			return d->fn;
	return NULL;
}

int bpftime_vm_register_runtime(struct bpftime_vm *vm, struct bpftime_shm *shm)
{
	if (register_all(vm, process_helpers) < 0 || register_all(vm, trace_helpers) < 0)
		return -1;
	for (const uint32_t *id = vector_safe_helpers; *id; id++)
		vm_set_helper_vector_safe(vm, *id);
	struct vm_pid_tgid_inline ids;
	if (pid_tgid_layout(&ids))
		vm_set_pid_tgid_inline(vm, &ids);
	if (shm) {
		if (register_all(vm, map_helpers) < 0 || register_all(vm, ringbuf_helpers) < 0 ||
		    register_all(vm, tail_call_helpers) < 0 || register_all(vm, lock_helpers) < 0 ||
		    register_all(vm, stack_helpers) < 0)
			return -1;
		vm_set_user(vm, shm);
		vm_set_mem_check(vm, map_values_ok, vm);
		static const uint32_t run_end_helpers[] = {RINGBUF_RESERVE_HELPER, MAP_LOOKUP_HELPER};
		vm_set_run_end(vm, run_end_helpers, 2, runtime_run_end);
		vm_set_value_size(vm, map_value_size, vm);
		bpftime_vm_set_lddw_resolver(vm, resolve_map, vm);
		vm_set_map_inline(vm, helper_by_id(map_helpers, 1), map_inline, vm);
	}
	vm_set_probe_read(vm, helper_by_id(process_helpers, 112), helper_by_id(process_helpers, 114));
	return 0;
}
