/*
 * System calls made without libc's wrappers: the server replaces syscall(),
 * mmap(), close() and others, so its own calls to the kernel must not come
 * back to it. Returns the kernel's result (-errno on failure).
 */
#ifndef BPFTIME_RAW_SYSCALL_H
#define BPFTIME_RAW_SYSCALL_H

static inline long raw_syscall6(long n, long a, long b, long c, long d, long e, long f)
{
	long ret;
	register long r10 __asm__("r10") = d;
	register long r8 __asm__("r8") = e;
	register long r9 __asm__("r9") = f;
	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
			 : "rcx", "r11", "memory");
	return ret;
}

/* libc's convention: -1 and errno for a failure. */
static inline long errno_result(long ret)
{
	if (ret < 0 && ret > -4096) {
		errno = (int)-ret;
		return -1;
	}
	return ret;
}

#endif
