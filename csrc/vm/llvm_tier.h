/*
 * The interface between libbpftime.so and the LLVM tier, which lives in
 * build/libbpftime-llvm.so and is dlopen'ed only when a VM asks for it, so
 * processes that never use it never map LLVM. This header is all the tier
 * includes of csrc/vm/: the request and result below, and the compilers'
 * contract it brings in (jit.h: the run context and fault codes that
 * jit_run.c expects; program_shape.h: the analysis both compilers share).
 */
#ifndef BPFTIME_LLVM_TIER_H
#define BPFTIME_LLVM_TIER_H

#include "jit.h"
#include "program_shape.h"
#include "vm_internal.h"

struct llvm_request {
	const struct bpf_insn *insns;
	uint32_t ninsns;
	const uint64_t *lddw_values; /* per pc: the resolved 64-bit value of an lddw */
	const struct helper *helpers;
	uint32_t nhelpers;
	int64_t unwind_id;
	bool budgeted;
	/* int check(const struct jit_ctx *, uint64_t addr, uint64_t code, uint64_t frame_top) */
	uint64_t slow_check;
	/* Per pc: the load or store there is proven in bounds (pointer_facts.h), or NULL. */
	const uint8_t *proven;
	/* Per pc: a function to call instead of the helper there (same arguments and result), or 0;
	 * or NULL. */
	const uint64_t *direct_call;
};

struct llvm_result {
	void *entry;  /* jit_entry */
	void *handle; /* released with bpftime_llvm_release */
	uint32_t ncallbacks; /* callback entries (args array, unused, ctx), by subprogram pc */
	uint32_t cb_pc[JIT_MAX_CALLBACKS];
	void *cb_entry[JIT_MAX_CALLBACKS];
};

#define LLVM_TIER_COMPILE "bpftime_llvm_compile"
#define LLVM_TIER_RELEASE "bpftime_llvm_release"
typedef int (*llvm_compile_fn)(const struct llvm_request *req, struct llvm_result *out, char *err,
			       size_t errlen);
typedef void (*llvm_release_fn)(void *handle);

/* In libbpftime.so: compile vm's program with the LLVM tier into vm->llvm. */
HIDDEN int llvm_tier_compile(struct bpftime_vm *vm, bool budgeted);
HIDDEN void llvm_tier_release(struct bpftime_vm *vm);

#endif
