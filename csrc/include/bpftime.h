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
#define BPFTIME_DEFAULT_INSN_BUDGET 1000000 /* per run, as the kernel's BPF_COMPLEXITY_LIMIT_INSNS */

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
/*
 * Makes the context read-only (stores into it fault, helpers may not write
 * it), as the kernel's verifier keeps kprobe programs from writing their
 * struct pt_regs. The agent sets it for every probe.
 */
BPFTIME_API void bpftime_vm_set_ctx_readonly(struct bpftime_vm *vm, int readonly);
/*
 * Maximum instructions per run; 0 means no limit. Counted where a program can repeat: each
 * back-edge counts the length of the loop it closes, each bpf-to-bpf call the callee's length
 * (straight-line code counts nothing); callbacks share their caller's budget. A run that runs
 * out stops with an error naming the pc, and r0 = 0. The default of a new VM is
 * BPFTIME_INSN_BUDGET from the environment, or BPFTIME_DEFAULT_INSN_BUDGET.
 */
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

/* What a probe knows about its attachment, for bpf_get_func_ip and bpf_get_attach_cookie. */
struct bpftime_attach_info {
	uint64_t func_ip; /* address of the probed function */
	uint64_t cookie;  /* the link's bpf_cookie */
	uint64_t flags;   /* BPFTIME_ATTACH_F_* */
};
/*
 * The probe is at a function's entry: bpf_override_return(ctx, value) (helper
 * 58) may make the function return `value` at once, without running its body.
 */
#define BPFTIME_ATTACH_F_OVERRIDE 1u
/* bpftime_vm_exec for a program running as an attached probe. */
BPFTIME_API int bpftime_vm_exec_attached(struct bpftime_vm *vm, void *mem, uint64_t mem_len,
					 const struct bpftime_attach_info *info, uint64_t *ret);
/* Runs `repeat` times and returns the mean nanoseconds per run, or -1 on error. */
BPFTIME_API double bpftime_vm_time_exec(struct bpftime_vm *vm, void *mem, uint64_t mem_len,
                                        uint64_t repeat, uint64_t *ret);

/* The instruction table: base mnemonic of an opcode, or NULL when it is not an eBPF opcode. */
BPFTIME_API const char *bpftime_opcode_name(uint32_t opcode);

/* ---- The shared-memory segment and its objects ---- */

struct bpftime_shm;

/* Flags of bpftime_shm_open: create when missing; the low 9 bits are the mode (0 = 0600). */
#define BPFTIME_SHM_CREATE 0x1000u

struct bpftime_shm_stats {
	uint64_t size;
	uint64_t heap_used;
	uint32_t generation; /* changes whenever an object is added or removed */
	uint32_t objects;
};

enum bpftime_object_kind { BPFTIME_OBJ_MAP = 1, BPFTIME_OBJ_PROG = 2, BPFTIME_OBJ_LINK = 3 };

struct bpftime_object_info {
	uint32_t id;
	uint32_t kind;
	char name[16];
};

struct bpftime_map_info {
	uint32_t id;
	uint32_t type; /* enum bpf_map_type */
	uint32_t key_size;
	uint32_t value_size;
	uint32_t max_entries;
	uint32_t map_flags;
	uint32_t ncpus;        /* values per key: possible CPUs for per-CPU maps, else 1 */
	uint32_t value_stride; /* bytes between per-CPU values (value_size rounded up to 8) */
	char name[16];
	uint32_t inner_map_id; /* maps of maps: the template given at creation */
	uint32_t reserved;
};

/* Opens (and with BPFTIME_SHM_CREATE creates, size_mb MiB) /dev/shm/NAME. NULL on error. */
BPFTIME_API struct bpftime_shm *bpftime_shm_open(const char *name, uint64_t size_mb, uint32_t flags);
/*
 * The same, shared with a group, or trusting another user. The segment is used
 * only when it is a regular file (symbolic links are not followed) that belongs
 * to the caller's effective uid, to root, or to `trust_uid` (>= 0), and has no
 * permission bits beyond the mode asked for. `group` (a name or a number; NULL
 * or "" for none: $BPFTIME_SHM_GROUP) shares it: a new segment gets that group
 * and mode 0660, and an existing one may have group bits only for that group.
 */
BPFTIME_API struct bpftime_shm *bpftime_shm_open_as(const char *name, uint64_t size_mb, uint32_t flags,
						    const char *group, int32_t trust_uid);
/*
 * 0 while the segment is whole; -EIO (error set) when its file shrank under
 * us or its header was overwritten: then nothing in it may be touched again.
 */
BPFTIME_API int bpftime_shm_check(const struct bpftime_shm *shm);
BPFTIME_API void bpftime_shm_close(struct bpftime_shm *shm);
BPFTIME_API int bpftime_shm_remove(const char *name);
BPFTIME_API int bpftime_shm_stats(const struct bpftime_shm *shm, struct bpftime_shm_stats *out);
/* Slot `index` of the object table: 1 and *out filled, 0 for a free slot, -ENOENT past the end. */
BPFTIME_API int bpftime_object_at(const struct bpftime_shm *shm, uint32_t index,
				  struct bpftime_object_info *out);
BPFTIME_API int bpftime_object_delete(struct bpftime_shm *shm, uint32_t id);
/* Pinned objects outlive their owner (the process that created them). */
BPFTIME_API int bpftime_object_set_pinned(struct bpftime_shm *shm, uint32_t id, int pinned);
/*
 * What the kernel does when a process's last fds close: deletes the unpinned
 * objects process `pid` created, links first, then programs, then maps.
 * Returns how many went.
 */
BPFTIME_API int bpftime_objects_release(struct bpftime_shm *shm, int32_t pid);
/*
 * Releases the unpinned objects of every owner that no longer runs (killed
 * before it could release them). Returns how many went.
 */
BPFTIME_API int bpftime_objects_release_dead(struct bpftime_shm *shm);

/* The map type table: libbpf's name of kernel map type `type` ("percpu_hash"), or NULL when unsupported. */
BPFTIME_API const char *bpftime_map_type_name(uint32_t type);

/*
 * Maps. Functions return the id or 0 on success, or -errno as bpf(2) would.
 * Queues, stacks and bloom filters have no key: update pushes, lookup peeks.
 */
/* map_extra: bloom filters' hash count. inner_map_id: the template of a map of maps. */
BPFTIME_API int bpftime_map_create(struct bpftime_shm *shm, uint32_t type, const char *name,
				   uint32_t key_size, uint32_t value_size, uint32_t max_entries,
				   uint32_t map_flags, uint64_t map_extra, uint32_t inner_map_id);
/*
 * A map fronting kernel map `kernel_map_id` (hash, array, per-CPU and LRU hash, per-CPU array):
 * the kernel map's type, sizes and name, and every operation on it, from any process, reaches
 * the kernel map. Each process gets an fd for the kernel map once (BPF_MAP_GET_FD_BY_ID, or
 * from `bpftime daemon`, which passes fds of the maps it fronts to unprivileged processes). A
 * program's lookup returns a shadow of the kernel value in the segment; what the program writes
 * there goes back to the kernel when its run ends. Returns the id or -errno.
 */
BPFTIME_API int bpftime_kernel_map_create(struct bpftime_shm *shm, uint32_t kernel_map_id);
/*
 * A new fd of the (never attached) kernel program that outputs records into kernel ring buffer
 * or perf event array `kernel_map_id` when test-run (maps/kernel_ring.c); needs CAP_BPF and
 * CAP_PERFMON. `bpftime daemon` hands it to traced processes that lack them. -errno on failure.
 */
BPFTIME_API int bpftime_kernel_output_prog(uint32_t kernel_map_id);
BPFTIME_API int bpftime_map_info(struct bpftime_shm *shm, uint32_t id, struct bpftime_map_info *out);
BPFTIME_API int bpftime_map_lookup(struct bpftime_shm *shm, uint32_t id, const void *key, void *value);
/* Lookup with flags: BPF_F_LOCK (4) copies under the value's spin lock. */
BPFTIME_API int bpftime_map_lookup_flags(struct bpftime_shm *shm, uint32_t id, const void *key,
					 void *value, uint64_t flags);
/* Declares a struct bpf_spin_lock at `offset` in the values (what a loader reads from BTF):
 * updates then never overwrite it, and BPF_F_LOCK updates and lookups take it. */
BPFTIME_API int bpftime_map_set_spin_lock(struct bpftime_shm *shm, uint32_t id, uint32_t offset);
BPFTIME_API int bpftime_map_update(struct bpftime_shm *shm, uint32_t id, const void *key,
				   const void *value, uint64_t flags);
BPFTIME_API int bpftime_map_delete(struct bpftime_shm *shm, uint32_t id, const void *key);
/* Queue and stack contents, oldest first, without taking them (at most max values). */
BPFTIME_API int bpftime_map_values(struct bpftime_shm *shm, uint32_t id, void *out, uint32_t max);
/* Pop for queues and stacks; lookup and delete for hash maps. */
BPFTIME_API int bpftime_map_lookup_and_delete(struct bpftime_shm *shm, uint32_t id, const void *key,
					      void *value);
/* key NULL: the first key. */
BPFTIME_API int bpftime_map_get_next_key(struct bpftime_shm *shm, uint32_t id, const void *key,
					 void *next);

/* Ring buffers: the kernel's layout, read in place by a consumer (zero copy). */
struct bpftime_ringbuf_info {
	uint64_t *consumer_pos; /* the consumer advances this */
	uint64_t *producer_pos;
	uint8_t *data; /* size bytes; records never wrap */
	uint64_t size;
	uint64_t *dropped; /* reservations refused because the ring was full */
};
BPFTIME_API int bpftime_ringbuf_info(struct bpftime_shm *shm, uint32_t id,
				     struct bpftime_ringbuf_info *out);
/*
 * Maps ring buffer `id` in the kernel's mmap layout at a new address: the
 * consumer page, the producer page, then the data twice back to back (as
 * libbpf expects). *length gets the mapping's size, for munmap.
 */
BPFTIME_API void *bpftime_ringbuf_map(struct bpftime_shm *shm, uint32_t id, uint64_t *length);
/* A BPF_F_MMAPABLE array's values in this process's mapping of the segment (what mmap of its
 * fd shows); *length gets their size. NULL for other maps. */
BPFTIME_API void *bpftime_map_mmap_data(struct bpftime_shm *shm, uint32_t id, uint64_t *length);
/* Blocks (no busy wait) until records are available or timeout_ms passes (-1: forever). 1 when data. */
BPFTIME_API int bpftime_ringbuf_wait(struct bpftime_shm *shm, uint32_t id, int timeout_ms);

/*
 * Perf event arrays: entry `index`'s ring, laid out like a perf_event mmap
 * (struct perf_event_mmap_page, then the data). *size: bytes of the mapping.
 */
BPFTIME_API int bpftime_perf_ring(struct bpftime_shm *shm, uint32_t id, uint32_t index, void **page,
				  uint64_t *size);

/* Programs stored in the segment (enum bpf_prog_type `type`). Returns the id or -errno. */
BPFTIME_API int bpftime_prog_create(struct bpftime_shm *shm, const char *name, uint32_t type,
				    const void *insns, uint64_t len);
/* Copies up to cap bytes of program `id`; returns its size in bytes or -errno. */
BPFTIME_API int64_t bpftime_prog_code(struct bpftime_shm *shm, uint32_t id, void *out, uint64_t cap,
				      uint32_t *type);

/* Links: a stored program attached to a probe, for the agents of traced processes. */
enum bpftime_link_type {
	BPFTIME_LINK_UPROBE = 1,
	BPFTIME_LINK_URETPROBE = 2,
	BPFTIME_LINK_SYSCALL_TRACEPOINT = 3,
	/* Not an attachment: tells the agent of process `pid` to remove all its hooks (prog_id 0). */
	BPFTIME_LINK_DETACH = 4,
	/*
	 * A uprobe at a function's entry whose program replaces the function: its
	 * return value (r0) is what the function returns, and the body does not run.
	 */
	BPFTIME_LINK_UREPLACE = 5,
};
/*
 * bpftime_link_spec.flags. FUNC_ENTRY: the probe is a function's first
 * instruction (the return address on top of the stack), so a program there
 * may return for the function (bpf_override_return, UREPLACE links).
 */
#define BPFTIME_LINK_F_FUNC_ENTRY 1u
/*
 * Or'ed into a uprobe or uretprobe link's type: the link runs a kernel tool's program that
 * `bpftime daemon` moved to userspace, and the kernel uprobe's int3 at the probe is removed from
 * each traced process before its hook goes in (its other breakpoints are waited for).
 */
#define BPFTIME_LINK_OVER_KERNEL_PROBE 0x100u
struct bpftime_link_spec {
	uint32_t prog_id;
	uint32_t type;     /* enum bpftime_link_type */
	int32_t pid;       /* only this process; -1 for any */
	uint32_t func_size; /* uprobes: bytes from the probe to the function's end (0: unknown) */
	/*
	 * uprobes: file offset of the probed instruction. Syscall tracepoints: the
	 * tracepoint's id in tracefs (events/CAT/NAME/id), which programs see as
	 * common_type; whoever creates the link reads it (agents may not read
	 * tracefs); 0 when unknown.
	 */
	uint64_t offset;
	uint64_t cookie;   /* what bpf_get_attach_cookie returns */
	/*
	 * uprobes: the file's path; tracepoints: "syscalls/sys_enter_NAME",
	 * "syscalls/sys_exit_NAME", "raw_syscalls/sys_enter", "raw_syscalls/sys_exit",
	 * or a process event the agent raises: "sched/sched_process_exec",
	 * "sched/sched_process_exit", "sched/sched_process_fork" (all links of type
	 * BPFTIME_LINK_SYSCALL_TRACEPOINT; bpftime_link_create refuses other
	 * categories and events, and unknown syscalls).
	 */
	char target[256];
	/*
	 * uprobes: file offset of a USDT semaphore (a u16 the target reads to know
	 * whether the probe is watched), 0 for none. The agent of every process
	 * where the probe is installed adds 1 to it while the link is attached, as
	 * the kernel does for perf_event_attr's ref_ctr_offset.
	 */
	uint64_t ref_ctr_offset;
	uint32_t flags; /* BPFTIME_LINK_F_* */
	uint32_t pad_;
};
BPFTIME_API int bpftime_link_create(struct bpftime_shm *shm, const char *name,
				    const struct bpftime_link_spec *spec);
BPFTIME_API int bpftime_link_info(struct bpftime_shm *shm, uint32_t id, struct bpftime_link_spec *out);

/*
 * The implementation IFUNC `name` of shared library `path` selects on this
 * machine, as an address relative to the library's load base (*vaddr).
 */
BPFTIME_API int bpftime_ifunc_target(const char *path, const char *name, uint64_t *vaddr);

/*
 * Registers the kernel helpers this runtime implements (by their kernel ids)
 * and, with a segment, the map helpers and lddw map references (src 1: map
 * id; src 2: map id + offset into an array's value).
 */
BPFTIME_API int bpftime_vm_register_runtime(struct bpftime_vm *vm, struct bpftime_shm *shm);

#ifdef __cplusplus
}
#endif
#endif
