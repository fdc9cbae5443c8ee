/*
 * bpf_get_stackid and bpf_get_stack for user stacks: the context is the
 * probe's struct pt_regs (x86-64 layout); the walk starts at its ip and
 * follows frame pointers from its rbp, reading memory without faulting.
 * There is no kernel stack in userspace: without BPF_F_USER_STACK they fail.
 */
#include "../maps/stack_trace.h"
#include "helpers.h"

#include <errno.h>
#include <string.h>

#define PT_REGS_SIZE 168
#define PT_REGS_RBP 32
#define PT_REGS_IP 128
#define MAX_DEPTH 127 /* PERF_MAX_STACK_DEPTH */

static int64_t walk(uint64_t ctx, uint64_t *ips, uint32_t max)
{
	if (!run_access_ok(ctx, PT_REGS_SIZE))
		return -EFAULT;
	uint64_t fp, ip;
	memcpy(&ip, (const uint8_t *)(uintptr_t)ctx + PT_REGS_IP, 8);
	memcpy(&fp, (const uint8_t *)(uintptr_t)ctx + PT_REGS_RBP, 8);
	uint32_t n = 0;
	if (max)
		ips[n++] = ip;
	while (n < max && fp && !(fp & 7)) {
		uint64_t frame[2]; /* saved rbp, return address */
		if (safe_read(frame, fp, sizeof(frame)) < 0 || !frame[1])
			break;
		ips[n++] = frame[1];
		if (frame[0] <= fp) /* stacks grow down: callers' frames are higher */
			break;
		fp = frame[0];
	}
	return n;
}

static uint64_t get_stackid(uint64_t ctx, uint64_t map, uint64_t flags, uint64_t a4, uint64_t a5)
{
	(void)a4, (void)a5;
	struct bpftime_shm *shm;
	struct shm_map *m = helper_map(map, &shm);
	if (!m || m->type != MAP_STACK_TRACE ||
	    (flags & ~(STACK_F_SKIP_MASK | STACK_F_USER_STACK | STACK_F_FAST_STACK_CMP |
		       STACK_F_REUSE_STACKID)))
		return (uint64_t)-EINVAL;
	if (!(flags & STACK_F_USER_STACK))
		return (uint64_t)-EFAULT;
	uint64_t ips[MAX_DEPTH + 256];
	uint32_t skip = (uint32_t)(flags & STACK_F_SKIP_MASK);
	int64_t n = walk(ctx, ips, MAX_DEPTH + skip);
	if (n < 0)
		return (uint64_t)n;
	if ((uint32_t)n <= skip)
		return (uint64_t)-EFAULT;
	return (uint64_t)stack_trace_store(shm, m, ips + skip, (uint32_t)n - skip, flags);
}

/* bpf_get_stack(ctx, buf, size, flags): ips into buf; returns the bytes written. */
static uint64_t get_stack(uint64_t ctx, uint64_t buf, uint64_t size, uint64_t flags, uint64_t a5)
{
	(void)a5;
	if ((flags & ~(STACK_F_SKIP_MASK | STACK_F_USER_STACK)) || (size & 7) ||
	    !run_write_ok(buf, size))
		return (uint64_t)-EINVAL;
	if (!(flags & STACK_F_USER_STACK)) {
		memset((void *)(uintptr_t)buf, 0, size);
		return (uint64_t)-EFAULT;
	}
	uint64_t ips[MAX_DEPTH + 256];
	uint32_t skip = (uint32_t)(flags & STACK_F_SKIP_MASK);
	uint32_t want = (uint32_t)(size / 8) + skip;
	int64_t n = walk(ctx, ips, want < MAX_DEPTH + skip ? want : MAX_DEPTH + skip);
	if (n < 0)
		return (uint64_t)n;
	uint32_t kept = (uint32_t)n > skip ? (uint32_t)n - skip : 0;
	memcpy((void *)(uintptr_t)buf, ips + skip, (size_t)kept * 8);
	memset((uint8_t *)(uintptr_t)buf + kept * 8, 0, size - kept * 8);
	return (uint64_t)kept * 8;
}

const struct helper_def stack_helpers[] = {
	{27, "bpf_get_stackid", get_stackid},
	{67, "bpf_get_stack", get_stack},
	{0, NULL, NULL},
};
