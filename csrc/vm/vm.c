/* The VM object: helpers, regions, loading and running. */
#include "jit.h"
#include "llvm_tier.h"
#include "vm_internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* BPFTIME_DISABLE_JIT=1 forces the interpreter; BPFTIME_VM_NAME picks interp, jit or llvm. */
static enum vm_engine default_engine(void)
{
	const char *disable = getenv("BPFTIME_DISABLE_JIT");
	if (disable && *disable && strcmp(disable, "0") != 0)
		return ENGINE_INTERP;
	const char *name = getenv("BPFTIME_VM_NAME");
	if (name && strcmp(name, "interp") == 0)
		return ENGINE_INTERP;
	if (name && strcmp(name, "llvm") == 0)
		return ENGINE_LLVM;
	return ENGINE_JIT;
}

/*
 * BPFTIME_INSN_BUDGET: instructions a run may count (at back-edges and calls, program_shape.h)
 * before it is stopped; unset or empty: the kernel's 1,000,000; 0: unlimited.
 */
static int default_budget(uint64_t *budget)
{
	const char *s = getenv("BPFTIME_INSN_BUDGET");
	*budget = BPFTIME_DEFAULT_INSN_BUDGET;
	if (!s || !*s)
		return 0;
	uint64_t v = 0;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9' || v > (UINT64_MAX >> 1) / 10 || p - s > 19) {
			set_error("BPFTIME_INSN_BUDGET='%.40s': expected a whole number of instructions "
				  "per run below 2^63 (0 = unlimited; unset: %d)",
				  s, BPFTIME_DEFAULT_INSN_BUDGET);
			return -1;
		}
		v = v * 10 + (uint64_t)(*p - '0');
	}
	*budget = v;
	return 0;
}

static const char *const engine_names[] = {"interp", "jit", "llvm"};

int bpftime_vm_set_engine(struct bpftime_vm *vm, const char *name)
{
	for (int e = 0; e < 3; e++) {
		if (name && strcmp(name, engine_names[e]) == 0) {
			vm->engine = (enum vm_engine)e;
			return 0;
		}
	}
	set_error("unknown engine '%s' (interp, jit or llvm)", name ? name : "(null)");
	return -1;
}

const char *bpftime_vm_engine(const struct bpftime_vm *vm)
{
	return engine_names[vm->engine];
}

uint64_t bpftime_vm_compile_ns(const struct bpftime_vm *vm)
{
	return vm->engine == ENGINE_LLVM ? vm->llvm.compile_ns : vm->jit.compile_ns;
}

/* Compiles for the VM's engine unless code for the current budget setting exists. */
static int ensure_compiled(struct bpftime_vm *vm)
{
	bool budgeted = vm->budget != 0;
	if (vm->engine == ENGINE_JIT && (!vm->jit.code || vm->jit.budgeted != budgeted))
		return jit_compile(vm, budgeted);
	if (vm->engine == ENGINE_LLVM && (!vm->llvm.entry || vm->llvm.budgeted != budgeted))
		return llvm_tier_compile(vm, budgeted);
	return 0;
}

struct bpftime_vm *bpftime_vm_create(void)
{
	uint64_t budget;
	if (default_budget(&budget) < 0)
		return NULL;
	struct bpftime_vm *vm = calloc(1, sizeof(*vm));
	if (!vm) {
		set_error("out of memory creating a VM");
		return NULL;
	}
	vm->budget = budget;
	vm->unwind_id = -1;
	vm->engine = default_engine();
	static uint64_t next_serial;
	vm->serial = __atomic_add_fetch(&next_serial, 1, __ATOMIC_RELAXED);
	return vm;
}

void bpftime_vm_destroy(struct bpftime_vm *vm)
{
	if (!vm)
		return;
	jit_release(vm);
	llvm_tier_release(vm);
	free(vm->callbacks);
	free(vm->insns);
	free(vm->code);
	free(vm->helpers);
	free(vm->regions);
	free(vm);
}

bool vm_helper_known(const struct bpftime_vm *vm, uint32_t id)
{
	return id < vm->nhelpers && vm->helpers[id].fn != NULL;
}

int bpftime_vm_register_helper(struct bpftime_vm *vm, uint32_t id, const char *name,
			       bpftime_helper_fn fn)
{
	if (id > BPFTIME_MAX_HELPER_ID || !fn) {
		set_error("helper %u: %s", id, fn ? "id above 65535" : "null function");
		return -1;
	}
	if (vm->code) {
		set_error("helper %u: register helpers before loading the program", id);
		return -1;
	}
	if (id >= vm->nhelpers) {
		uint32_t n = id + 1;
		struct helper *h = realloc(vm->helpers, n * sizeof(*h));
		if (!h) {
			set_error("helper %u: out of memory", id);
			return -1;
		}
		memset(h + vm->nhelpers, 0, (n - vm->nhelpers) * sizeof(*h));
		vm->helpers = h;
		vm->nhelpers = n;
	}
	vm->helpers[id].fn = fn;
	vm->helpers[id].vector_safe = false;
	snprintf(vm->helpers[id].name, sizeof(vm->helpers[id].name), "%s",
		 name && *name ? name : "helper");
	return 0;
}

/* general-regs-only, as jit_slow_check that calls it. */
__attribute__((target("general-regs-only"))) const struct region *
vm_region_of(const struct bpftime_vm *vm, uint64_t addr, uint64_t size, uint64_t *elem)
{
	for (uint32_t i = 0; i < vm->nregions; i++) {
		const struct region *g = &vm->regions[i];
		uint64_t rel = addr - g->base;
		if (!(rel < g->len && size <= g->len - rel))
			continue;
		uint64_t e = g->stride == g->len ? 0 : rel / g->stride;
		if (size <= g->size && rel - e * g->stride <= g->size - size) {
			*elem = e;
			return g;
		}
	}
	return NULL;
}

__attribute__((target("general-regs-only"))) bool vm_region_ok(const struct bpftime_vm *vm, uint64_t addr, uint64_t size)
{
	uint64_t e;
	return vm_region_of(vm, addr, size, &e) || (vm->mem_check && vm->mem_check(vm->mem_check_ctx, addr, size));
}

void vm_set_mem_check(struct bpftime_vm *vm, vm_mem_check_fn fn, void *ctx)
{
	vm->mem_check = fn;
	vm->mem_check_ctx = ctx;
}

void vm_set_user(struct bpftime_vm *vm, void *user)
{
	vm->user = user;
}

void vm_set_probe_read(struct bpftime_vm *vm, bpftime_helper_fn read, bpftime_helper_fn read_str)
{
	vm->probe_read_fn = read;
	vm->probe_read_str_fn = read_str;
}

void vm_set_value_size(struct bpftime_vm *vm, int64_t (*fn)(void *ctx, uint32_t map_imm), void *ctx)
{
	vm->value_size_fn = fn;
	vm->value_size_ctx = ctx;
}

void vm_set_map_inline(struct bpftime_vm *vm, bpftime_helper_fn lookup, vm_map_inline_fn fn, void *ctx)
{
	vm->map_lookup_fn = lookup;
	vm->map_inline_fn = fn;
	vm->map_inline_ctx = ctx;
}

void vm_set_helper_vector_safe(struct bpftime_vm *vm, uint32_t id)
{
	if (id < vm->nhelpers && vm->helpers[id].fn)
		vm->helpers[id].vector_safe = true;
}

void vm_set_pid_tgid_inline(struct bpftime_vm *vm, const struct vm_pid_tgid_inline *p)
{
	vm->pid_tgid = *p;
}

static vm_helper_gate_fn helper_gate;

void vm_set_helper_gate(vm_helper_gate_fn gate)
{
	__atomic_store_n(&helper_gate, gate, __ATOMIC_RELEASE);
}

vm_helper_gate_fn vm_helper_gate(void)
{
	return __atomic_load_n(&helper_gate, __ATOMIC_ACQUIRE);
}

void vm_set_run_end(struct bpftime_vm *vm, const uint32_t *ids, uint32_t n,
		    void (*fn)(struct jit_ctx *run))
{
	vm->n_run_end_helpers = 0;
	for (uint32_t i = 0; i < n && i < 4; i++)
		vm->run_end_helpers[vm->n_run_end_helpers++] = ids[i];
	vm->run_end_fn = fn;
}

void bpftime_vm_set_ctx_readonly(struct bpftime_vm *vm, int readonly)
{
	vm->ctx_readonly = readonly != 0;
}

int bpftime_vm_set_unwind_helper(struct bpftime_vm *vm, uint32_t id)
{
	if (!vm_helper_known(vm, id)) {
		set_error("unwind helper %u is not registered", id);
		return -1;
	}
	vm->unwind_id = id;
	return 0;
}

static uint64_t helper_identity(uint64_t r1, uint64_t r2, uint64_t r3, uint64_t r4, uint64_t r5)
{
	(void)r2, (void)r3, (void)r4, (void)r5;
	return r1;
}

bpftime_helper_fn bpftime_builtin_helper(const char *name)
{
	if (name && strcmp(name, "identity") == 0)
		return helper_identity;
	set_error("no built-in helper named '%s'", name ? name : "(null)");
	return NULL;
}

void bpftime_vm_set_lddw_resolver(struct bpftime_vm *vm, bpftime_lddw_resolver fn, void *ctx)
{
	vm->resolver = fn;
	vm->resolver_ctx = ctx;
}

int vm_add_map_region(struct bpftime_vm *vm, uintptr_t map, const void *base, uint64_t len,
		      uint64_t stride, uint64_t size)
{
	if ((len && !base) || (uintptr_t)base + len < (uintptr_t)base || (len && (!stride || size > stride))) {
		set_error("region %p+%llu: wraps around or has no elements", base, (unsigned long long)len);
		return -1;
	}
	for (uint32_t i = 0; i < vm->nregions; i++)
		if (vm->regions[i].base == (uintptr_t)base && vm->regions[i].len == len &&
		    vm->regions[i].map == map)
			return 0;
	struct region *r = realloc(vm->regions, (vm->nregions + 1) * sizeof(*r));
	if (!r) {
		set_error("region: out of memory");
		return -1;
	}
	r[vm->nregions] = (struct region){(uintptr_t)base, len, stride, size, map};
	vm->regions = r;
	vm->nregions++;
	return 0;
}

int bpftime_vm_add_region(struct bpftime_vm *vm, const void *base, uint64_t len)
{
	if (!base || len == 0 || (uintptr_t)base + len < (uintptr_t)base) {
		set_error("region %p+%llu: empty or wraps around", base, (unsigned long long)len);
		return -1;
	}
	return vm_add_map_region(vm, 0, base, len, len, len);
}

void bpftime_vm_set_insn_budget(struct bpftime_vm *vm, uint64_t budget)
{
	vm->budget = budget;
}

int bpftime_vm_load(struct bpftime_vm *vm, const void *code, uint64_t len)
{
	if (vm->insns) {
		set_error("a program is already loaded in this VM");
		return -1;
	}
	if (!code || len == 0) {
		set_error("empty program");
		return -1;
	}
	if (len % sizeof(struct bpf_insn)) {
		set_error("program length %llu is not a multiple of 8 bytes",
			     (unsigned long long)len);
		return -1;
	}
	if (len / sizeof(struct bpf_insn) > BPFTIME_MAX_INSNS) {
		set_error("too many instructions: %llu (limit %d)",
			     (unsigned long long)(len / sizeof(struct bpf_insn)), BPFTIME_MAX_INSNS);
		return -1;
	}
	uint32_t n = (uint32_t)(len / sizeof(struct bpf_insn));
	struct bpf_insn *insns = malloc(len);
	if (!insns) {
		set_error("out of memory loading %u instructions", n);
		return -1;
	}
	memcpy(insns, code, len);
	if (vm_validate(vm, insns, n) < 0) {
		free(insns);
		return -1;
	}
	vm->insns = insns;
	vm->ninsns = n;
	vm->callbacks = calloc(n + 1, 1);
	if (!vm->callbacks) {
		set_error("out of memory loading %u instructions", n);
		free(insns);
		vm->insns = NULL;
		return -1;
	}
	for (uint32_t pc = 0; pc + 1 < n; pc++)
		if (insns[pc].code == LDDW_CODE && insns[pc].src == LDDW_PSEUDO_FUNC)
			vm->callbacks[pc + 1 + (uint32_t)insns[pc].imm] = 1;
	for (uint32_t pc = 0; pc < n && vm->run_end_fn; pc++) {
		if (insns[pc].code == 0x8d)
			vm->at_run_end = vm->run_end_fn;
		for (uint32_t i = 0; i < vm->n_run_end_helpers; i++)
			if (insns[pc].code == 0x85 && insns[pc].src == CALL_HELPER &&
			    (uint32_t)insns[pc].imm == vm->run_end_helpers[i])
				vm->at_run_end = vm->run_end_fn;
	}
	if (interp_prepare(vm) < 0 || ensure_compiled(vm) < 0) {
		free(vm->code);
		vm->code = NULL;
		free(vm->callbacks);
		vm->callbacks = NULL;
		free(vm->insns);
		vm->insns = NULL;
		vm->ninsns = 0;
		return -1;
	}
	return 0;
}

int bpftime_vm_exec(struct bpftime_vm *vm, void *mem, uint64_t mem_len, uint64_t *ret)
{
	if (!vm->code) {
		set_error("no program loaded");
		return -1;
	}
	if (vm->engine == ENGINE_INTERP)
		return interp_run(vm, mem, mem_len, ret);
	/* Compile on first use, or again when the budget was switched on or off. */
	if (ensure_compiled(vm) < 0)
		return -1;
	if (vm->engine == ENGINE_LLVM)
		return jit_call(vm, (jit_entry)vm->llvm.entry, mem, mem_len, ret);
	return jit_run(vm, mem, mem_len, ret);
}

bool vm_is_callback(const struct bpftime_vm *vm, uint32_t pc)
{
	return pc > 0 && pc < vm->ninsns && vm->insns && vm->callbacks && vm->callbacks[pc];
}

int vm_run_callback(const struct bpftime_vm *vm, uint32_t pc, const uint64_t args[5], uint64_t *ret)
{
	const struct jit_ctx *outer = current_run;
	if (!outer || !vm_is_callback(vm, pc)) {
		set_error("pc %u is not a callback of this program", pc);
		return -1;
	}
	next_run_is_callback = true;
	if (vm->engine == ENGINE_INTERP)
		return interp_run_callback(vm, pc, args, ret);
	void *mem = (void *)(uintptr_t)outer->mem_lo;
	uint64_t len = outer->mem_limit[0];
	const uint32_t *pcs = vm->engine == ENGINE_JIT ? vm->jit.cb_pc : vm->llvm.cb_pc;
	uint32_t n = vm->engine == ENGINE_JIT ? vm->jit.ncallbacks : vm->llvm.ncallbacks;
	for (uint32_t i = 0; i < n; i++) {
		if (pcs[i] != pc)
			continue;
		jit_entry entry = vm->engine == ENGINE_JIT
					  ? (jit_entry)(void *)(vm->jit.code + vm->jit.cb_off[i])
					  : (jit_entry)vm->llvm.cb_entry[i];
		return jit_call_callback(vm, entry, args, mem, len, ret);
	}
	next_run_is_callback = false;
	set_error("callback at pc %u has no compiled entry (more than %d callbacks?)", pc,
		     JIT_MAX_CALLBACKS);
	return -1;
}

int bpftime_vm_exec_attached(struct bpftime_vm *vm, void *mem, uint64_t mem_len,
			     const struct bpftime_attach_info *info, uint64_t *ret)
{
	next_run_attach = info;
	int rc = bpftime_vm_exec(vm, mem, mem_len, ret);
	next_run_attach = NULL;
	return rc;
}

bool vm_vector_clean(const struct bpftime_vm *vm)
{
	return vm_probe_fast_path(vm) && vm->jit.vector_clean;
}

uint64_t vm_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

double bpftime_vm_time_exec(struct bpftime_vm *vm, void *mem, uint64_t mem_len, uint64_t repeat,
			    uint64_t *ret)
{
	if (repeat == 0)
		repeat = 1;
	uint64_t start = vm_now_ns();
	for (uint64_t i = 0; i < repeat; i++) {
		if (bpftime_vm_exec(vm, mem, mem_len, ret) < 0)
			return -1;
	}
	return (double)(vm_now_ns() - start) / (double)repeat;
}

static const struct {
	uint8_t code;
	const char *name;
} opcode_table[] = {
#define BPF_OPCODE(c, n) {c, n},
#include "opcodes.def"
#undef BPF_OPCODE
};

const char *bpftime_opcode_name(uint32_t opcode)
{
	for (size_t i = 0; i < sizeof(opcode_table) / sizeof(opcode_table[0]); i++)
		if (opcode_table[i].code == opcode)
			return opcode_table[i].name;
	return NULL;
}
