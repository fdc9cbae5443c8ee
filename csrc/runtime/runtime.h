/*
 * The runtime layer: what turns a stored program into a VM that runs with the
 * kernel helpers (csrc/helpers/) and the maps of a segment. The agent, the
 * syscall server and tail calls all get their VMs here. Also here: helper
 * registration (bpftime_vm_register_runtime), bpf_tail_call, IFUNC resolution.
 */
#ifndef BPFTIME_RUNTIME_H
#define BPFTIME_RUNTIME_H

#include "../base/base.h"
#include "../include/bpftime.h"

#include <stdbool.h>
#include <stdint.h>

struct runtime_vm_opts {
	bool ctx_readonly;  /* probes: the program may read its context (the registers), never write */
	const char *engine; /* "interp", "jit" or "llvm"; NULL: the default (environment) */
};

/*
 * A VM that runs `code` (len bytes of instructions) with the runtime's helpers
 * and the maps of `shm`: created, configured, validated and compiled. NULL
 * with the error set (bpftime_last_error) when the program is refused.
 */
HIDDEN struct bpftime_vm *runtime_vm_for_code(struct bpftime_shm *shm, const void *code, uint64_t len,
					      const struct runtime_vm_opts *opts);
/* The same for the program stored in the segment with this id. */
HIDDEN struct bpftime_vm *runtime_program_vm(struct bpftime_shm *shm, uint32_t prog_id,
					     const struct runtime_vm_opts *opts);

/*
 * Before a program is loaded into vm: what the helpers it calls need ahead of the first run.
 * bpf_get_current_task(_btf): the task layout from the kernel's BTF; _btf: direct loads from
 * the synthetic task objects pass the VM's memory checks.
 */
HIDDEN void runtime_prepare_helpers(struct bpftime_vm *vm, const void *code, uint64_t len);

#endif
