/*
 * The VM's internal API for the runtime layers above it (helpers/, agent/, the
 * LLVM tier): what a run looks like while it is in progress, so a helper can
 * check the pointers a program hands it (current_run, run_access_ok), run a
 * callback, end a run with a tail call, and so the agent's probe hit can enter
 * compiled code with no call in between (run_init, run_result, inline here).
 * Not part of the exported API (csrc/include/bpftime.h); csrc/vm/'s private
 * headers (vm_internal.h, jit.h) are for csrc/vm/ alone.
 */
#ifndef BPFTIME_VM_RUNTIME_H
#define BPFTIME_VM_RUNTIME_H

#include "../base/base.h"
#include "../include/bpftime.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Memory a program may touch besides its stack, its context and the regions
 * registered with it: asked only on the slow bounds-check path, from compiled
 * code that runs without the vector registers saved, so it must be NO_VECTORS.
 */
typedef bool (*vm_mem_check_fn)(void *ctx, uint64_t addr, uint64_t size);

/*
 * Memory a program may touch: [base, base+len), cut into elements of `size` bytes every
 * `stride` bytes (a map's values: each element's value is reachable, its neighbours' are not
 * through it; the padding between them is nobody's). A plain region is one element. `map`: the
 * runtime's map this region belongs to (0: none); len 0 only names a map the program references.
 */
struct region {
	uintptr_t base;
	uint64_t len;
	uint64_t stride, size;
	uintptr_t map;
};

struct helper {
	bpftime_helper_fn fn;
	char name[48];
	bool vector_safe; /* fn is NO_VECTORS and calls nothing: compiled code calls it as it is */
};

struct decoded_insn;
struct jit_ctx;

/*
 * A map whose lookups compiled code may do itself, without calling bpf_map_lookup_elem: the
 * runtime describes the map's layout (vm_set_map_inline), the JIT walks it the way the map's
 * own lookup does (no lock: only map types whose lookup takes none are described).
 */
enum vm_inline_kind { VM_INLINE_NONE = 0, VM_INLINE_ARRAY, VM_INLINE_HASH };
struct vm_map_inline {
	enum vm_inline_kind kind;
	uint32_t key_size, max_entries;
	uintptr_t values;      /* element i's value at values + i * value_stride */
	uint64_t value_stride; /* (all CPUs' copies of one element, for per-CPU maps) */
	/* Hash maps (csrc/maps/hash.c): buckets of u32 element index + 1, elements of elem_size
	 * bytes holding the chain link, the key's hash and the key at these offsets. The hash is
	 * map_hash_bytes (csrc/maps/map.h) with seed 0. */
	uintptr_t buckets, elems;
	uint32_t bucket_mask, elem_size, elem_next_off, elem_hash_off, elem_key_off;
};
typedef bool (*vm_map_inline_fn)(void *ctx, uint64_t map, struct vm_map_inline *out);

/*
 * bpf_get_current_pid_tgid as the JIT compiles it: the helper's own per-thread cache read
 * inline (helpers/process_helpers.c says when it is valid), the helper called otherwise.
 */
struct vm_pid_tgid_inline {
	bpftime_helper_fn fn;   /* the helper described: a program's other helper 14 is called */
	int64_t cache_tls_off;  /* u64 at fs:off: tgid << 32 | tid, or 0 */
	int64_t leader_tls_off; /* int at fs:off: nonzero, the helper must answer */
	uintptr_t tgid_word;    /* u32: the cache holds while its tgid is this word */
};

/*
 * Helper calls from programs that otherwise never touch a vector register: gate(fn, r1..r5)
 * calls fn(r1..r5) keeping xmm0-15 (and whatever else its caller must), so such a program
 * still runs as vector clean. Process-wide, set by the agent before it loads programs; NULL,
 * the default, compiles direct calls.
 */
typedef uint64_t (*vm_helper_gate_fn)(bpftime_helper_fn fn, uint64_t r1, uint64_t r2, uint64_t r3,
				      uint64_t r4, uint64_t r5);
HIDDEN void vm_set_helper_gate(vm_helper_gate_fn gate);
HIDDEN vm_helper_gate_fn vm_helper_gate(void);

enum vm_engine { ENGINE_INTERP = 0, ENGINE_JIT = 1, ENGINE_LLVM = 2 };

#define JIT_MAX_CALLBACKS 16 /* callback subprograms a program may hand to helpers */

struct jit_code {
	uint8_t *code; /* read+execute mapping */
	size_t size;
	bool budgeted; /* counts instructions against vm->budget */
	uint64_t compile_ns;
	uint32_t ncallbacks; /* entry points for callbacks: pc -> code offset */
	uint32_t cb_pc[JIT_MAX_CALLBACKS];
	uint32_t cb_off[JIT_MAX_CALLBACKS];
	/* Never touches vector registers: no helper call but through the gate (vm_helper_gate), no
	 * frame clearing (which uses xmm0). */
	bool vector_clean;
	/* Still calls a run-end helper (or callx) after inlining: at_run_end must run. */
	bool run_end_calls;
};

struct bpftime_vm {
	struct bpf_insn *insns;
	uint32_t ninsns;
	uint8_t *callbacks;        /* per pc: a subprogram the program hands to helpers */
	struct decoded_insn *code; /* interpreter form, one per slot */
	struct helper *helpers;    /* indexed by id */
	uint32_t nhelpers;
	int64_t unwind_id; /* -1: none */
	bpftime_lddw_resolver resolver;
	void *resolver_ctx;
	struct region *regions;
	/*
	 * The element a slow bounds check found last, (1 + region) << 32 | element (0: none): runs
	 * start with it as their window.
	 */
	uint64_t last_window;
	uint32_t nregions;
	uint64_t budget;
	bool ctx_readonly; /* stores into the context fault (probes: struct pt_regs) */
	uint64_t serial;   /* unique per VM in this process (never reused, unlike the address) */
	enum vm_engine engine;
	vm_mem_check_fn mem_check; /* memory of the runtime beyond the regions (map values) */
	void *mem_check_ctx;
	/* The runtime's bpf_probe_read{,_user} and bpf_probe_read{,_user}_str, which the JIT may
	 * compile inline (jit_probe_read.c). */
	bpftime_helper_fn probe_read_fn, probe_read_str_fn;
	/* 1 + the slot in base/fault_fixup.c of vm->jit's inline reads (0: it has none). */
	uint32_t jit_fault_slot;
	void *user; /* the runtime layer's (its segment), for its helpers */
	/*
	 * Called at the end of every run (faulted or not) of a program that calls one of the
	 * run_end_helpers (or uses callx): the runtime releases what the run left held, writes back
	 * what it changed.
	 */
	void (*run_end_fn)(struct jit_ctx *run);
	uint32_t run_end_helpers[4];
	uint32_t n_run_end_helpers;
	void (*at_run_end)(struct jit_ctx *run); /* run_end_fn when this program needs it, or NULL */
	/* The value size of the map an lddw src 1 names (-1: lookups give no value pointer). */
	int64_t (*value_size_fn)(void *ctx, uint32_t map_imm);
	void *value_size_ctx;
	/* The runtime's bpf_map_lookup_elem (helper 1), and how to inline its lookups. */
	bpftime_helper_fn map_lookup_fn;
	vm_map_inline_fn map_inline_fn;
	void *map_inline_ctx;
	struct vm_pid_tgid_inline pid_tgid; /* fn NULL: not described */
	struct jit_code jit;
	struct {
		void *entry;  /* jit_entry produced by the LLVM tier */
		void *handle;
		bool budgeted;
		uint64_t compile_ns;
		uint32_t ncallbacks;
		uint32_t cb_pc[JIT_MAX_CALLBACKS];
		void *cb_entry[JIT_MAX_CALLBACKS];
	} llvm;
};

/*
 * The runtime layer connects the VM to its memory (map values) and attaches its own state.
 * vm_add_map_region: the values of a map the program references (see struct region).
 */
HIDDEN int vm_add_map_region(struct bpftime_vm *vm, uintptr_t map, const void *base, uint64_t len,
			     uint64_t stride, uint64_t size);
HIDDEN void vm_set_mem_check(struct bpftime_vm *vm, vm_mem_check_fn fn, void *ctx);
HIDDEN void vm_set_user(struct bpftime_vm *vm, void *user);
/*
 * read, read_str: the functions the runtime registers as bpf_probe_read{,_user} (4, 112) and
 * bpf_probe_read{,_user}_str (45, 114): on valid memory safe_read / safe_read_str of
 * base/safe_copy.h into the program's own writable memory, which compiled code may do itself.
 */
HIDDEN void vm_set_probe_read(struct bpftime_vm *vm, bpftime_helper_fn read, bpftime_helper_fn read_str);
/* Lets the validator check constant offsets from map value pointers against the value size. */
HIDDEN void vm_set_value_size(struct bpftime_vm *vm, int64_t (*fn)(void *ctx, uint32_t map_imm),
			      void *ctx);
/*
 * lookup: the function registered as helper 1 (bpf_map_lookup_elem), whose results are
 * pointers to map values of the value size vm_set_value_size gives; fn describes a map an lddw
 * resolved to (its address) for inline lookups, false when the helper must be called.
 */
HIDDEN void vm_set_map_inline(struct bpftime_vm *vm, bpftime_helper_fn lookup, vm_map_inline_fn fn,
			      void *ctx);
/* After registering helper id: it touches no vector register and makes no system call. */
HIDDEN void vm_set_helper_vector_safe(struct bpftime_vm *vm, uint32_t id);
HIDDEN void vm_set_pid_tgid_inline(struct bpftime_vm *vm, const struct vm_pid_tgid_inline *p);
/* Before the program is loaded: fn runs at the end of each run of a program calling one of the
 * n (at most 4) helpers `ids`. */
HIDDEN void vm_set_run_end(struct bpftime_vm *vm, const uint32_t *ids, uint32_t n,
			   void (*fn)(struct jit_ctx *run));
static inline void *vm_user(const struct bpftime_vm *vm)
{
	return vm->user;
}

/* Per-run state the JIT code reaches through r12. Offsets are part of the code's ABI. */
struct jit_ctx {
	uint64_t mem_lo;       /* 0: the context block */
	uint64_t mem_limit[4]; /* 8: per access size 1,2,4,8: len - size + 1, or 0 */
	uint64_t stack_top;    /* 40: top of frame 0 */
	uint64_t saved_rsp;    /* 48: rsp after the prologue, for fault and unwind exits */
	uint64_t budget;       /* 56: instructions left (budgeted code only, see program_shape.h) */
	uint32_t depth;        /* 64: active bpf-to-bpf frames below the main one (LLVM tier; the JIT reads rbp) */
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
	/*
	 * 216, 224: the window's elements: an access at rel = addr - win_lo < win_len is inside when
	 * (rel & win_mask) + size <= win_size (a plain region: mask all ones, size its length; a map's
	 * values with a power-of-two stride: the whole area, mask stride - 1, size the value size;
	 * other strides: one element).
	 */
	uint64_t win_mask, win_size;
	bool shares_budget; /* a callback: counts against its caller's budget */
};

#define RUN_TAIL_CALLED 3
#define TAIL_CALL_HELPER 12
#define MAX_TAIL_CALLS 33 /* MAX_TAIL_CALL_CNT */

typedef uint64_t (*jit_entry)(void *mem, uint64_t len, struct jit_ctx *ctx);

/*
 * The run in progress on this thread, for helpers: they check every pointer a
 * program hands them against the same memory the program itself may touch.
 */
extern __thread struct jit_ctx *current_run __attribute__((tls_model("initial-exec")));
/* Makes element `elem` of region g the run's window (see jit_ctx.win_mask). */
static inline NO_VECTORS void run_set_window(struct jit_ctx *ctx, const struct region *g, uint64_t elem)
{
	if (g->stride == g->len) {
		ctx->win_lo = g->base;
		ctx->win_len = ctx->win_size = g->len;
		ctx->win_mask = ~0ull;
	} else if ((g->stride & (g->stride - 1)) == 0) {
		ctx->win_lo = g->base;
		ctx->win_len = g->len;
		ctx->win_mask = g->stride - 1;
		ctx->win_size = g->size;
	} else if (elem * g->stride < g->len) {
		ctx->win_lo = g->base + elem * g->stride;
		ctx->win_len = ctx->win_size = g->size;
		ctx->win_mask = ~0ull;
	}
}

/*
 * Starts a run on this thread: every field set one by one (a memset of the
 * struct becomes `rep stos`, slow to start on every probe hit).
 */
static inline NO_VECTORS void
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
	ctx->win_lo = ctx->win_len = ctx->win_size = 0;
	ctx->win_mask = ~0ull;
	ctx->shares_budget = false;
	uint64_t last = __atomic_load_n(&vm->last_window, __ATOMIC_RELAXED);
	uint32_t r = (uint32_t)(last >> 32);
	if (r && r <= vm->nregions)
		run_set_window(ctx, &vm->regions[r - 1], (uint32_t)last);
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

/* A run that did not fault: *ret = its result (0 when unwound, the next program's after a tail call). */
static inline NO_VECTORS bool run_result(const struct jit_ctx *run, uint64_t r0, uint64_t *ret)
{
	if (__builtin_expect(run->faulted == 1, 0))
		return false;
	*ret = run->faulted == 2 ? 0 : run->faulted == RUN_TAIL_CALLED ? run->tail_value : r0;
	return true;
}
/* Sets the error that describes the fault which stopped a run; returns -1 (uses libc: vectors). */
HIDDEN int vm_describe_fault(const struct jit_ctx *run);

/*
 * Runs of this VM may enter its compiled code directly: JIT code compiled for the current budget
 * setting (budgeted code sets its budget itself on entry, and only where it counts).
 */
static inline NO_VECTORS bool vm_probe_fast_path(const struct bpftime_vm *vm)
{
	return vm->engine == ENGINE_JIT && vm->jit.code && vm->jit.budgeted == (vm->budget != 0) &&
	       (!vm->at_run_end || !vm->jit.run_end_calls);
}
static inline NO_VECTORS jit_entry vm_jit_entry(const struct bpftime_vm *vm)
{
	return (jit_entry)(void *)vm->jit.code;
}
/* Whether runs of this VM go straight into JIT code that touches no vector register. */
HIDDEN bool vm_vector_clean(const struct bpftime_vm *vm);

/* Runs the subprogram at pc with r1-r5 = args for the VM's engine (a callback of bpf_loop and
 * friends). The callback may reach the calling run's stack. */
HIDDEN int vm_run_callback(const struct bpftime_vm *vm, uint32_t pc, const uint64_t args[5],
			   uint64_t *ret);
/* Whether pc starts a subprogram that the program takes the address of (lddw src 4). */
HIDDEN bool vm_is_callback(const struct bpftime_vm *vm, uint32_t pc);

#endif
