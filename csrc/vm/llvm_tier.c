/* Loads the LLVM tier (build/libbpftime-llvm.so) on first use and hands it programs. */
#define _GNU_SOURCE /* dladdr */
#include "llvm_tier.h"
#include "interp_ops.h"
#include "jit.h"
#include "pointer_facts.h"
#include "jit_probe_read.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static llvm_compile_fn tier_compile;
static llvm_release_fn tier_release;
static char load_error[4200];

/* $BPFTIME_LLVM_LIB, else libbpftime-llvm.so beside this library. */
static void load_tier(void)
{
	char path[4096];
	const char *env = getenv("BPFTIME_LLVM_LIB");
	if (env && *env) {
		snprintf(path, sizeof(path), "%s", env);
	} else {
		Dl_info info;
		if (!dladdr((void *)load_tier, &info) || !info.dli_fname) {
			snprintf(load_error, sizeof(load_error), "cannot locate libbpftime.so");
			return;
		}
		snprintf(path, sizeof(path), "%s", info.dli_fname);
		char *slash = strrchr(path, '/');
		size_t dir = slash ? (size_t)(slash - path + 1) : 0;
		snprintf(path + dir, sizeof(path) - dir, "libbpftime-llvm.so");
	}
	void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!lib) {
		snprintf(load_error, sizeof(load_error), "cannot load the LLVM tier: %s", dlerror());
		return;
	}
	tier_compile = (llvm_compile_fn)dlsym(lib, LLVM_TIER_COMPILE);
	tier_release = (llvm_release_fn)dlsym(lib, LLVM_TIER_RELEASE);
	if (!tier_compile || !tier_release)
		snprintf(load_error, sizeof(load_error), "%s lacks %s", path, LLVM_TIER_COMPILE);
}

void llvm_tier_release(struct bpftime_vm *vm)
{
	if (vm->llvm.handle && tier_release)
		tier_release(vm->llvm.handle);
	vm->llvm.handle = NULL;
	vm->llvm.entry = NULL;
}

int llvm_tier_compile(struct bpftime_vm *vm, bool budgeted)
{
	pthread_once(&load_once, load_tier);
	if (!tier_compile) {
		set_error("%.400s", load_error);
		return -1;
	}
	uint64_t start = vm_now_ns();
	uint64_t *values = calloc(vm->ninsns, sizeof(uint64_t));
	if (!values) {
		set_error("LLVM tier: out of memory");
		return -1;
	}
	for (uint32_t pc = 0; pc < vm->ninsns; pc++)
		if (vm->insns[pc].code == LDDW_CODE)
			values[pc] = vm->code[pc].k;
	/* Accesses proven in bounds go unchecked, as in the x86-64 JIT (without the facts, all are
	 * checked). */
	struct program_shape shape;
	struct pointer_facts facts = {0};
	bool have_facts = false;
	if (program_shape_analyse(&shape, vm->insns, vm->ninsns) == 0) {
		have_facts = pointer_facts_analyse(&facts, vm, &shape) == 0;
		program_shape_free(&shape);
	}
	/* Probe reads into the frame call the copy without the helper's checks (jit_probe_read.h). */
	uint64_t *direct = have_facts ? calloc(vm->ninsns + 1, sizeof(uint64_t)) : NULL;
	for (uint32_t pc = 0; direct && pc < vm->ninsns; pc++)
		if (facts.has_frame_dst[pc])
			direct[pc] = probe_read_direct_fn(vm, vm->insns[pc].imm, facts.frame_dst[pc].size);
	struct llvm_request req = {
		.insns = vm->insns,
		.ninsns = vm->ninsns,
		.lddw_values = values,
		.helpers = vm->helpers,
		.nhelpers = vm->nhelpers,
		.unwind_id = vm->unwind_id,
		.budgeted = budgeted,
		.slow_check = (uint64_t)(uintptr_t)jit_slow_check,
		.proven = have_facts ? facts.proven : NULL,
		.direct_call = direct,
	};
	struct llvm_result out = {0};
	char err[400] = "";
	int rc = tier_compile(&req, &out, err, sizeof(err));
	free(values);
	free(direct);
	if (have_facts)
		pointer_facts_free(&facts);
	if (rc < 0) {
		set_error("LLVM tier: %s", err);
		return -1;
	}
	llvm_tier_release(vm);
	vm->llvm.entry = out.entry;
	vm->llvm.handle = out.handle;
	vm->llvm.budgeted = budgeted;
	vm->llvm.compile_ns = vm_now_ns() - start;
	vm->llvm.ncallbacks = out.ncallbacks;
	memcpy(vm->llvm.cb_pc, out.cb_pc, sizeof(out.cb_pc));
	memcpy(vm->llvm.cb_entry, out.cb_entry, sizeof(out.cb_entry));
	return 0;
}
