/* Memory copies from and to addresses that may be bad, without faulting. */
#ifndef BPFTIME_SAFE_COPY_H
#define BPFTIME_SAFE_COPY_H

#include "base.h"

#include <stdint.h>

/*
 * Installs the SIGSEGV/SIGBUS handler that recovers faults of the copies (done by the first copy
 * too): 0, -EAGAIN while another thread installs it, or -errno.
 */
HIDDEN int safe_copy_init(void);
/* Copies from possibly-bad addresses without faulting: 0 or -EFAULT. */
HIDDEN int safe_read(void *dst, uint64_t src, uint64_t size);
HIDDEN int safe_write(uint64_t dst, const void *src, uint64_t size);
/*
 * Reads a NUL-terminated string (at most size bytes incl. NUL): length incl. NUL, or -EFAULT with
 * dst zeroed when the first byte is unreadable; a string running into bad memory is cut there.
 */
HIDDEN long safe_read_str(char *dst, uint64_t src, uint64_t size);

#endif
