/* Loaded with dlopen by syscall_target after the hooks are installed: syscall instructions of its own. */
#include <sys/syscall.h>

static long raw0(long nr)
{
	long ret;
	__asm__ volatile("syscall" : "=a"(ret) : "a"(nr) : "rcx", "r11", "memory");
	return ret;
}

__attribute__((visibility("default"))) long syscall_dl_work(int n)
{
	long sum = 0;
	for (int i = 0; i < n; i++)
		sum += raw0(SYS_getppid) + raw0(SYS_getuid);
	return sum;
}
