/* The interpreter: a threaded-code loop over decoded instructions with checked memory access. */
#include "interp_ops.h"
#include "jit.h"
#include "vm_internal.h"

#include <string.h>

struct frame {
	const struct decoded_insn *ret;
	uint64_t saved[4]; /* r6..r9 */
	uint64_t fp;       /* r10 */
};

/* Memory besides the stack: the context block and the VM's registered regions. */
struct bounds {
	uintptr_t mem_lo;
	uint64_t mem_len;
	uint64_t store_len; /* 0 when the context is read-only */
	const struct bpftime_vm *vm;
	const struct jit_ctx *run; /* a callback run's extra ranges */
};

struct fault {
	uint64_t addr;
	uint64_t size;
	int kind; /* 0 load, 1 store, 2 misaligned atomic */
};

static inline bool span_ok(uint64_t addr, uint64_t size, uintptr_t lo, uint64_t len)
{
	uint64_t rel = addr - lo;
	return rel < len && size <= len - rel;
}

static bool in_bounds(const struct bounds *b, uint64_t addr, uint64_t size, bool store)
{
	return span_ok(addr, size, b->mem_lo, store ? b->store_len : b->mem_len) ||
	       run_extra_ok(b->run, addr, size) || vm_region_ok(b->vm, addr, size);
}

static __attribute__((cold)) void report_fault(const struct fault *f, uint32_t pc)
{
	if (f->kind == 2)
		set_error("pc %u: misaligned %llu-byte atomic access at 0x%llx", pc,
			     (unsigned long long)f->size, (unsigned long long)f->addr);
	else
		set_error("pc %u: out-of-bounds %s of %llu bytes at 0x%llx (outside the stack, "
			     "the context and every registered region)",
			     pc, f->kind ? "store" : "load", (unsigned long long)f->size,
			     (unsigned long long)f->addr);
}

/* RFC 9669: x / 0 = 0, x % 0 = x, INT_MIN / -1 = INT_MIN, INT_MIN % -1 = 0. */
static inline uint64_t sdiv64(uint64_t a, uint64_t s)
{
	if (s == 0)
		return 0;
	if ((int64_t)s == -1)
		return -a;
	return (uint64_t)((int64_t)a / (int64_t)s);
}
static inline uint64_t smod64(uint64_t a, uint64_t s)
{
	if (s == 0)
		return a;
	if ((int64_t)s == -1)
		return 0;
	return (uint64_t)((int64_t)a % (int64_t)s);
}
static inline uint32_t sdiv32(uint32_t a, uint32_t s)
{
	if (s == 0)
		return 0;
	if ((int32_t)s == -1)
		return -a;
	return (uint32_t)((int32_t)a / (int32_t)s);
}
static inline uint32_t smod32(uint32_t a, uint32_t s)
{
	if (s == 0)
		return a;
	if ((int32_t)s == -1)
		return 0;
	return (uint32_t)((int32_t)a % (int32_t)s);
}

#define INTERP_NAME run_unbounded
#define INTERP_COUNTED 0
#include "interp_body.h"
#undef INTERP_NAME
#undef INTERP_COUNTED

#define INTERP_NAME run_budgeted
#define INTERP_COUNTED 1
#include "interp_body.h"
#undef INTERP_NAME
#undef INTERP_COUNTED

int interp_run(const struct bpftime_vm *vm, void *mem, uint64_t mem_len, uint64_t *ret)
{
	return vm->budget ? run_budgeted(vm, mem, mem_len, 0, NULL, ret)
			  : run_unbounded(vm, mem, mem_len, 0, NULL, ret);
}

int interp_run_callback(const struct bpftime_vm *vm, uint32_t pc, const uint64_t args[5],
			uint64_t *ret)
{
	const struct jit_ctx *r = current_run;
	void *mem = (void *)(uintptr_t)r->mem_lo;
	uint64_t len = r->mem_limit[0];
	return vm->budget ? run_budgeted(vm, mem, len, pc, args, ret)
			  : run_unbounded(vm, mem, len, pc, args, ret);
}
