/* Private to csrc/vm/ (and the LLVM tier through llvm_tier.h): instruction encoding and the
 * VM's internal functions. Other folders use vm_runtime.h. */
#ifndef BPFTIME_VM_INTERNAL_H
#define BPFTIME_VM_INTERNAL_H

#include "../base/base.h"
#include "../base/error.h"
#include "../include/bpftime.h"
#include "vm_runtime.h"

#include <stdbool.h>
#include <stdint.h>

/* One instruction as the kernel encodes it (struct bpf_insn). */
struct bpf_insn {
	uint8_t code;
	uint8_t dst : 4;
	uint8_t src : 4;
	int16_t off;
	int32_t imm;
};

/* Instruction classes and fields (linux/bpf_common.h, linux/bpf.h). */
enum {
	CLS_LD = 0x00, CLS_LDX = 0x01, CLS_ST = 0x02, CLS_STX = 0x03,
	CLS_ALU = 0x04, CLS_JMP = 0x05, CLS_JMP32 = 0x06, CLS_ALU64 = 0x07,
};
#define BPF_CLASS(code) ((code) & 0x07)
#define BPF_OP(code) ((code) & 0xf0)
#define BPF_SRC_REG 0x08
#define BPF_SIZE(code) ((code) & 0x18)
#define BPF_MODE(code) ((code) & 0xe0)

enum { SZ_W = 0x00, SZ_H = 0x08, SZ_B = 0x10, SZ_DW = 0x18 };
enum { MODE_IMM = 0x00, MODE_ABS = 0x20, MODE_IND = 0x40, MODE_MEM = 0x60, MODE_MEMSX = 0x80,
       MODE_ATOMIC = 0xc0 };
enum {
	OP_ADD = 0x00, OP_SUB = 0x10, OP_MUL = 0x20, OP_DIV = 0x30, OP_OR = 0x40, OP_AND = 0x50,
	OP_LSH = 0x60, OP_RSH = 0x70, OP_NEG = 0x80, OP_MOD = 0x90, OP_XOR = 0xa0, OP_MOV = 0xb0,
	OP_ARSH = 0xc0, OP_END = 0xd0,
};
enum {
	OP_JA = 0x00, OP_JEQ = 0x10, OP_JGT = 0x20, OP_JGE = 0x30, OP_JSET = 0x40, OP_JNE = 0x50,
	OP_JSGT = 0x60, OP_JSGE = 0x70, OP_CALL = 0x80, OP_EXIT = 0x90, OP_JLT = 0xa0,
	OP_JLE = 0xb0, OP_JSLT = 0xc0, OP_JSLE = 0xd0,
};
enum {
	ATOMIC_ADD = 0x00, ATOMIC_OR = 0x40, ATOMIC_AND = 0x50, ATOMIC_XOR = 0xa0,
	ATOMIC_FETCH = 0x01, ATOMIC_XCHG = 0xe0 | ATOMIC_FETCH, ATOMIC_CMPXCHG = 0xf0 | ATOMIC_FETCH,
};
enum { CALL_HELPER = 0, CALL_LOCAL = 1, CALL_KFUNC = 2 };
#define LDDW_CODE 0x18
#define LDDW_PSEUDO_FUNC 4 /* lddw of a callback: imm is the subprogram's offset */

/* CLOCK_MONOTONIC in nanoseconds, for timing runs and compilations. */
HIDDEN uint64_t vm_now_ns(void);
/* Memory a program may touch besides its stack and context: the VM's regions and what the
 * memory check it was given accepts. */
HIDDEN bool vm_region_ok(const struct bpftime_vm *vm, uint64_t addr, uint64_t size);
/* The registered region holding [addr, addr+size) inside one of its elements, or NULL; *elem
 * gets that element's index. */
HIDDEN const struct region *vm_region_of(const struct bpftime_vm *vm, uint64_t addr, uint64_t size,
					 uint64_t *elem);
HIDDEN bool vm_helper_known(const struct bpftime_vm *vm, uint32_t id);

/* Validator: 0 or -1 with the error set (naming the pc and the reason). */
HIDDEN int vm_validate(const struct bpftime_vm *vm, const struct bpf_insn *insns, uint32_t n);

/* Interpreter: translate loaded instructions, then run them. */
HIDDEN int interp_prepare(struct bpftime_vm *vm);
HIDDEN int interp_run(const struct bpftime_vm *vm, void *mem, uint64_t mem_len, uint64_t *ret);
/* Runs the subprogram at pc with r1-r5 = args (a callback of bpf_loop and friends). */
HIDDEN int interp_run_callback(const struct bpftime_vm *vm, uint32_t pc, const uint64_t args[5],
			       uint64_t *ret);

#endif
