/* Private to csrc/vm/ (and the LLVM tier): the compilers' contract with jit_run.c (the run
 * context's offsets, fault codes) and the x86-64 JIT. */
#ifndef BPFTIME_JIT_H
#define BPFTIME_JIT_H

#include "vm_internal.h"

#include <stddef.h>

#define JIT_CTX_MEM_LO 0
#define JIT_CTX_MEM_LIMIT 8
#define JIT_CTX_STACK_TOP 40
#define JIT_CTX_SAVED_RSP 48
#define JIT_CTX_BUDGET 56
#define JIT_CTX_DEPTH 64
#define JIT_CTX_FAULT_ADDR 72
#define JIT_CTX_FAULT_CODE 80
#define JIT_CTX_FAULTED 96
#define JIT_CTX_FRAME_LO 104
#define JIT_CTX_WIN_LO 168
#define JIT_CTX_WIN_LEN 176
#define JIT_CTX_STORE_LIMIT 184
#define JIT_CTX_WIN_MASK 216
#define JIT_CTX_WIN_SIZE 224
_Static_assert(offsetof(struct jit_ctx, win_mask) == JIT_CTX_WIN_MASK, "jit_ctx layout");
_Static_assert(offsetof(struct jit_ctx, win_size) == JIT_CTX_WIN_SIZE, "jit_ctx layout");
_Static_assert(offsetof(struct jit_ctx, store_limit) == JIT_CTX_STORE_LIMIT, "jit_ctx layout");
_Static_assert(offsetof(struct jit_ctx, win_lo) == JIT_CTX_WIN_LO, "jit_ctx layout");
_Static_assert(offsetof(struct jit_ctx, win_len) == JIT_CTX_WIN_LEN, "jit_ctx layout");
_Static_assert(offsetof(struct jit_ctx, mem_limit) == JIT_CTX_MEM_LIMIT, "jit_ctx layout");
_Static_assert(offsetof(struct jit_ctx, stack_top) == JIT_CTX_STACK_TOP, "jit_ctx layout");
_Static_assert(offsetof(struct jit_ctx, saved_rsp) == JIT_CTX_SAVED_RSP, "jit_ctx layout");
_Static_assert(offsetof(struct jit_ctx, budget) == JIT_CTX_BUDGET, "jit_ctx layout");
_Static_assert(offsetof(struct jit_ctx, depth) == JIT_CTX_DEPTH, "jit_ctx layout");
_Static_assert(offsetof(struct jit_ctx, fault_addr) == JIT_CTX_FAULT_ADDR, "jit_ctx layout");
_Static_assert(offsetof(struct jit_ctx, fault_code) == JIT_CTX_FAULT_CODE, "jit_ctx layout");
_Static_assert(offsetof(struct jit_ctx, faulted) == JIT_CTX_FAULTED, "jit_ctx layout");
_Static_assert(offsetof(struct jit_ctx, frame_lo) == JIT_CTX_FRAME_LO, "jit_ctx layout");

/* Fault kinds in fault_code. */
enum jit_fault { JF_LOAD = 0, JF_STORE = 1, JF_MISALIGNED = 2, JF_DEPTH = 3, JF_CALLX = 4,
		 JF_BUDGET = 5 };

/* The fault code compiled code records: pc << 8 | kind << 4 | detail. */
static inline uint32_t fault_code(uint32_t pc, enum jit_fault kind, uint32_t detail)
{
	return pc << 8 | (uint32_t)kind << 4 | detail;
}

/* log2 of an access size of 1, 2, 4 or 8 bytes. */
static inline int size_log2(uint32_t size)
{
	return size == 1 ? 0 : size == 2 ? 1 : size == 4 ? 2 : 3;
}

/* Compiles vm->insns (validated and decoded) into vm->jit; budgeted code counts instructions. */
HIDDEN int jit_compile(struct bpftime_vm *vm, bool budgeted);
HIDDEN void jit_release(struct bpftime_vm *vm);
HIDDEN int jit_run(const struct bpftime_vm *vm, void *mem, uint64_t mem_len, uint64_t *ret);
/* Runs compiled code (either compiler's) and turns a recorded fault into the VM error. */
HIDDEN int jit_call(const struct bpftime_vm *vm, jit_entry entry, void *mem, uint64_t mem_len,
		    uint64_t *ret);
/* The same for a callback entry, which takes r1-r5 from args. */
HIDDEN int jit_call_callback(const struct bpftime_vm *vm, jit_entry entry, const uint64_t args[5],
			     void *mem, uint64_t mem_len, uint64_t *ret);
/* The slow bounds check compiled code calls (caller frames, registered regions). */
HIDDEN int jit_slow_check(struct jit_ctx *ctx, uint64_t addr, uint64_t code, uint64_t rbp);

#endif
