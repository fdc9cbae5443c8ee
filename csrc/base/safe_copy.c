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
	/*
	 * Through a bounce buffer: bytes of dst past the NUL stay as they were
	 * (as the kernel's bpf_probe_read_user_str leaves them; programs use the
	 * zeroed buffer as a map key).
	 */
	char bounce[256];
	uint64_t done = 0;
	while (done < size) {
		/* Never read across a page boundary we have not reached yet. */
		uint64_t page_left = 4096 - ((src + done) & 4095);
		uint64_t chunk = size - done < page_left ? size - done : page_left;
		if (chunk > sizeof(bounce))
			chunk = sizeof(bounce);
		if (safe_read(bounce, src + done, chunk) < 0) {
			if (done == 0) {
				dst[0] = 0;
				return -EFAULT;
			}
			break;
		}
		char *nul = memchr(bounce, 0, chunk);
		if (nul) {
			memcpy(dst + done, bounce, (size_t)(nul - bounce) + 1);
			return (long)(done + (uint64_t)(nul - bounce)) + 1;
		}
		memcpy(dst + done, bounce, chunk);
		done += chunk;
	}
	dst[done < size ? done : size - 1] = 0;
	return (long)(done < size ? done : size - 1) + 1;
}
