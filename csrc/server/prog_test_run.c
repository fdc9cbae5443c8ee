/*
 * BPF_PROG_TEST_RUN of syscall programs (BPF_PROG_TYPE_SYSCALL): run once on
 * the caller's context, which the program may change and which is copied back,
 * as the kernel does. The kernel refuses a context shorter than the program
 * reads (its verifier's max_ctx_offset); here that bound comes from the
 * program's loads and stores through the context pointer (followed through
 * register copies, straight-line: a computed or branched-to access is caught
 * when it runs instead, as a fault).
 */
#include "server.h"

#include "../base/safe_copy.h"
#include "../runtime/runtime.h"

#include <linux/bpf.h>
#include <stdlib.h>
#include <string.h>

#define CTX_MAX 65535 /* U16_MAX, the kernel's bound */

/* The end of the furthest context byte the program reads or writes (0: none). */
static uint32_t ctx_bytes_used(const struct bpf_insn *insns, uint64_t n)
{
	uint32_t ctx_regs = 1u << 1, end = 0;
	static const uint32_t sizes[4] = {4, 2, 1, 8}; /* BPF_W, BPF_H, BPF_B, BPF_DW */
	for (uint64_t i = 0; i < n; i++) {
		const struct bpf_insn *in = &insns[i];
		uint8_t cls = BPF_CLASS(in->code);
		bool mem = BPF_MODE(in->code) == BPF_MEM;
		if ((cls == BPF_LDX && mem && ctx_regs >> in->src_reg & 1) ||
		    ((cls == BPF_STX || cls == BPF_ST) && mem && ctx_regs >> in->dst_reg & 1)) {
			int64_t last = (int64_t)in->off + sizes[BPF_SIZE(in->code) >> 3];
			if (last > (int64_t)end)
				end = last > CTX_MAX + 1 ? CTX_MAX + 1 : (uint32_t)last;
		}
		if (cls == BPF_ALU64 && BPF_OP(in->code) == BPF_MOV && BPF_SRC(in->code) == BPF_X) {
			if (ctx_regs >> in->src_reg & 1)
				ctx_regs |= 1u << in->dst_reg;
			else
				ctx_regs &= ~(1u << in->dst_reg);
		} else if (cls == BPF_ALU64 || cls == BPF_ALU || cls == BPF_LDX || cls == BPF_LD) {
			ctx_regs &= ~(1u << in->dst_reg);
		} else if (cls == BPF_JMP && BPF_OP(in->code) == BPF_CALL) {
			ctx_regs &= ~0x3fu; /* r0-r5 */
		}
		if (in->code == (BPF_LD | BPF_IMM | BPF_DW))
			i++;
	}
	return end;
}

long prog_test_run_syscall(union bpf_attr *attr, uint32_t id)
{
	if (attr->test.data_in || attr->test.data_out || attr->test.ctx_out || attr->test.duration ||
	    attr->test.repeat || attr->test.flags || attr->test.batch_size)
		return -EINVAL;
	int64_t len = bpftime_prog_code(server_shm, id, NULL, 0, NULL);
	if (len < 0)
		return -EBADF;
	struct bpf_insn *insns = malloc((size_t)len);
	if (!insns)
		return -ENOMEM;
	bpftime_prog_code(server_shm, id, insns, (uint64_t)len, NULL);
	uint32_t need = ctx_bytes_used(insns, (uint64_t)len / sizeof(*insns));
	free(insns);
	uint32_t size = attr->test.ctx_size_in;
	if (size < need || size > CTX_MAX)
		return -EINVAL;
	uint8_t *ctx = size ? malloc(size) : NULL;
	if (size && !ctx)
		return -ENOMEM;
	long ret = 0;
	if (size && safe_read(ctx, attr->test.ctx_in, size) < 0) {
		ret = -EFAULT;
		goto out;
	}
	struct bpftime_vm *vm = runtime_program_vm(server_shm, id, NULL);
	if (!vm) {
		server_log("BPF_PROG_TEST_RUN: program %u: %s", id, bpftime_last_error());
		ret = -EINVAL;
		goto out;
	}
	uint64_t r0 = 0;
	int rc = bpftime_vm_exec(vm, ctx, size, &r0);
	if (rc < 0)
		server_log("BPF_PROG_TEST_RUN: program %u faulted: %s", id, bpftime_last_error());
	bpftime_vm_destroy(vm);
	if (rc < 0) {
		ret = -EINVAL; /* an access past the context the kernel's verifier would have refused */
		goto out;
	}
	attr->test.retval = (uint32_t)r0;
	if (size && safe_write(attr->test.ctx_in, ctx, size) < 0)
		ret = -EFAULT;
out:
	free(ctx);
	return ret;
}
