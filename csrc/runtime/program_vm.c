/* Program -> VM: the one place a VM is made for a program (see runtime.h). */
#include "runtime.h"
#include "../base/error.h"

#include <stdlib.h>

struct bpftime_vm *runtime_vm_for_code(struct bpftime_shm *shm, const void *code, uint64_t len,
				       const struct runtime_vm_opts *opts)
{
	struct bpftime_vm *vm = bpftime_vm_create();
	if (!vm)
		return NULL;
	if (opts && opts->engine && bpftime_vm_set_engine(vm, opts->engine) < 0)
		goto fail;
	if (opts && opts->ctx_readonly)
		bpftime_vm_set_ctx_readonly(vm, 1);
	/* Helpers first: a VM refuses them once a program is loaded. */
	if (bpftime_vm_register_runtime(vm, shm) < 0)
		goto fail;
	runtime_prepare_helpers(vm, code, len);
	if (bpftime_vm_load(vm, code, len) < 0)
		goto fail;
	return vm;
fail:
	bpftime_vm_destroy(vm);
	return NULL;
}

struct bpftime_vm *runtime_program_vm(struct bpftime_shm *shm, uint32_t prog_id,
				      const struct runtime_vm_opts *opts)
{
	int64_t len = bpftime_prog_code(shm, prog_id, NULL, 0, NULL);
	if (len < 0)
		return NULL;
	void *code = len > 0 ? malloc((size_t)len) : NULL;
	if (!code) {
		set_error("program %u: out of memory", prog_id);
		return NULL;
	}
	bpftime_prog_code(shm, prog_id, code, (uint64_t)len, NULL);
	struct bpftime_vm *vm = runtime_vm_for_code(shm, code, (uint64_t)len, opts);
	free(code);
	return vm;
}
