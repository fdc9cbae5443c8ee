/* The x86-64 JIT: compiler and the run-time context its code uses. */
#ifndef BPFTIME_JIT_H
#define BPFTIME_JIT_H

#include "vm_internal.h"

#include <stddef.h>

/* Per-run state the JIT code reaches through r12. Offsets are part of the code's ABI. */
struct jit_ctx {
	uint64_t mem_lo;       /* 0: the context block */
	uint64_t mem_limit[4]; /* 8: per access size 1,2,4,8: len - size + 1, or 0 */
	uint64_t stack_top;    /* 40: top of frame 0 */
	uint64_t saved_rsp;    /* 48: rsp after the prologue, for fault and unwind exits */
	uint64_t budget;       /* 56: instructions left (budgeted code only) */
	uint32_t depth;        /* 64: active bpf-to-bpf frames below the main one */
	uint32_t tail_calls; /* 68: tail calls that led to this run */
	uint64_t fault_addr; /* 72 */
	uint64_t fault_code; /* 80: pc << 8 | kind << 4 | detail */
	const struct bpftime_vm *vm; /* 88 */
	uint64_t faulted;            /* 96: 0 none, 1 fault, 2 unwound (LLVM tier), 3 tail-called */
	uint64_t frame_lo;           /* 104: bottom of the running frame, set before helper calls */
	struct jit_ctx *outer;       /* the run this one is nested in (a helper running a program) */
	uint64_t tail_value;         /* r0 of the program a tail call ran (faulted == 3) */
	uint64_t outer_lo, outer_hi; /* a callback may also reach its caller's stack */
	uint64_t extra_lo, extra_hi; /* and memory its helper hands it (a key) */
	const struct bpftime_attach_info *attach; /* the probe this run serves, or NULL */
	/* 168, 176: the registered region the last slow check found, tried before the next one. */
	uint64_t win_lo, win_len;
	/* 184: like mem_limit, for stores: all 0 when the context is read-only. */
	uint64_t store_limit[4];
};

#define RUN_TAIL_CALLED 3
#define TAIL_CALL_HELPER 12
#define MAX_TAIL_CALLS 33 /* MAX_TAIL_CALL_CNT */

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

/*
 * The run in progress on this thread, for helpers: they check every pointer a
 * program hands them against the same memory the program itself may touch.
 */
extern __thread struct jit_ctx *current_run __attribute__((tls_model("initial-exec")));
/*
 * Starts a run on this thread: every field set one by one (a memset of the
 * struct becomes `rep stos`, slow to start on every probe hit).
 */
static inline __attribute__((target("general-regs-only"))) void
run_init(struct jit_ctx *ctx, const struct bpftime_vm *vm, void *mem, uint64_t len,
	 const struct bpftime_attach_info *attach)
{
	ctx->mem_lo = (uintptr_t)mem;
	/* Per access size 1, 2, 4, 8: the last offset + 1 where it still fits. */
	uint64_t l = mem ? len : 0;
	ctx->mem_limit[0] = l;
	ctx->mem_limit[1] = l >= 2 ? l - 1 : 0;
	ctx->mem_limit[2] = l >= 4 ? l - 3 : 0;
	ctx->mem_limit[3] = l >= 8 ? l - 7 : 0;
	for (int i = 0; i < 4; i++)
		ctx->store_limit[i] = vm->ctx_readonly ? 0 : ctx->mem_limit[i];
	ctx->stack_top = ctx->saved_rsp = 0;
	ctx->budget = vm->budget;
	ctx->depth = 0;
	ctx->tail_calls = 0;
	ctx->fault_addr = ctx->fault_code = 0;
	ctx->vm = vm;
	ctx->faulted = 0;
	ctx->frame_lo = 0;
	ctx->tail_value = 0;
	ctx->outer_lo = ctx->outer_hi = ctx->extra_lo = ctx->extra_hi = 0;
	ctx->attach = attach;
	ctx->win_lo = ctx->win_len = 0;
	uint32_t last = __atomic_load_n(&vm->last_region, __ATOMIC_RELAXED);
	if (last && last <= vm->nregions) {
		ctx->win_lo = vm->regions[last - 1].base;
		ctx->win_len = vm->regions[last - 1].len;
	}
	ctx->outer = current_run;
	current_run = ctx;
}
/* run_init, plus what a tail call, callback or attached run set up for it beforehand. */
HIDDEN void run_begin(struct jit_ctx *ctx, const struct bpftime_vm *vm, void *mem, uint64_t len);
/* Set by bpf_tail_call just before it runs the next program: that run's tail call count. */
extern __thread uint32_t next_run_tail_calls __attribute__((tls_model("initial-exec")));
/* Set before a callback run: it may reach the stack of the run that called the helper. */
extern __thread bool next_run_is_callback __attribute__((tls_model("initial-exec")));
extern __thread uint64_t next_run_extra_lo __attribute__((tls_model("initial-exec")));
extern __thread uint64_t next_run_extra_hi __attribute__((tls_model("initial-exec")));
extern __thread const struct bpftime_attach_info *next_run_attach __attribute__((tls_model("initial-exec")));
/* Whether [addr, addr+size) is in a callback run's extra ranges (its caller's stack, a key). */
static inline bool run_extra_ok(const struct jit_ctx *r, uint64_t addr, uint64_t size)
{
	return (addr - r->outer_lo < r->outer_hi - r->outer_lo && size <= r->outer_hi - addr) ||
	       (addr - r->extra_lo < r->extra_hi - r->extra_lo && size <= r->extra_hi - addr);
}
HIDDEN void run_end(struct jit_ctx *ctx);
/* Whether [addr, addr+size) is memory the running program may touch. */
HIDDEN bool run_access_ok(uint64_t addr, uint64_t size);
/* run_access_ok for memory a helper writes: a read-only context is left out. */
HIDDEN bool run_write_ok(uint64_t addr, uint64_t size);

/* Fault kinds in fault_code. */
enum jit_fault { JF_LOAD = 0, JF_STORE = 1, JF_MISALIGNED = 2, JF_DEPTH = 3, JF_CALLX = 4,
		 JF_BUDGET = 5 };

typedef uint64_t (*jit_entry)(void *mem, uint64_t len, struct jit_ctx *ctx);

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
/* jit_run for a probe hit on a thread with no run in progress (the agent's hot path). */
HIDDEN int jit_run_probe(const struct bpftime_vm *vm, void *mem, uint64_t mem_len,
			 const struct bpftime_attach_info *info, uint64_t *ret);
/* Runs compiled code (either compiler's) and turns a recorded fault into the VM error. */
HIDDEN int jit_call(const struct bpftime_vm *vm, jit_entry entry, void *mem, uint64_t mem_len,
		    uint64_t *ret);
/* The same for a callback entry, which takes r1-r5 from args. */
HIDDEN int jit_call_callback(const struct bpftime_vm *vm, jit_entry entry, const uint64_t args[5],
			     void *mem, uint64_t mem_len, uint64_t *ret);
/* The slow bounds check compiled code calls (caller frames, registered regions). */
HIDDEN int jit_slow_check(struct jit_ctx *ctx, uint64_t addr, uint64_t code, uint64_t rbp);

#endif
