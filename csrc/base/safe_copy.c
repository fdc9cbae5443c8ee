/* Memory copies that never fault, for probe_read and friends (process_vm_readv on ourselves). */
#define _GNU_SOURCE
#include "safe_copy.h"

#include <errno.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

int safe_read(void *dst, uint64_t src, uint64_t size)
{
	if (size == 0)
		return 0;
	struct iovec local = {dst, size}, remote = {(void *)(uintptr_t)src, size};
	ssize_t n = process_vm_readv(getpid(), &local, 1, &remote, 1, 0);
	if (n != (ssize_t)size) {
		memset(dst, 0, size);
		return -EFAULT;
	}
	return 0;
}

int safe_write(uint64_t dst, const void *src, uint64_t size)
{
	if (size == 0)
		return 0;
	struct iovec local = {(void *)src, size}, remote = {(void *)(uintptr_t)dst, size};
	ssize_t n = process_vm_writev(getpid(), &local, 1, &remote, 1, 0);
	return n == (ssize_t)size ? 0 : -EFAULT;
}

long safe_read_str(char *dst, uint64_t src, uint64_t size)
{
	if (size == 0)
		return -EINVAL;
	uint64_t done = 0;
	while (done < size) {
		/* Never read across a page boundary we have not reached yet. */
		uint64_t page_left = 4096 - ((src + done) & 4095);
		uint64_t chunk = size - done < page_left ? size - done : page_left;
		if (safe_read(dst + done, src + done, chunk) < 0) {
			if (done == 0) {
				dst[0] = 0;
				return -EFAULT;
			}
			break;
		}
		void *nul = memchr(dst + done, 0, chunk);
		if (nul)
			return (long)((char *)nul - dst) + 1;
		done += chunk;
	}
	dst[done < size ? done : size - 1] = 0;
	return (long)(done < size ? done : size - 1) + 1;
}
