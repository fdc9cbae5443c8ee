/*
 * bpftime: the one exported C API of libbpftime.so.
 * ffi/ binds exactly these symbols; everything else is hidden.
 */
#ifndef BPFTIME_H
#define BPFTIME_H

#include <stddef.h>
#include <stdint.h>

#define BPFTIME_API __attribute__((visibility("default")))

#ifdef __cplusplus
extern "C" {
#endif

/* Kernel limits the VM enforces. */
#define BPFTIME_STACK_SIZE 512        /* bytes per call frame (MAX_BPF_STACK) */
#define BPFTIME_MAX_CALL_FRAMES 8     /* MAX_CALL_FRAMES in the kernel verifier */
#define BPFTIME_MAX_INSNS 1000000     /* BPF_COMPLEXITY_LIMIT_INSNS */
#define BPFTIME_MAX_HELPER_ID 65535

struct bpftime_vm;

/* A helper receives r1..r5 and returns r0, like a kernel helper. */
typedef uint64_t (*bpftime_helper_fn)(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t);

/*
 * Resolves the pseudo forms of lddw (src 1..6: map fd, map value, ...) at
 * load time, as the kernel does when it verifies a program. Returns 0 and
 * stores the 64-bit value, or a negative errno to refuse the program.
 */
typedef int (*bpftime_lddw_resolver)(void *ctx, uint32_t src, uint32_t imm, uint32_t next_imm,
                                     uint64_t *out);

/* Message of the last failed call on this thread ("" when none). */
BPFTIME_API const char *bpftime_last_error(void);

BPFTIME_API struct bpftime_vm *bpftime_vm_create(void);
BPFTIME_API void bpftime_vm_destroy(struct bpftime_vm *vm);

/* Registers helper `id` (before load: the validator refuses unknown ids). */
BPFTIME_API int bpftime_vm_register_helper(struct bpftime_vm *vm, uint32_t id, const char *name,
                                           bpftime_helper_fn fn);
/* Marks helper `id` as the unwind helper: when it returns 0 the program stops and returns 0. */
BPFTIME_API int bpftime_vm_set_unwind_helper(struct bpftime_vm *vm, uint32_t id);
/* Built-in helpers by name ("identity": returns r1, the conformance suite's unwind helper). */
BPFTIME_API bpftime_helper_fn bpftime_builtin_helper(const char *name);

BPFTIME_API void bpftime_vm_set_lddw_resolver(struct bpftime_vm *vm, bpftime_lddw_resolver fn,
                                              void *ctx);
/* Memory the program may touch besides its stack and context (e.g. map values). */
BPFTIME_API int bpftime_vm_add_region(struct bpftime_vm *vm, const void *base, uint64_t len);
/* Maximum instructions per run; 0 means no limit (the default). */
BPFTIME_API void bpftime_vm_set_insn_budget(struct bpftime_vm *vm, uint64_t budget);

/*
 * Execution engine: "jit" (default), "interp", or "llvm". The default follows
 * BPFTIME_DISABLE_JIT=1 (interpreter) and BPFTIME_VM_NAME.
 */
BPFTIME_API int bpftime_vm_set_engine(struct bpftime_vm *vm, const char *name);
BPFTIME_API const char *bpftime_vm_engine(const struct bpftime_vm *vm);
/* Nanoseconds the last JIT compilation took (0 when none ran). */
BPFTIME_API uint64_t bpftime_vm_compile_ns(const struct bpftime_vm *vm);

/* Validates and loads `len` bytes of instructions. 0 or -1 (see bpftime_last_error). */
BPFTIME_API int bpftime_vm_load(struct bpftime_vm *vm, const void *code, uint64_t len);
/* Runs with r1 = mem, r2 = mem_len. 0 and *ret = r0, or -1 (see bpftime_last_error). */
BPFTIME_API int bpftime_vm_exec(struct bpftime_vm *vm, void *mem, uint64_t mem_len, uint64_t *ret);
/* Runs `repeat` times and returns the mean nanoseconds per run, or -1 on error. */
BPFTIME_API double bpftime_vm_time_exec(struct bpftime_vm *vm, void *mem, uint64_t mem_len,
                                        uint64_t repeat, uint64_t *ret);

/* The instruction table: base mnemonic of an opcode, or NULL when it is not an eBPF opcode. */
BPFTIME_API const char *bpftime_opcode_name(uint32_t opcode);

#ifdef __cplusplus
}
#endif
#endif
