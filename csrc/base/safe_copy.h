/* Memory copies from and to addresses that may be bad, without faulting. */
#ifndef BPFTIME_SAFE_COPY_H
#define BPFTIME_SAFE_COPY_H

#include "base.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

/*
 * Installs the SIGSEGV/SIGBUS handler that recovers faults of the copies (done by the first copy
 * too): 0, -EAGAIN while another thread installs it, or -errno.
 */
HIDDEN int safe_copy_init(void);
/* Internals of the inline safe_read: the handler's state (2: installed) and the copy routine. */
HIDDEN extern _Atomic int safe_copy_state;
HIDDEN int safe_copy_asm(void *dst, uint64_t src, uint64_t n);
HIDDEN int safe_read_slow(void *dst, uint64_t src, uint64_t size);

/* Copies from possibly-bad addresses without faulting: 0, or -EFAULT with dst zeroed. */
static inline int safe_read(void *dst, uint64_t src, uint64_t size)
{
	if (likely(atomic_load_explicit(&safe_copy_state, memory_order_acquire) == 2)) {
		if (likely(safe_copy_asm(dst, src, size) == 0))
			return 0;
		memset(dst, 0, size);
		return -EFAULT;
	}
	return safe_read_slow(dst, src, size);
}
HIDDEN int safe_write(uint64_t dst, const void *src, uint64_t size);
/*
 * Reads a NUL-terminated string (at most size bytes incl. NUL) as bpf_probe_read_user_str does in
 * the kernel: length incl. NUL (size when cut, the last byte made NUL), or -EFAULT with dst zeroed
 * when a byte before the NUL is unreadable.
 */
HIDDEN long safe_read_str(char *dst, uint64_t src, uint64_t size);

/*
 * For compiled code that reads user memory without calling the helper (the JIT's inline probe
 * reads): whether the fault handler is installed (installing it if not), and safe_read and
 * safe_read_str with bpf_probe_read{,_str}'s argument order (str: size > 0) for when it is. These
 * two touch no vector register (compiled code may call them where none is saved).
 */
HIDDEN bool safe_copy_ready(void);
HIDDEN uint64_t safe_read_direct(uint64_t dst, uint64_t size, uint64_t src);
HIDDEN uint64_t safe_read_str_direct(uint64_t dst, uint64_t size, uint64_t src);

#endif
